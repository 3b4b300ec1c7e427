"""Speech tokens and their vocoders: ``train-ssl``, ``train-codec``, ``fit-kmeans``,
``tokenize``, ``train-vocoder``."""

from __future__ import annotations

import argparse
from pathlib import Path

from vadusa.cli.common import (
    Subcommand,
    UserFacingError,
    corpus_dir,
    corpus_option,
    family_option,
    guard,
    tokenizer_models,
    tokens_dir,
    tokens_option,
    use_inputs,
)
from vadusa.config import Config
from vadusa.plan import Plan


def train_ssl_options(parser: argparse.ArgumentParser) -> None:
    family_option(parser, choices=("hubert", "wav2vec2"))
    corpus_option(parser)
    parser.add_argument("--out", help="output directory (default: the family's, "
                        "tokens/<family>/ssl)")


@guard
def cmd_train_ssl(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.training.ssl import train_ssl  # noqa: PLC0415

    out = Path(args.out or Plan(cfg).ssl_dir(args.family))
    print(train_ssl(cfg, args.family, corpus_dir(cfg, args), out))
    return 0


def train_codec_options(parser: argparse.ArgumentParser) -> None:
    corpus_option(parser)
    parser.add_argument("--out", help="output directory (default: the experiment's, "
                        "tokens/encodec/codec): codec.pt, last.pt")


@guard
def cmd_train_codec(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.checkpoint import load_checkpoint  # noqa: PLC0415
    from vadusa.training.codec import train_codec  # noqa: PLC0415

    if cfg.tokens.encodec.weights != "scratch":
        raise UserFacingError(f"tokens.encodec.weights={cfg.tokens.encodec.weights} names the "
                              f"published codec, so the pipeline would not use a codec trained "
                              f"here: set tokens.encodec.weights=scratch to train one")
    out = Path(args.out or Plan(cfg).codec_dir())
    final = train_codec(cfg, corpus_dir(cfg, args), out)
    meta = load_checkpoint(final, kind="codec")["meta"]
    dev = {k: v for k, v in meta.items() if k.startswith("dev/")}
    print(final)
    print(f"encodec codec: {meta.get('steps')} steps, {meta['frame_rate']:g} frames/s, "
          f"{meta['bins']} tokens; "
          + (", ".join(f"{k} {v:.4f}" for k, v in sorted(dev.items())) if dev
             else "no dev losses (no dev split)"))
    return 0


def fit_kmeans_options(parser: argparse.ArgumentParser) -> None:
    family_option(parser)
    corpus_option(parser)
    parser.add_argument("--out", help="k-means artifact (default: the family's, "
                        "tokens/<family>/kmeans.npz)")


@guard
def cmd_fit_kmeans(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.devices import resolve_device  # noqa: PLC0415
    from vadusa.tokenizers.tokenize import fit_kmeans  # noqa: PLC0415

    out = Path(args.out or Plan(cfg).kmeans(args.family))
    quantizer = fit_kmeans(cfg, args.family, corpus_dir(cfg, args), out,
                           resolve_device(cfg.device))
    print(f"{args.family}: {quantizer.n_clusters} clusters on {quantizer.settings['frames']} "
          f"frames -> {out}")
    return 0


def tokenize_options(parser: argparse.ArgumentParser) -> None:
    family_option(parser)
    corpus_option(parser)
    parser.add_argument("--out", help="token directory (default: the family's, "
                        "tokens/<family>)")
    parser.add_argument("--kmeans", help="the k-means from `vadusa fit-kmeans` (default: the "
                        "family's, tokens/<family>/kmeans.npz; not read for encodec)")


@guard
def cmd_tokenize(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.devices import resolve_device  # noqa: PLC0415
    from vadusa.tokenizers.tokenize import tokenize_corpus  # noqa: PLC0415
    from vadusa.tracking import open_tracker  # noqa: PLC0415

    plan = Plan(cfg)
    out = Path(args.out or plan.tokens(args.family))
    kmeans = Path(args.kmeans or plan.kmeans(args.family))
    with open_tracker(cfg, stage="tokenize", out_dir=out, family=args.family) as tracker:
        use_inputs(cfg, tracker, models=tokenizer_models(cfg, args.family))
        stats = tokenize_corpus(cfg, args.family, corpus_dir(cfg, args), out,
                                kmeans, resolve_device(cfg.device))
        tracker.log_summary({f"tokens/{k}": stats[k] for k in (
            "frames_per_second", "cluster_usage", "entropy_bits", "repeat_rate")})
        tracker.log_figure("tokens/cluster_usage", out / "cluster_usage.png")
    print(f"{args.family}: {stats['frames_per_second']:.2f} frames/s (declared "
          f"{stats['declared_frame_rate']:.2f}), {stats['clusters_used']}/{stats['vocab_size']} "
          f"clusters used, entropy {stats['entropy_bits']:.2f} bits, "
          f"repeat rate {stats['repeat_rate']:.3f}")
    return 0


def train_vocoder_options(parser: argparse.ArgumentParser) -> None:
    family_option(parser)
    corpus_option(parser)
    tokens_option(parser)
    parser.add_argument("--out", help="output directory (default: the family's, "
                        "vocoder/<family>)")


@guard
def cmd_train_vocoder(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.training.vocoder import train_vocoder  # noqa: PLC0415

    if args.family == "encodec":
        raise UserFacingError("the encodec family's vocoder is its codec's decoder: run "
                              "`vadusa train-codec` (tokens/encodec/codec/codec.pt)")
    out = Path(args.out or Plan(cfg).vocoder_dir(args.family))
    print(train_vocoder(cfg, args.family, corpus_dir(cfg, args),
                        tokens_dir(cfg, args, args.family), out))
    return 0


SUBCOMMANDS = {
    "train-ssl": Subcommand("train a HuBERT or wav2vec2 model from scratch",
                            train_ssl_options, cmd_train_ssl),
    "train-codec": Subcommand("train the encodec family's codec from scratch "
                              "(tokens.encodec.scratch)", train_codec_options, cmd_train_codec),
    "fit-kmeans": Subcommand("fit the k-means quantizer of a token family",
                             fit_kmeans_options, cmd_fit_kmeans),
    "tokenize": Subcommand("turn every split of the corpus into token files",
                           tokenize_options, cmd_tokenize),
    "train-vocoder": Subcommand("train the unit-to-mel network of a token family",
                                train_vocoder_options, cmd_train_vocoder),
}
