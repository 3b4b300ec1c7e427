"""Decoding speed: ``bench`` races AR, VADUSA and draft-model settings on the same texts."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from vadusa.cli.common import (
    PROMPT_TOKENS_HELP,
    SPEAKER_GROUPS,
    Subcommand,
    UserFacingError,
    checkpoint_option,
    corpus_option,
    decoding_bundle,
    draft_models,
    guard,
    precision_option,
    setting_option,
    split_option,
    split_requests_for,
    tokens_option,
    use_inputs,
)
from vadusa.config import Config
from vadusa.plan import Plan

# tokens_sha256: the digest of the setting's token sequences (decoding/bench.py), so that a
# lossless setting is seen to match its baseline in the tracked table as in the JSON
BENCH_COLUMNS = ("setting", "method", "heads_from", "batch_size", "tau", "heads", "tree",
                 "acceptance", "gamma", "precision", "speedup", "rate_speedup", "bound",
                 "bound_fraction", "mean_accepted", "tokens_per_second", "real_time_factor",
                 "forwards_per_utterance", "wall_seconds", "tokens_sha256")


def bench_options(parser: argparse.ArgumentParser) -> None:
    checkpoint_option(parser)
    texts = parser.add_mutually_exclusive_group(required=True)
    texts.add_argument("--texts", help="one `text` or `speaker<TAB>text` per line")
    split_option(texts, help="the texts and speakers of a corpus split")
    corpus_option(parser)
    tokens_option(parser, PROMPT_TOKENS_HELP)
    parser.add_argument("--speakers", choices=SPEAKER_GROUPS, default="all",
                        help="--split: the utterances of all speakers (default), of those the "
                        "model was trained on (seen), or of the others (unseen)")
    parser.add_argument("--batch-sizes", type=int, nargs="*",
                        help="batched AR settings besides the batch-1 baseline (default: "
                        "measure.ar_batch_sizes; give none to skip them)")
    # lists of settings, each raced; decode's and evaluate's are one setting
    setting_option(parser, "--tau", "VADUSA settings: tolerances (default: decoding.tau); "
                   "needs a checkpoint with draft heads", many=True)
    setting_option(parser, "--heads", "VADUSA settings: draft heads used (default: "
                   "decoding.heads)", many=True)
    setting_option(parser, "--tree", "VADUSA settings: node counts or tree files (default: "
                   "decoding.tree)", many=True)
    parser.add_argument("--typical", action="store_true",
                        help="also MEDUSA-2's typical acceptance, per heads and tree")
    parser.add_argument("--also-heads", nargs="+", action="extend", default=[],
                        metavar="HEADS_PT",
                        help="other draft heads of the same family (e.g. heads.kind: hydra; "
                        "repeatable, or several after one flag): "
                        "their VADUSA settings race in the same run against the same AR "
                        "baseline, named after the checkpoint's folder (models/whisper/hydra/"
                        "heads.pt -> hydra-h4-n16-t3); joint heads decode with their own base")
    parser.add_argument("--draft", help="draft-model settings: the draft model (base.pt from "
                        "`vadusa train-draft`; default: decoding.draft_checkpoint, if set)")
    setting_option(parser, "--draft-tokens", "draft-model settings: tokens the draft proposes "
                   "per step, one setting each (default: decoding.draft_tokens)", many=True)
    precision_option(parser)
    parser.add_argument("--compile", nargs="?", const="default", default="",
                        choices=("default", "eager"),
                        help="AR steps and tree passes with fixed shapes, compiled by "
                        "torch.compile (CUDA graphs on a GPU); both sides of every ratio alike. "
                        "'eager': traced into one graph but run eagerly (a check)")
    parser.add_argument("--limit", type=int, help="only the first N texts (0: all)")
    parser.add_argument("--out", help="write the results as JSON (one record per setting; "
                        "tokens_sha256: sha256 of the compact JSON of its per-utterance token "
                        "lists in request order, equal between settings that decoded the same "
                        "sequences)")


@guard
def cmd_bench(cfg: Config, args: argparse.Namespace) -> int:
    import torch  # noqa: PLC0415

    from vadusa.decoding.bench import (  # noqa: PLC0415
        ar_settings,
        bench,
        draft_settings,
        format_bench,
        raced_precision,
        vadusa_settings,
        write_bench,
    )
    from vadusa.decoding.run import load_draft, read_texts  # noqa: PLC0415
    from vadusa.tracking import open_tracker  # noqa: PLC0415

    decoding = cfg.decoding  # bench's --tau/--heads/--tree are lists of settings, not one
    if args.precision:
        decoding = dataclasses.replace(decoding, precision=args.precision)
    if args.draft:
        decoding = dataclasses.replace(decoding, draft_checkpoint=args.draft)

    def vadusa_grid(heads_from: str = "") -> list:
        """The VADUSA settings of the command line, else of the config, for some heads."""
        return vadusa_settings(args.tau or [decoding.tau], args.heads or [decoding.heads],
                               args.tree or [str(decoding.tree)], args.typical,
                               heads_from=heads_from)

    bundle = decoding_bundle(cfg, args.checkpoint, decoding)
    if args.texts:
        requests = read_texts(Path(args.texts))[: args.limit or None]
    else:
        requests = split_requests_for(cfg, args, bundle, args.split, args.limit,
                                      args.speakers)[0]
    batch_sizes = cfg.measure.ar_batch_sizes if args.batch_sizes is None else args.batch_sizes
    settings = ar_settings(batch_sizes, raced_precision(bundle))
    if bundle.heads is not None:
        settings += vadusa_grid()
    elif (args.tau or args.heads or args.tree or args.typical) and not args.also_heads:
        raise UserFacingError(f"{args.checkpoint} has no draft heads: VADUSA settings need a "
                              "heads.pt from `vadusa train-heads` or `vadusa train-joint`")
    others = {}
    for path in args.also_heads:
        label = Path(path).parent.name or "heads"
        while label in others or label in ("vadusa", "ar", "draft", "typical"):
            label += "x"
        others[label] = decoding_bundle(cfg, path, decoding)
        if others[label].heads is None:
            raise UserFacingError(f"--also-heads {path} has no draft heads: give a heads.pt "
                                  "from `vadusa train-heads` or `vadusa train-joint`")
        if others[label].family != bundle.family:
            raise UserFacingError(f"--also-heads {path} is a {others[label].family} model, "
                                  f"{args.checkpoint} a {bundle.family} one")
        settings += vadusa_grid(heads_from=label)
    draft = None
    if decoding.draft_checkpoint:  # draft-model settings whenever a draft model is known
        draft = load_draft(bundle, decoding)
        settings += draft_settings(args.draft_tokens or [decoding.draft_tokens])
    elif args.draft_tokens:
        raise UserFacingError("--draft-tokens needs a draft model: pass --draft DIR/base.pt "
                              "from `vadusa train-draft` (or set decoding.draft_checkpoint)")
    results = bench(bundle, requests, decoding, settings, draft=draft, others=others,
                    compile=args.compile)
    print(f"{bundle.family}, {len(requests)} utterances, {torch.get_num_threads()} threads, "
          f"{str(bundle.dtype).removeprefix('torch.')} unless named"
          + (f", compiled ({args.compile})" if args.compile else ""))
    print(format_bench(results))
    if args.out:
        write_bench(Path(args.out), results)
    # tracked after the race, so the W&B process does not share the CPU with the timing
    run_dir = (Path(args.out).with_suffix("") if args.out
               else Path(Plan(cfg).bench_dir(bundle.family)))
    with open_tracker(cfg, stage="bench", out_dir=run_dir, family=bundle.family,
                      setting=Path(args.out).stem if args.out else None) as tracker:
        use_inputs(cfg, tracker, models=[Path(args.checkpoint), *map(Path, args.also_heads),
                                         *draft_models(decoding)],
                   trees=[s.tree for s in settings if s.method == "vadusa"])
        tracker.log_table("bench", BENCH_COLUMNS,
                          [[r.get(c) for c in BENCH_COLUMNS] for r in results])
        tracker.log_summary({f"{r['setting']}/{k}": r[k] for r in results
                             for k in ("speedup", "mean_accepted", "tokens_per_second")})
    return 0


SUBCOMMANDS = {
    "bench": Subcommand("decoding speed of several settings, side by side",
                        bench_options, cmd_bench),
}
