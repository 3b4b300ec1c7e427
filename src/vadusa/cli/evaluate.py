"""Audio quality: ``resynthesize`` (tokens alone), ``evaluate`` (a trained model), ``listen``
(a page to hear them side by side)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from vadusa.cli.common import (
    PROMPT_TOKENS_HELP,
    Subcommand,
    UserFacingError,
    batch_size_option,
    checkpoint_option,
    corpus_dir,
    corpus_option,
    decoding_bundle,
    decoding_config,
    decoding_options,
    draft_bundle,
    draft_models,
    family_option,
    guard,
    limit_option,
    nar_decoding_option,
    nar_option,
    nar_stage,
    split_option,
    split_requests_for,
    tokenizer_models,
    tokens_option,
    use_inputs,
    vocoder_option,
    vocoder_path,
)
from vadusa.config import Config, DecodingConfig
from vadusa.plan import NAR_FAMILIES, Plan

if TYPE_CHECKING:
    from vadusa.model.loading import TTSBundle


def resynthesize_options(parser: argparse.ArgumentParser) -> None:
    family_option(parser, required=False)
    source = parser.add_mutually_exclusive_group(required=True)
    split_option(source, help="a corpus split")
    source.add_argument("--list", help="a file of `path<TAB>transcript` lines")
    source.add_argument("--librivox", action="store_true",
                        help="the LibriVox recordings of Debian's pocketsphinx-testdata")
    corpus_option(parser)
    vocoder_option(parser)
    parser.add_argument("--speaker",
                        help="vocoder voice for outside recordings (default: the first)")
    parser.add_argument("--copy", action="store_true",
                        help="no units: each input's own mel through HiFi-GAN (copy synthesis, "
                        "the vocoder's ceiling) instead of --family's tokens")
    parser.add_argument("--codebooks", type=int,
                        help="an acoustic family's first N codebooks only (default: all of "
                        "them): what each residual codebook adds")
    parser.add_argument("--nar", help="an acoustic family's NAR stage (nar.pt): codebook 1 "
                        "from the recording, codebooks 2..N from it (what the NAR stage loses "
                        "given a perfect codebook 1)")
    nar_decoding_option(parser)
    limit_option(parser)
    parser.add_argument("--out", required=True, help="output directory (wavs/ and metrics.json)")


@guard
def cmd_resynthesize(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.devices import resolve_device  # noqa: PLC0415
    from vadusa.eval import resynthesize as rs  # noqa: PLC0415
    from vadusa.eval.judge import WhisperJudge  # noqa: PLC0415
    from vadusa.tokenizers.registry import load_tokenizer  # noqa: PLC0415
    from vadusa.tracking import open_tracker  # noqa: PLC0415
    from vadusa.vocoder import load_vocoder, wants_embedding  # noqa: PLC0415

    if bool(args.copy) == bool(args.family):
        raise UserFacingError("give --family (units) or --copy (the input's own mel), one of "
                              "them")
    out = Path(args.out)
    if args.split:
        items = rs.items_from_split(corpus_dir(cfg, args), args.split, args.limit)
    elif args.list:
        items = rs.items_from_list(Path(args.list))[: args.limit or None]
    else:
        items = rs.items_from_list(rs.write_librivox_list(out / "librivox.tsv"))
    device = resolve_device(cfg.device)
    if args.copy:
        from vadusa.vocoder.hifigan import CopySynthesis  # noqa: PLC0415

        tokenizer = vocoder = CopySynthesis(cfg.vocoder.hifigan, device)
    else:
        vocoder_file = vocoder_path(cfg, args, args.family)
        vocoder = load_vocoder(vocoder_file, device=device,
                               family=args.family if args.family in NAR_FAMILIES else None)
        if vocoder.family != args.family:
            raise UserFacingError(f"{vocoder_file} is a vocoder for {vocoder.family!r} "
                                  f"tokens, not {args.family!r}")
        tokenizer = load_tokenizer(cfg, args.family, device)
    nar = None
    if args.nar:
        if args.copy or args.codebooks:
            raise UserFacingError("--nar fills every codebook of --family's codes: not with "
                                  "--copy or --codebooks")
        nar = nar_stage(cfg, args, args.family, vocoder_file, device)
    source = args.split or ("list" if args.list else "librivox")
    with open_tracker(cfg, stage="resynthesize", out_dir=out, family=tokenizer.family,
                      setting=source) as tracker:
        if not args.copy:
            use_inputs(cfg, tracker, models=[vocoder_file, *tokenizer_models(cfg, args.family),
                                             *([nar.path] if nar is not None else [])])
        encoder = None
        if wants_embedding(vocoder):
            from vadusa.eval.similarity import SpeakerSimilarity  # noqa: PLC0415

            encoder = SpeakerSimilarity(str(device))
        metrics = rs.resynthesize(items, tokenizer, vocoder, WhisperJudge(cfg.judge), out,
                                  args.speaker, args.codebooks, nar, encoder)
        tracker.log_summary({k: metrics[k] for k in ("wer", "cer", "input_wer", "input_cer")})
    print(rs.format_resynthesis(metrics))
    return 0


def decoding_setting(bundle: TTSBundle, decoding: DecodingConfig) -> str:
    """One decoding setting named as ``vadusa bench`` names it (``ar-b1``, ``draft-g4``,
    ``vadusa-hall-n16-t3``), with the heads' training mode after the method
    (``vadusa-frozen-hall-n16-t3``)."""
    from vadusa.decoding.bench import vadusa_settings  # noqa: PLC0415

    if decoding.method == "ar":
        return f"ar-b{decoding.batch_size}"
    if decoding.method == "draft":
        return f"draft-g{decoding.draft_tokens}"
    typical = decoding.acceptance == "typical"
    name = vadusa_settings([decoding.tau], [decoding.heads], [str(decoding.tree)],
                           typical)[-1].name  # the typical setting comes last
    mode = (bundle.meta.get("heads") or {}).get("mode")
    if not mode:
        return name
    method, _, rest = name.partition("-")  # vadusa or typical, then heads, tree (and tau)
    return f"{method}-{mode}-{rest}"


def evaluate_options(parser: argparse.ArgumentParser) -> None:
    checkpoint_option(parser)
    split_option(parser, default="test")
    corpus_option(parser)
    tokens_option(parser, PROMPT_TOKENS_HELP)
    vocoder_option(parser)
    nar_option(parser)
    decoding_options(parser)
    batch_size_option(parser)
    limit_option(parser)
    parser.add_argument("--out", required=True, help="output directory (wavs/, tokens.jsonl, "
                        "metrics.json)")


@guard
def cmd_evaluate(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.data.manifest import manifest_path, read_manifest  # noqa: PLC0415
    from vadusa.devices import resolve_device  # noqa: PLC0415
    from vadusa.eval.evaluate import (  # noqa: PLC0415
        SplitVoices,
        evaluate_tts,
        format_evaluation,
    )
    from vadusa.eval.judge import WhisperJudge  # noqa: PLC0415
    from vadusa.tracking import open_tracker  # noqa: PLC0415
    from vadusa.vocoder import load_vocoder, wants_embedding  # noqa: PLC0415

    device = resolve_device(cfg.device)
    decoding = decoding_config(cfg, args)
    bundle = decoding_bundle(cfg, args.checkpoint, decoding)
    # a draft that does not fit fails here, not after the vocoder loaded; evaluation then
    # gets the same, already loaded draft (run.load_draft keeps it)
    draft_bundle(bundle, decoding)
    vocoder_file = vocoder_path(cfg, args, bundle.family)
    vocoder = load_vocoder(vocoder_file, device=device, family=bundle.family)
    if vocoder.vocab_size != bundle.vocab.n_units:
        raise UserFacingError(f"{vocoder_file} decodes {vocoder.vocab_size} "
                              f"units, the model {args.checkpoint} emits "
                              f"{bundle.vocab.n_units}: retrain one of them on the same tokens")
    nar = nar_stage(cfg, args, bundle.family, vocoder_file, device)
    corpus = corpus_dir(cfg, args)
    requests, ids = split_requests_for(cfg, args, bundle, args.split, args.limit)
    voices = None
    if cfg.judge.speaker_similarity or wants_embedding(vocoder):
        from vadusa.eval.similarity import SpeakerSimilarity  # noqa: PLC0415

        voices = SplitVoices(corpus, args.split, ids, SpeakerSimilarity(str(device)))
    subsets = {r.id: r.subset
               for r in read_manifest(manifest_path(corpus, args.split))}
    out = Path(args.out)
    with open_tracker(cfg, stage="evaluate", out_dir=out, family=bundle.family,
                      setting=f"{decoding_setting(bundle, decoding)}-{args.split}",
                      tags=(decoding.method, args.split)) as tracker:
        use_inputs(cfg, tracker, models=[Path(args.checkpoint), vocoder_file,
                                         *draft_models(decoding),
                                         *([nar.path] if nar is not None else [])],
                   trees=[decoding.tree] if decoding.method == "vadusa" else [])
        metrics = evaluate_tts(bundle, requests, ids, decoding, vocoder,
                               WhisperJudge(cfg.judge), out, voices,
                               cfg.judge.speaker_similarity, nar, subsets)
        tracker.log_summary({k: metrics[k] for k in ("wer", "cer", "tokens_per_second",
                                                     "real_time_factor", "sim")
                             if metrics[k] is not None})
    print(format_evaluation(metrics))
    return 0


def listen_options(parser: argparse.ArgumentParser) -> None:
    family_option(parser)
    corpus_option(parser)
    split_option(parser, default="test")
    parser.add_argument("--system", action="append", required=True, metavar="NAME=DIR",
                        help="an `evaluate` or `resynthesize` output directory (repeatable)")
    parser.add_argument("--utterances", type=int,
                        help="utterances shown (default: measure.listen_utterances)")
    parser.add_argument("--out", required=True,
                        help="output directory (index.html, alignment.png)")


@guard
def cmd_listen(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.eval.listen import listening_page  # noqa: PLC0415
    from vadusa.tokenizers.store import read_meta  # noqa: PLC0415

    systems = {}
    for spec in args.system:
        name, sep, directory = spec.partition("=")
        if not sep or not name or not directory:
            raise UserFacingError(f"--system {spec!r}: expected NAME=DIR, e.g. AR=eval/ar/test")
        systems[name] = Path(directory)
    frame_rate = float(read_meta(Plan(cfg).tokens(args.family))["frame_rate"])
    utterances = args.utterances or cfg.measure.listen_utterances
    print(listening_page(corpus_dir(cfg, args), args.split, systems, utterances,
                         Path(args.out), frame_rate))
    return 0


SUBCOMMANDS = {
    "resynthesize": Subcommand("audio -> tokens -> audio -> Whisper WER",
                               resynthesize_options, cmd_resynthesize),
    "evaluate": Subcommand("a trained model on a corpus split -> audio -> WER",
                           evaluate_options, cmd_evaluate),
    "listen": Subcommand("a page of test utterances side by side (recording and each system), "
                         "and the planned phone spans over the outputs",
                         listen_options, cmd_listen),
}
