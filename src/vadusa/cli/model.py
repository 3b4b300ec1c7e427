"""The TTS model and its alignment: ``align``, ``train-durations``, ``train-base``,
``train-draft``, and the acoustic families' NAR stage, ``train-nar``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vadusa.cli.common import (
    Subcommand,
    UserFacingError,
    corpus_dir,
    corpus_option,
    duration_model_option,
    durations_dir,
    durations_option,
    family_option,
    guard,
    tokens_dir,
    tokens_option,
)
from vadusa.config import Config
from vadusa.plan import NAR_FAMILIES, Plan


def align_options(parser: argparse.ArgumentParser) -> None:
    family_option(parser)
    corpus_option(parser)
    tokens_option(parser)
    parser.add_argument("--out", help="output directory (default: durations/<family>)")


@guard
def cmd_align(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.training.aligner import train_aligner  # noqa: PLC0415

    tokens = tokens_dir(cfg, args, args.family)
    out = Path(args.out or Plan(cfg).durations(args.family))
    qa = json.loads(train_aligner(cfg, args.family, corpus_dir(cfg, args), tokens, out)
                    .read_text())
    print(f"{args.family}: dev phone error rate {100 * qa['dev_phone_error_rate']:.1f} %, "
          f"{sum(qa['unaligned'].values())} utterances not aligned, "
          f"{qa['mean_frames_per_spoken_symbol']:.2f} frames per spoken symbol -> {out}")
    return 0


def train_durations_options(parser: argparse.ArgumentParser) -> None:
    family_option(parser)
    corpus_option(parser)
    durations_option(parser)
    parser.add_argument("--out", help="output directory (default: models/<family>/durations)")


@guard
def cmd_train_durations(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.training.durations import train_durations  # noqa: PLC0415

    out = Path(args.out or Plan(cfg).model_dir(args.family, "durations"))
    print(train_durations(cfg, corpus_dir(cfg, args), durations_dir(cfg, args, args.family),
                          out, args.family))
    return 0


def _alignment_inputs(cfg: Config, args: argparse.Namespace, family: str) -> dict[str, Any]:
    """train_base's durations and duration model, when the config aligns by durations."""
    if cfg.model.alignment != "duration":
        return {}
    duration_model = Path(args.duration_model or Plan(cfg).duration_model(family))
    return {"durations_dir": durations_dir(cfg, args, family), "duration_model": duration_model}


def train_base_options(parser: argparse.ArgumentParser) -> None:
    family_option(parser)
    corpus_option(parser)
    tokens_option(parser)
    durations_option(parser)
    duration_model_option(parser)
    parser.add_argument("--out", help="output directory (default: models/<family>/base)")


@guard
def cmd_train_base(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.training.tts import train_base  # noqa: PLC0415

    out = Path(args.out or Plan(cfg).model_dir(args.family, "base"))
    print(train_base(cfg, args.family, corpus_dir(cfg, args), tokens_dir(cfg, args, args.family),
                     out, **_alignment_inputs(cfg, args, args.family)))
    return 0


def train_draft_options(parser: argparse.ArgumentParser) -> None:
    family_option(parser, required=False)
    corpus_option(parser)
    tokens_option(parser, help="token directory (default: tokens/<family>; the family is then "
                  "read from it)")
    durations_option(parser)
    duration_model_option(parser)
    parser.add_argument("--out", help="output directory (default: models/<family>/draft)")


@guard
def cmd_train_draft(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.tokenizers.store import read_meta  # noqa: PLC0415
    from vadusa.training.tts import train_base  # noqa: PLC0415

    if not (args.family or args.tokens):
        raise UserFacingError("give --family or --tokens (the family is read from it)")
    tokens = tokens_dir(cfg, args, args.family)
    family = args.family or read_meta(tokens)["family"]
    out = Path(args.out or Plan(cfg).model_dir(family, "draft"))
    # the base model's training, with the draft's sizes and steps (Config.for_draft)
    print(train_base(cfg.for_draft(), family, corpus_dir(cfg, args), tokens, out,
                     stage="train-draft", **_alignment_inputs(cfg, args, family)))
    return 0


def train_nar_options(parser: argparse.ArgumentParser) -> None:
    family_option(parser, choices=NAR_FAMILIES)
    corpus_option(parser)
    tokens_option(parser)
    parser.add_argument("--out", help="output directory (default: models/<family>/nar)")


@guard
def cmd_train_nar(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.training.nar import train_nar  # noqa: PLC0415

    out = Path(args.out or Plan(cfg).model_dir(args.family, "nar"))
    print(train_nar(cfg, args.family, corpus_dir(cfg, args), tokens_dir(cfg, args, args.family),
                    out))
    return 0


SUBCOMMANDS = {
    "align": Subcommand("train a CTC phone recogniser on a family's tokens and write every "
                        "split's phone durations in token frames", align_options, cmd_align),
    "train-durations": Subcommand("train the duration model (symbols + speaker -> frames) on "
                                  "the aligner's durations", train_durations_options,
                                  cmd_train_durations),
    "train-base": Subcommand("train the AR TTS model on a token family",
                             train_base_options, cmd_train_base),
    "train-draft": Subcommand("train a small draft model for draft-model speculative "
                              "decoding: train-base with the `draft` section's sizes",
                              train_draft_options, cmd_train_draft),
    "train-nar": Subcommand("train an acoustic family's NAR stage: codebooks 2..N from "
                            "codebook 1, the text and the speaker (VALL-E's second stage)",
                            train_nar_options, cmd_train_nar),
}
