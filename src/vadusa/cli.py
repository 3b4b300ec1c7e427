"""``vadusa``: the one command-line entry point; every Snakemake rule calls a subcommand.

Every subcommand takes ``--config FILE`` (repeatable, later files win) and ``--set KEY=VALUE``
(repeatable, YAML values, e.g. ``--set corpus.synthetic.hours=0.5``). Errors a user can fix
(config typos, missing inputs) print one clear line and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from vadusa import __version__
from vadusa.config import Config, ConfigError, load_config

log = logging.getLogger("vadusa")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help="YAML config file (repeatable; later files override earlier ones)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        dest="overrides", help="override one config key (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vadusa", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"vadusa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("config", help="print the resolved configuration (defaults included)")
    _common(p)
    p.add_argument("--out", help="write it to this YAML file instead of stdout")

    p = sub.add_parser("prepare", help="build the corpus: manifests, symbols, statistics")
    _common(p)
    p.add_argument("--out", help="corpus directory (default: results/<experiment>/corpus)")

    p = sub.add_parser("corpus-qa", help="WER of the Whisper judge on the corpus, per voice")
    _common(p)
    p.add_argument("--corpus", help="corpus directory (default: results/<experiment>/corpus)")
    p.add_argument("--out", help="output JSON (default: <corpus>/qa/metrics.json)")
    p.add_argument("--per-voice", type=int, help="utterances per voice (judge.qa_per_voice)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config, args.overrides)
        return COMMANDS[args.command](cfg, args)
    except (ConfigError, FileNotFoundError, UserFacingError) as exc:
        print(f"vadusa {args.command}: error: {exc}", file=sys.stderr)
        return 2


class UserFacingError(RuntimeError):
    pass


def _user_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean "fix your input", reported without a traceback."""
    from vadusa.data.audio import AudioError  # noqa: PLC0415
    from vadusa.data.candidates import CorpusSourceError  # noqa: PLC0415
    from vadusa.data.manifest import ManifestError  # noqa: PLC0415
    from vadusa.data.synthetic import CorpusError  # noqa: PLC0415
    from vadusa.data.text import TextError  # noqa: PLC0415
    from vadusa.data.voices import VoiceError  # noqa: PLC0415
    from vadusa.eval.judge import JudgeError  # noqa: PLC0415

    return (AudioError, CorpusSourceError, ManifestError, CorpusError, TextError, VoiceError,
            JudgeError)


def _guard(fn):  # noqa: ANN001, ANN202
    def run(cfg: Config, args: argparse.Namespace) -> int:
        try:
            return fn(cfg, args)
        except _user_errors() as exc:
            raise UserFacingError(str(exc)) from exc

    return run


def cmd_config(cfg: Config, args: argparse.Namespace) -> int:
    import yaml  # noqa: PLC0415

    from vadusa.config import dump_config  # noqa: PLC0415

    if args.out:
        dump_config(cfg, args.out)
    else:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    return 0


@_guard
def cmd_prepare(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.data.prepare import format_stats, prepare_corpus  # noqa: PLC0415
    from vadusa.tracking import open_tracker  # noqa: PLC0415

    out = Path(args.out) if args.out else cfg.experiment_dir / "corpus"
    with open_tracker(cfg, stage="prepare", out_dir=out) as tracker:
        stats = prepare_corpus(cfg, out)
        tracker.log_figure("corpus/hours_per_speaker", out / "hours_per_speaker.png")
        tracker.log_summary({"corpus/total_hours": stats["total_hours"],
                             "corpus/speakers": stats["speakers"],
                             **{f"corpus/{s}_hours": h for s, h in stats["hours"].items()}})
    print(format_stats(stats))
    return 0


@_guard
def cmd_corpus_qa(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.eval.corpus_qa import format_qa, run_corpus_qa  # noqa: PLC0415
    from vadusa.tracking import open_tracker  # noqa: PLC0415

    corpus = Path(args.corpus) if args.corpus else cfg.experiment_dir / "corpus"
    out = Path(args.out) if args.out else corpus / "qa" / "metrics.json"
    per_voice = args.per_voice or cfg.judge.qa_per_voice
    with open_tracker(cfg, stage="corpus-qa", out_dir=out.parent) as tracker:
        result = run_corpus_qa(cfg, corpus, out, per_voice)
        tracker.log_figure("corpus_qa/wer_per_voice", out.parent / "wer_per_voice.png")
        tracker.log_summary({f"corpus_qa/wer/{v}": m["wer"] for v, m in result["voices"].items()}
                            | {"corpus_qa/wer": result["overall"]["wer"]})
        tracker.log_table("corpus_qa", ["voice", "utterances", "wer", "cer"],
                          [[v, m["utterances"], m["wer"], m["cer"]]
                           for v, m in result["voices"].items()])
    print(format_qa(result))
    return 0


COMMANDS = {"config": cmd_config, "prepare": cmd_prepare, "corpus-qa": cmd_corpus_qa}


if __name__ == "__main__":
    sys.exit(main())

