"""Tuning: ``sweep``, an Optuna study of the decoding settings (speedup against AR vs WER)."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from vadusa.cli.common import (
    HEADS_HELP,
    PROMPT_TOKENS_HELP,
    Subcommand,
    UserFacingError,
    checkpoint_option,
    corpus_dir,
    corpus_option,
    decoding_bundle,
    guard,
    limit_option,
    nar_option,
    nar_stage,
    precision_option,
    split_option,
    split_requests_for,
    tokens_option,
    use_inputs,
    vocoder_option,
    vocoder_path,
)
from vadusa.config import Config


def sweep_options(parser: argparse.ArgumentParser) -> None:
    checkpoint_option(parser, help=HEADS_HELP)
    corpus_option(parser)
    tokens_option(parser, PROMPT_TOKENS_HELP)
    vocoder_option(parser)
    nar_option(parser)
    split_option(parser, help="split decoded in every trial (default: sweep.split)")
    limit_option(parser, help="its first utterances (default: sweep.utterances)")
    parser.add_argument("--trials", type=int,
                        help="completed trials the study runs to, over all workers "
                             "(default: sweep.trials)")
    parser.add_argument("--storage", help="'' = SQLite in --out, journal:PATH, or a database "
                        "URL (default: sweep.storage)")
    parser.add_argument("--study", help="study name (default: the output directory's name and "
                        "a digest of the model, vocoder and settings)")
    precision_option(parser)
    parser.add_argument("--out", required=True, help="output directory: study.db, trials.csv, "
                        "pareto.csv, chosen.yaml, plots")
    parser.add_argument("--report-only", action="store_true",
                        help="write the CSVs, chosen.yaml and plots of the study as it is; no "
                        "trials")


@guard
def cmd_sweep(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.checkpoint import file_digest  # noqa: PLC0415
    from vadusa.devices import resolve_device  # noqa: PLC0415
    from vadusa.eval.evaluate import SplitVoices  # noqa: PLC0415
    from vadusa.eval.judge import WhisperJudge, judge_name  # noqa: PLC0415
    from vadusa.sweep.objective import DecodingObjective  # noqa: PLC0415
    from vadusa.sweep.report import write_report  # noqa: PLC0415
    from vadusa.sweep.study import (  # noqa: PLC0415
        completed,
        open_storage,
        open_study,
        run_study,
        search_space,
    )
    from vadusa.tracking import artifact_name, open_tracker  # noqa: PLC0415
    from vadusa.vocoder import load_vocoder, wants_embedding  # noqa: PLC0415

    sweep = cfg.sweep
    if args.trials is not None:
        sweep = dataclasses.replace(sweep, trials=args.trials)
    if args.storage is not None:
        sweep = dataclasses.replace(sweep, storage=args.storage)
    decoding = cfg.decoding
    if args.precision:
        decoding = dataclasses.replace(decoding, precision=args.precision)
    bundle = decoding_bundle(cfg, args.checkpoint, decoding)
    if bundle.heads is None:
        raise UserFacingError(f"{args.checkpoint} has no draft heads: sweep a heads.pt from "
                              "`vadusa train-heads` or `vadusa train-joint`")
    vocoder_file = vocoder_path(cfg, args, bundle.family)
    nar = nar_stage(cfg, args, bundle.family, vocoder_file, resolve_device(cfg.device))
    split, limit = args.split or sweep.split, args.limit or sweep.utterances
    out = Path(args.out)
    # one study per model, vocoder and measuring setup: other weights or settings start a
    # new study (in the same storage) instead of mixing with old trials; more trials or
    # another storage continue the same one
    setup = {"checkpoint": file_digest(args.checkpoint), "vocoder": file_digest(vocoder_file),
             **({"nar": file_digest(nar.path)} if nar is not None else {}),
             "split": split, "limit": limit, "decoding": dataclasses.asdict(decoding),
             # the sweep judges with the fast judge (judge.fast_model): many trials, and its
             # WER only ranks settings on the sweep split; the tables' WER is the judge of
             # record's
             "judge": {k: v for k, v in dataclasses.asdict(cfg.judge).items()
                       if k != "speaker_similarity"},  # the sweep does not measure SIM
             "seed": cfg.seed,
             "sweep": {k: v for k, v in dataclasses.asdict(sweep).items()
                       if k not in ("trials", "storage")}}
    digest = hashlib.sha256(json.dumps(setup, sort_keys=True).encode()).hexdigest()[:10]
    name = args.study or f"{out.name}-{digest}"
    study = open_study(name, open_storage(sweep.storage, out), sweep.sampler, cfg.seed)
    if args.report_only:
        print(json.dumps(write_report(study, sweep, out, split)["trials"]))
        return 0

    vocoder = load_vocoder(vocoder_file, device=resolve_device(cfg.device),
                           family=bundle.family)
    requests, ids = split_requests_for(cfg, args, bundle, split, limit)
    voices = None
    if wants_embedding(vocoder):  # the vocoder renders each voice from its prompt
        from vadusa.eval.similarity import SpeakerSimilarity  # noqa: PLC0415

        voices = SplitVoices(corpus_dir(cfg, args), split, ids,
                             SpeakerSimilarity(str(resolve_device(cfg.device))))
    space = search_space(sweep, len(bundle.heads), decoding.temperature, decoding.top_k)
    objective = DecodingObjective(bundle, requests, decoding, vocoder,
                                  WhisperJudge(cfg.judge, cfg.judge.fast_model), nar, voices)
    print(f"sweep {name}: {completed(study)} of {sweep.trials} trials done; "
          f"{len(requests)} utterances per trial; space {space}", flush=True)

    with open_tracker(cfg, stage="sweep", out_dir=out, family=bundle.family,
                      setting=out.name) as tracker:
        use_inputs(cfg, tracker, models=[Path(args.checkpoint), vocoder_file,
                                         *([nar.path] if nar is not None else [])])

        def log(study: Any) -> None:
            trial = study.trials[-1]
            if trial.values is not None:
                tracker.log({"trial/speedup": trial.values[0], "trial/wer": trial.values[1]}
                            | {f"param/{k}": v for k, v in trial.params.items()
                               if isinstance(v, int | float)}, step=trial.number)
            write_report(study, sweep, out, split, judge_name(cfg.judge, cfg.judge.fast_model))

        ran = run_study(study, objective, space, sweep.trials, on_trial=log)
        summary = write_report(study, sweep, out, split,
                               judge_name(cfg.judge, cfg.judge.fast_model))
        chosen = summary.get("chosen", {})
        tracker.log_summary({"trials_complete": summary["trials"]["complete"],
                             "trials_this_worker": ran, "pareto_size": len(summary["pareto"]),
                             **{f"chosen/{k}": v for k, v in chosen.items()
                                if isinstance(v, int | float)}})
        tracker.log_artifact(out / "trials.csv", artifact_name(cfg, out / "trials.csv"),
                             "table")
    print(f"{ran} trials run here; study: {summary['trials']}")
    for row in summary["pareto"]:
        print(f"  pareto: trial {row['number']}: tau {row['tau']} heads {row['heads']} "
              f"tree {row['tree']} T {row['temperature']}: {row['speedup']:.2f}x, "
              f"WER {100 * row['wer']:.1f} % (AR {100 * row['ar_wer']:.1f} %)")
    if chosen:
        print(f"chosen: trial {chosen['number']} -> {out / 'chosen.yaml'}")
    return 0


SUBCOMMANDS = {
    "sweep": Subcommand("Optuna study over tau, heads, tree size (and sampling): speedup "
                        "against AR vs WER", sweep_options, cmd_sweep),
}
