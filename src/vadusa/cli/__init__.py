"""``vadusa``: the one command-line entry point; every Snakemake rule calls a subcommand.

Every subcommand takes ``--config FILE`` (repeatable, later files win) and ``--set KEY=VALUE``
(repeatable, YAML values, e.g. ``--set corpus.synthetic.hours=0.5``). Errors a user can fix
(config typos, missing inputs) print one clear line and exit with status 2.

The subcommands live by pipeline stage, each module's options beside its handler and listed
in its ``SUBCOMMANDS``: ``data`` (config, corpus), ``tokens`` (tokenizers, vocoders),
``model`` (alignment, the TTS and draft models), ``decode``, ``evaluate``, ``bench``,
``heads`` (draft heads, calibration), ``sweep``, ``report`` (tables, W&B report).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from vadusa import __version__
from vadusa.cli import bench, data, decode, evaluate, heads, model, report, sweep, tokens
from vadusa.cli.common import Handler, Subcommand, UserFacingError, common_options
from vadusa.cli.common import use_inputs as _use_inputs
from vadusa.config import ConfigError, load_config

__all__ = ["COMMANDS", "UserFacingError", "_use_inputs", "build_parser", "main"]

log = logging.getLogger("vadusa")

# in the order of the pipeline, which is the order of ``vadusa --help``
SUBCOMMANDS: dict[str, Subcommand] = {
    **data.SUBCOMMANDS, **tokens.SUBCOMMANDS, **model.SUBCOMMANDS, **decode.SUBCOMMANDS,
    **evaluate.SUBCOMMANDS, **bench.SUBCOMMANDS, **heads.SUBCOMMANDS, **sweep.SUBCOMMANDS,
    **report.SUBCOMMANDS,
}
COMMANDS: dict[str, Handler] = {name: command.run for name, command in SUBCOMMANDS.items()}

# The trainers that run as DDP under torchrun (training.tts.Distributed); in a job with several
# GPUs they relaunch themselves there (training/launch.py), so the rule's command stays one.
TORCHRUN_COMMANDS = ("train-base", "train-draft")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vadusa", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"vadusa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in SUBCOMMANDS.items():
        options = sub.add_parser(name, help=command.help)
        common_options(options)
        command.options(options)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from vadusa.devices import flush_denormals  # noqa: PLC0415 (torch: only when a command runs)

    flush_denormals()
    try:
        cfg = load_config(args.config, args.overrides)
        if args.command in TORCHRUN_COMMANDS:
            _maybe_torchrun(args.command, list(argv) if argv is not None else sys.argv[1:],
                            cfg.device)
        return COMMANDS[args.command](cfg, args)
    except (ConfigError, FileNotFoundError, UserFacingError) as exc:
        print(f"vadusa {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _maybe_torchrun(command: str, argv: list[str], device: str) -> None:
    from vadusa.training.launch import LaunchError, relaunch_under_torchrun  # noqa: PLC0415

    try:
        relaunch_under_torchrun(command, argv, device)  # returns only when one process is due
    except LaunchError as exc:
        raise UserFacingError(str(exc)) from exc
