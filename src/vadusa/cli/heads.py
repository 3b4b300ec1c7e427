"""Draft heads: ``train-heads`` (on a frozen base), ``train-joint`` (with it), ``calibrate``
(their acceptance, and trees from it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vadusa.cli.common import (
    HEADS_HELP,
    PROMPT_TOKENS_HELP,
    Subcommand,
    checkpoint_option,
    corpus_dir,
    corpus_option,
    decoding_bundle,
    decoding_config,
    durations_dir,
    durations_option,
    guard,
    precision_option,
    setting_option,
    split_option,
    split_requests_for,
    tokens_dir,
    tokens_option,
    use_inputs,
)
from vadusa.config import Config


def heads_options(parser: argparse.ArgumentParser) -> None:
    checkpoint_option(parser, help="the base model (base.pt)")
    corpus_option(parser)
    tokens_option(parser)
    durations_option(parser)
    parser.add_argument("--out", required=True, help="output directory (heads.pt, last.pt)")


def _train_heads(cfg: Config, args: argparse.Namespace, joint: bool) -> int:
    from vadusa.model.loading import load_tts  # noqa: PLC0415
    from vadusa.training.heads import train_heads  # noqa: PLC0415

    family = load_tts(args.checkpoint).family
    print(train_heads(cfg, Path(args.checkpoint), corpus_dir(cfg, args),
                      tokens_dir(cfg, args, family), Path(args.out), joint=joint,
                      durations_dir=durations_dir(cfg, args, family)))
    return 0


@guard
def cmd_train_heads(cfg: Config, args: argparse.Namespace) -> int:
    return _train_heads(cfg, args, joint=False)


@guard
def cmd_train_joint(cfg: Config, args: argparse.Namespace) -> int:
    return _train_heads(cfg, args, joint=True)


def calibrate_options(parser: argparse.ArgumentParser) -> None:
    checkpoint_option(parser, help=HEADS_HELP)
    split_option(parser, default="dev")
    corpus_option(parser)
    tokens_option(parser, PROMPT_TOKENS_HELP)
    parser.add_argument("--limit", type=int,
                        help="utterances decoded (default: measure.calibration_utterances)")
    parser.add_argument("--nodes", type=int, nargs="+",
                        help="tree sizes to build (default: measure.tree_sizes); one file per "
                        "size")
    setting_option(parser, "--tau", "tolerance the table is measured under (decoding.tau)")
    precision_option(parser)
    parser.add_argument("--out", required=True,
                        help="output directory: acceptance.json and tree-<nodes>.json")


@guard
def cmd_calibrate(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.decoding.calibrate import calibrate, format_table  # noqa: PLC0415
    from vadusa.tracking import artifact_name, open_tracker  # noqa: PLC0415

    decoding = decoding_config(cfg, args)
    bundle = decoding_bundle(cfg, args.checkpoint, decoding)
    limit = cfg.measure.calibration_utterances if args.limit is None else args.limit
    requests = split_requests_for(cfg, args, bundle, args.split, limit)[0]
    out = Path(args.out)
    table, trees = calibrate(bundle, requests, decoding,
                             args.nodes or list(cfg.measure.tree_sizes), out)
    print(format_table(table))
    for path, expected in trees:
        print(f"{path}: expected {expected:.2f} tokens per step")
    mode = (bundle.meta.get("heads") or {}).get("mode")
    setting = f"{mode}-tau{decoding.tau}" if mode else f"tau{decoding.tau}"
    with open_tracker(cfg, stage="calibrate", out_dir=out, family=bundle.family,
                      setting=setting) as tracker:
        use_inputs(cfg, tracker, models=[Path(args.checkpoint)])
        # calibrate's trees are tree-<nodes>.json
        tracker.log_summary({f"{Path(path).stem}/expected_length": expected
                             for path, expected in trees})
        tracker.log_artifact(out, artifact_name(cfg, out), "trees")
    return 0


SUBCOMMANDS = {
    "train-heads": Subcommand("train draft heads on a frozen base model (VADUSA)",
                              heads_options, cmd_train_heads),
    "train-joint": Subcommand("train base and draft heads together (VADUSA-wt)",
                              heads_options, cmd_train_joint),
    "calibrate": Subcommand("measure draft acceptance on a split and build trees",
                            calibrate_options, cmd_calibrate),
}
