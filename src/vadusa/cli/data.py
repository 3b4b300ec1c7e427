"""The configuration and the corpus: ``config``, ``make-corpus``, ``prepare``, ``corpus-qa``,
``embed-speakers``."""

from __future__ import annotations

import argparse
from pathlib import Path

from vadusa.cli.common import SPLITS, Subcommand, corpus_dir, corpus_option, guard, split_option
from vadusa.config import Config
from vadusa.plan import Plan


def config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", help="write it to this YAML file instead of stdout")


def cmd_config(cfg: Config, args: argparse.Namespace) -> int:
    import yaml  # noqa: PLC0415

    from vadusa.config import dump_config  # noqa: PLC0415

    if args.out:
        dump_config(cfg, args.out)
    else:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    return 0


LAYOUTS = ("libritts",)


def make_corpus_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layout", required=True, choices=LAYOUTS,
                        help="libritts: LibriTTS's released layout, dev and test speakers unseen "
                        "in training (corpus.libritts_shaped)")
    parser.add_argument("out", metavar="OUT", help="the corpus directory to write or complete")


@guard
def cmd_make_corpus(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.data.libritts_shaped import format_summary, make_libritts_shaped  # noqa: PLC0415

    print(format_summary(make_libritts_shaped(cfg, Path(args.out))))
    return 0


def prepare_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", help="corpus directory (default: results/<experiment>/corpus)")


@guard
def cmd_prepare(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.data.prepare import format_stats, prepare_corpus  # noqa: PLC0415
    from vadusa.tracking import open_tracker  # noqa: PLC0415

    out = Path(args.out or Plan(cfg).corpus())
    with open_tracker(cfg, stage="prepare", out_dir=out) as tracker:
        stats = prepare_corpus(cfg, out)
        tracker.log_figure("corpus/hours_per_speaker", out / "hours_per_speaker.png")
        tracker.log_summary({"corpus/total_hours": stats["total_hours"],
                             "corpus/speakers": stats["speakers"],
                             **{f"corpus/{s}_hours": h for s, h in stats["hours"].items()}})
    print(format_stats(stats))
    return 0


def corpus_qa_options(parser: argparse.ArgumentParser) -> None:
    corpus_option(parser)
    parser.add_argument("--out", help="output JSON (default: <corpus>/qa/metrics.json)")
    parser.add_argument("--per-voice", type=int,
                        help="utterances per voice (judge.qa_per_voice)")


@guard
def cmd_corpus_qa(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.eval.corpus_qa import format_qa, run_corpus_qa  # noqa: PLC0415
    from vadusa.tracking import open_tracker  # noqa: PLC0415

    corpus = corpus_dir(cfg, args)
    out = Path(args.out) if args.out else corpus / "qa" / "metrics.json"
    per_voice = args.per_voice or cfg.judge.qa_per_voice
    with open_tracker(cfg, stage="corpus-qa", out_dir=out.parent) as tracker:
        result = run_corpus_qa(cfg, corpus, out, per_voice)
        tracker.log_figure("corpus_qa/wer_per_voice", out.parent / "wer_per_voice.png")
        tracker.log_summary({f"corpus_qa/wer/{v}": m["wer"] for v, m in result["voices"].items()}
                            | {"corpus_qa/wer": result["overall"]["wer"]}
                            | {f"corpus_qa/{j}/wer": m["overall"]["wer"]
                               for j, m in result["judges"].items()})
        tracker.log_table("corpus_qa", ["voice", "utterances", "wer", "cer"],
                          [[v, m["utterances"], m["wer"], m["cer"]]
                           for v, m in result["voices"].items()])
    print(format_qa(result))
    return 0


def embed_speakers_options(parser: argparse.ArgumentParser) -> None:
    corpus_option(parser)
    split_option(parser, help="embed one split (default: every split)")


@guard
def cmd_embed_speakers(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.data.dvectors import compute_dvectors, skipped_path  # noqa: PLC0415
    from vadusa.devices import resolve_device  # noqa: PLC0415
    from vadusa.eval.similarity import SpeakerSimilarity  # noqa: PLC0415

    corpus = corpus_dir(cfg, args)
    encoder = SpeakerSimilarity(str(resolve_device(cfg.device)))
    for split in [args.split] if args.split else SPLITS:
        done = compute_dvectors(corpus, split, encoder)
        left_out = (f"; {len(done.skipped)} utterances without one, listed with the reason in "
                    f"{skipped_path(corpus, split)}" if done.skipped else "")
        print(f"{split}: {done.embedded} d-vectors -> {done.path}{left_out}")
    return 0


SUBCOMMANDS = {
    "config": Subcommand("print the resolved configuration (defaults included)",
                         config_options, cmd_config),
    "make-corpus": Subcommand("write a corpus made offline in a published corpus's layout "
                              "(LibriTTS's), for `prepare` to read", make_corpus_options,
                              cmd_make_corpus),
    "prepare": Subcommand("build the corpus: manifests, symbols, statistics",
                          prepare_options, cmd_prepare),
    "corpus-qa": Subcommand("WER of the Whisper judges (of record, fast) on the corpus per voice",
                            corpus_qa_options, cmd_corpus_qa),
    "embed-speakers": Subcommand("GE2E d-vectors of every utterance of the corpus "
                                 "(dvectors/<split>.npz)", embed_speakers_options,
                                 cmd_embed_speakers),
}
