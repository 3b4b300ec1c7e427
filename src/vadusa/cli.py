"""``vadusa``: the one command-line entry point; every Snakemake rule calls a subcommand.

Every subcommand takes ``--config FILE`` (repeatable, later files win) and ``--set KEY=VALUE``
(repeatable, YAML values, e.g. ``--set corpus.synthetic.hours=0.5``). Errors a user can fix
(config typos, missing inputs) print one clear line and exit with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vadusa import __version__
from vadusa.config import Config, ConfigError, DecodingConfig, load_config

if TYPE_CHECKING:
    from vadusa.model.loading import TTSBundle

log = logging.getLogger("vadusa")

FAMILIES = ("whisper", "hubert", "wav2vec2", "encodec")  # vadusa.tokenizers.registry.FAMILIES
VOCODER_HELP = ("unit2mel or codec checkpoint (default: vocoder/<family>/unit2mel.pt; for "
                "encodec the codec, tokens/encodec/codec/codec.pt or tokens.encodec.weights)")


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
    _corpus_option(p)
    p.add_argument("--out", help="output JSON (default: <corpus>/qa/metrics.json)")
    p.add_argument("--per-voice", type=int, help="utterances per voice (judge.qa_per_voice)")

    p = sub.add_parser("train-ssl", help="train a HuBERT or wav2vec2 model from scratch")
    _common(p)
    _family(p, choices=("hubert", "wav2vec2"))
    _corpus_option(p)
    p.add_argument("--out", help="output directory (default: tokens/<family>/ssl)")

    p = sub.add_parser("train-codec", help="train the encodec family's codec from scratch "
                       "(tokens.encodec.scratch)")
    _common(p)
    _corpus_option(p)
    p.add_argument("--out", help="output directory (default: tokens/encodec/codec): codec.pt, "
                   "last.pt")

    p = sub.add_parser("fit-kmeans", help="fit the k-means quantizer of a token family")
    _common(p)
    _family(p)
    _corpus_option(p)
    p.add_argument("--out", help="k-means artifact (default: tokens/<family>/kmeans.npz)")

    p = sub.add_parser("tokenize", help="turn every split of the corpus into token files")
    _common(p)
    _family(p)
    _corpus_option(p)
    p.add_argument("--out", help="token directory (default: tokens/<family>)")

    p = sub.add_parser("train-vocoder", help="train the unit-to-mel network of a token family")
    _common(p)
    _family(p)
    _corpus_option(p)
    p.add_argument("--tokens", help="token directory (default: tokens/<family>)")
    p.add_argument("--out", help="output directory (default: vocoder/<family>)")

    p = sub.add_parser("align", help="train a CTC phone recogniser on a family's tokens and "
                       "write every split's phone durations in token frames")
    _common(p)
    _family(p)
    _corpus_option(p)
    p.add_argument("--tokens", help="token directory (default: tokens/<family>)")
    p.add_argument("--out", help="output directory (default: durations/<family>)")

    p = sub.add_parser("train-durations", help="train the duration model (symbols + speaker "
                       "-> frames) on the aligner's durations")
    _common(p)
    _family(p)
    _corpus_option(p)
    _durations_option(p)
    p.add_argument("--out", help="output directory (default: models/<family>/durations)")

    p = sub.add_parser("train-base", help="train the AR TTS model on a token family")
    _common(p)
    _family(p)
    _corpus_option(p)
    p.add_argument("--tokens", help="token directory (default: tokens/<family>)")
    _durations_option(p)
    _duration_model_option(p)
    p.add_argument("--out", help="output directory (default: models/<family>/base)")

    p = sub.add_parser("train-draft", help="train a small draft model for draft-model "
                       "speculative decoding: train-base with the `draft` section's sizes")
    _common(p)
    _family(p, required=False)
    _corpus_option(p)
    p.add_argument("--tokens", help="token directory (default: tokens/<family>; the family "
                   "is then read from it)")
    _durations_option(p)
    _duration_model_option(p)
    p.add_argument("--out", help="output directory (default: models/<family>/draft)")

    p = sub.add_parser("decode", help="decode a list of texts to speech tokens (jsonl)")
    _common(p)
    p.add_argument("--checkpoint", required=True, help="a trained model (base.pt)")
    p.add_argument("--texts", required=True, help="one `text` or `speaker<TAB>text` per line")
    p.add_argument("--out", required=True, help="output jsonl: tokens, timing, forwards")
    _decoding_options(p)
    p.add_argument("--batch-size", type=int, help="utterances per batch (decoding.batch_size)")

    p = sub.add_parser("synthesize", help="text -> speech tokens -> waveform")
    _common(p)
    p.add_argument("--checkpoint", required=True, help="a trained model (base.pt)")
    p.add_argument("--text", required=True)
    p.add_argument("--speaker", help="a training speaker (see the error for the list)")
    p.add_argument("--prompt-wav", help="a recording of a new voice (needs --prompt-text)")
    p.add_argument("--prompt-text", help="the transcript of --prompt-wav")
    p.add_argument("--vocoder", help=VOCODER_HELP)
    _decoding_options(p)
    p.add_argument("--out", required=True, help="output WAV file")

    p = sub.add_parser("resynthesize", help="audio -> tokens -> audio -> Whisper WER")
    _common(p)
    _family(p, required=False)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--split", choices=("train", "dev", "test"), help="a corpus split")
    source.add_argument("--list", help="a file of `path<TAB>transcript` lines")
    source.add_argument("--librivox", action="store_true",
                        help="the LibriVox recordings of Debian's pocketsphinx-testdata")
    _corpus_option(p)
    p.add_argument("--vocoder", help=VOCODER_HELP)
    p.add_argument("--speaker", help="vocoder voice for outside recordings (default: the first)")
    p.add_argument("--copy", action="store_true",
                   help="no units: each input's own mel through HiFi-GAN (copy synthesis, the "
                   "vocoder's ceiling) instead of --family's tokens")
    p.add_argument("--limit", type=int, help="only the first N utterances of the split (0: all)")
    p.add_argument("--out", required=True, help="output directory (wavs/ and metrics.json)")

    p = sub.add_parser("evaluate", help="a trained model on a corpus split -> audio -> WER")
    _common(p)
    p.add_argument("--checkpoint", required=True, help="a trained model (base.pt)")
    p.add_argument("--split", choices=("train", "dev", "test"), default="test")
    _corpus_option(p)
    p.add_argument("--vocoder", help=VOCODER_HELP)
    _decoding_options(p)
    p.add_argument("--batch-size", type=int, help="utterances per batch (decoding.batch_size)")
    p.add_argument("--limit", type=int, help="only the first N utterances of the split (0: all)")
    p.add_argument("--out", required=True, help="output directory (wavs/, tokens.jsonl, "
                   "metrics.json)")

    p = sub.add_parser("listen", help="a page of test utterances side by side (recording and "
                       "each system), and the planned phone spans over the outputs")
    _common(p)
    _family(p)
    _corpus_option(p)
    p.add_argument("--split", choices=("train", "dev", "test"), default="test")
    p.add_argument("--system", action="append", required=True, metavar="NAME=DIR",
                   help="an `evaluate` or `resynthesize` output directory (repeatable)")
    p.add_argument("--utterances", type=int, default=4, help="utterances shown (default: 4)")
    p.add_argument("--out", required=True, help="output directory (index.html, alignment.png)")

    p = sub.add_parser("bench", help="decoding speed of several settings, side by side")
    _common(p)
    p.add_argument("--checkpoint", required=True, help="a trained model (base.pt)")
    texts = p.add_mutually_exclusive_group(required=True)
    texts.add_argument("--texts", help="one `text` or `speaker<TAB>text` per line")
    texts.add_argument("--split", choices=("train", "dev", "test"),
                       help="the texts and speakers of a corpus split")
    _corpus_option(p)
    p.add_argument("--batch-sizes", type=int, nargs="*", default=[8],
                   help="batched AR settings besides the batch-1 baseline (default: 8; give "
                   "none to skip them)")
    p.add_argument("--tau", type=int, nargs="+", help="VADUSA settings: tolerances "
                   "(default: decoding.tau); needs a checkpoint with draft heads")
    p.add_argument("--heads", type=int, nargs="+", help="VADUSA settings: draft heads used "
                   "(default: decoding.heads)")
    p.add_argument("--tree", nargs="+", help="VADUSA settings: node counts or tree files "
                   "(default: decoding.tree)")
    p.add_argument("--typical", action="store_true",
                   help="also MEDUSA-2's typical acceptance, per heads and tree")
    p.add_argument("--also-heads", nargs="+", default=[], metavar="HEADS_PT",
                   help="other draft heads of the same family (e.g. heads.kind: hydra): their "
                   "VADUSA settings race in the same run against the same AR baseline, named "
                   "after the checkpoint's folder (models/whisper/hydra/heads.pt -> "
                   "hydra-h4-n16-t3); joint heads decode with their own base")
    p.add_argument("--draft", help="draft-model settings: the draft model (base.pt from "
                   "`vadusa train-draft`; default: decoding.draft_checkpoint, if set)")
    p.add_argument("--draft-tokens", type=int, nargs="+", help="draft-model settings: tokens "
                   "the draft proposes per step, one setting each (default: "
                   "decoding.draft_tokens)")
    _precision_option(p)
    p.add_argument("--compile", nargs="?", const="default", default="",
                   choices=("default", "eager"),
                   help="AR steps and tree passes with fixed shapes, compiled by "
                   "torch.compile (CUDA graphs on a GPU); both sides of every ratio alike. "
                   "'eager': traced into one graph but run eagerly (a check)")
    p.add_argument("--limit", type=int, help="only the first N texts (0: all)")
    p.add_argument("--out", help="write the results as JSON (one record per setting)")

    p = sub.add_parser("train-heads", help="train draft heads on a frozen base model (VADUSA)")
    _heads_options(p)
    p = sub.add_parser("train-joint",
                       help="train base and draft heads together (VADUSA-wt)")
    _heads_options(p)

    p = sub.add_parser("calibrate", help="measure draft acceptance on a split and build trees")
    _common(p)
    p.add_argument("--checkpoint", required=True, help="a model with draft heads (heads.pt)")
    p.add_argument("--split", choices=("train", "dev", "test"), default="dev")
    _corpus_option(p)
    p.add_argument("--limit", type=int, default=40, help="utterances decoded (default: 40)")
    p.add_argument("--nodes", type=int, nargs="+", default=[16],
                   help="tree sizes to build (default: 16); one file per size")
    p.add_argument("--tau", type=int, help="tolerance the table is measured under "
                   "(decoding.tau)")
    _precision_option(p)
    p.add_argument("--out", required=True,
                   help="output directory: acceptance.json and tree-<nodes>.json")

    p = sub.add_parser("sweep", help="Optuna study over tau, heads, tree size (and sampling): "
                       "speedup against AR vs WER")
    _common(p)
    p.add_argument("--checkpoint", required=True, help="a model with draft heads (heads.pt)")
    _corpus_option(p)
    p.add_argument("--vocoder", help=VOCODER_HELP)
    p.add_argument("--split", choices=("train", "dev", "test"),
                   help="split decoded in every trial (default: sweep.split)")
    p.add_argument("--limit", type=int, help="its first utterances (default: sweep.utterances)")
    p.add_argument("--trials", type=int,
                   help="completed trials the study runs to, over all workers "
                        "(default: sweep.trials)")
    p.add_argument("--storage", help="'' = SQLite in --out, journal:PATH, or a database URL "
                   "(default: sweep.storage)")
    p.add_argument("--study", help="study name (default: the output directory's name and a "
                   "digest of the model, vocoder and settings)")
    _precision_option(p)
    p.add_argument("--out", required=True, help="output directory: study.db, trials.csv, "
                   "pareto.csv, chosen.yaml, plots")
    p.add_argument("--report-only", action="store_true",
                   help="write the CSVs, chosen.yaml and plots of the study as it is; no trials")

    p = sub.add_parser("table", help="the main table (markdown, CSV, HTML): family x method, "
                       "WER, CER, SIM, accepted length, speedup, RTF")
    _common(p)
    p.add_argument("--families", nargs="+", help="token families (default: tokens.families)")
    p.add_argument("--out", help="output directory (default: tables/): main.md, .csv, .html")
    p.add_argument("--name", default="main",
                   help="file name of the main table, without extension (default: main)")
    p.add_argument("--open", action="store_true",
                   help="instead, the open questions of each family (target open_questions: "
                   "tau 1..4+, heads in {2, 4, 6}): open_<family>.md, .csv, .html, .png")
    p.add_argument("--ablation", action="store_true",
                   help="instead, the alignment ablation of each family (target ablation): "
                   "ablation_<family>.md, .csv, .html")

    p = sub.add_parser("wandb-report", help="the methods compared per token family (speedup "
                       "vs WER, accepted length vs tau, tree size vs time, the main table): a "
                       "local page, and a W&B Report when online")
    _common(p)
    p.add_argument("--families", nargs="+", help="token families (default: those of "
                   "tokens.families with results)")
    p.add_argument("--out", help="output directory of the local page (default: "
                   "results/<experiment>/wandb_report): index.html, the PNGs, data.json")
    online = p.add_mutually_exclusive_group()
    online.add_argument("--online", action="store_true", default=None,
                        help="also build a W&B Report (needs `pip install wandb-workspaces` "
                        "and `wandb login`; default: when tracking.mode or WANDB_MODE is "
                        "online)")
    online.add_argument("--offline", dest="online", action="store_false",
                        help="only the local page, whatever tracking.mode says")
    p.set_defaults(online=None)  # neither flag: tracking.mode decides
    return parser


def _decoding_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", choices=("ar", "vadusa", "draft"),
                        help="ar (KV-cached baseline), vadusa (draft heads) or draft (a draft "
                        "model, --draft) (decoding.method; default ar)")
    parser.add_argument("--tau", type=int, help="VADUSA tolerance: samples of the base head a "
                        "draft token may match (decoding.tau)")
    parser.add_argument("--heads", type=int, help="draft heads used (decoding.heads; 0 = all)")
    parser.add_argument("--tree", help="a node count, fastest, or a tree file from "
                        "`vadusa calibrate` (decoding.tree)")
    parser.add_argument("--acceptance", choices=("tolerance", "typical"),
                        help="acceptance rule (decoding.acceptance)")
    parser.add_argument("--draft", help="--method draft: the draft model, a base.pt from "
                        "`vadusa train-draft` (decoding.draft_checkpoint)")
    parser.add_argument("--draft-tokens", type=int, help="--method draft: tokens the draft "
                        "proposes per step, gamma (decoding.draft_tokens)")
    _precision_option(parser)


def _precision_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", choices=("auto", "float32", "bfloat16"),
                        help="weights and activations while decoding (decoding.precision; "
                        "auto: bfloat16 on CPUs with AVX512-BF16 or AMX, else float32)")


def _decoding(cfg: Config, args: argparse.Namespace) -> DecodingConfig:
    """The decoding config with the command line's choices applied."""
    changes = {key: getattr(args, key) for key in ("method", "tau", "heads", "tree",
                                                   "acceptance", "batch_size", "precision",
                                                   "draft_tokens")
               if getattr(args, key, None) is not None}
    if getattr(args, "draft", None) is not None:
        changes["draft_checkpoint"] = args.draft
    return dataclasses.replace(cfg.decoding, **changes)


def _draft_bundle(bundle: TTSBundle, decoding: DecodingConfig) -> TTSBundle | None:
    """The draft model of ``--method draft`` (None for the other methods), loaded and checked
    against the target before any decoding starts."""
    from vadusa.decoding.run import load_draft  # noqa: PLC0415

    return load_draft(bundle, decoding) if decoding.method == "draft" else None


def _decoding_bundle(cfg: Config, checkpoint: str, decoding: DecodingConfig) -> TTSBundle:
    """A trained model on the configured device, in the decoding precision."""
    from vadusa.devices import resolve_device, resolve_precision  # noqa: PLC0415
    from vadusa.model.loading import load_tts  # noqa: PLC0415

    device = resolve_device(cfg.device)
    return load_tts(checkpoint, device, dtype=resolve_precision(decoding.precision, device))


def _heads_options(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--checkpoint", required=True, help="the base model (base.pt)")
    _corpus_option(parser)
    parser.add_argument("--tokens", help="token directory (default: tokens/<family>)")
    _durations_option(parser)
    parser.add_argument("--out", required=True, help="output directory (heads.pt, last.pt)")


def _durations_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--durations", help="the aligner's durations, `vadusa align`'s output "
                        "(default: durations/<family>; with model.alignment: duration)")


def _duration_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration-model", help="the duration model, `vadusa train-durations`"
                        "'s durations.pt (default: models/<family>/durations/durations.pt; "
                        "with model.alignment: duration)")


def _durations_dir(cfg: Config, args: argparse.Namespace, family: str) -> Path:
    return (Path(args.durations) if args.durations
            else cfg.experiment_dir / "durations" / family)


def _duration_model(cfg: Config, args: argparse.Namespace, family: str) -> Path:
    return (Path(args.duration_model) if args.duration_model
            else cfg.experiment_dir / "models" / family / "durations" / "durations.pt")


def _corpus_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", help="corpus directory (default: results/<experiment>/corpus)")


def _vocoder_path(cfg: Config, args: argparse.Namespace, family: str) -> Path:
    """``--vocoder``, or the family's vocoder of this experiment (``encodec``: its codec)."""
    if args.vocoder:
        return Path(args.vocoder)
    if family == "encodec":
        from vadusa.tokenizers.registry import codec_file  # noqa: PLC0415

        return codec_file(cfg)
    return cfg.experiment_dir / "vocoder" / family / "unit2mel.pt"


BENCH_COLUMNS = ("setting", "method", "heads_from", "batch_size", "tau", "heads", "tree",
                 "acceptance", "gamma", "precision", "speedup", "rate_speedup", "bound",
                 "bound_fraction", "mean_accepted", "tokens_per_second", "real_time_factor",
                 "forwards_per_utterance", "wall_seconds")


def _use_inputs(cfg: Config, tracker: Any, models: Sequence[Path] = (),
                trees: Sequence[str] = ()) -> None:
    """Declare the checkpoints (and calibrated trees) a stage reads as inputs of its run, under
    the names their producing stages logged them. Only the experiment's own files: published
    weights and node counts are no stage's output, and W&B would upload them anew."""
    from vadusa.tracking import artifact_name  # noqa: PLC0415

    root = cfg.experiment_dir.resolve()
    inputs = [(Path(m), "model") for m in models]
    for tree in trees:  # a tree file: its calibrate directory is the artifact
        path = Path(str(tree))
        if not str(tree).isdigit() and path.is_file():
            calibrated = (path.parent / "acceptance.json").is_file()
            inputs.append((path.parent if calibrated else path, "trees" if calibrated
                           else "tree"))
    seen = set()  # encodec's codec is both its tokenizer and its vocoder: declared once
    for path, kind in inputs:
        if path.exists() and path.resolve().is_relative_to(root) and path.resolve() not in seen:
            seen.add(path.resolve())
            tracker.use_artifact(path, artifact_name(cfg, path), kind)


def _tokenizer_models(cfg: Config, family: str | None) -> list[Path]:
    """The family's tokenizer checkpoints trained by the pipeline (``weights: scratch``)."""
    from vadusa.tokenizers.registry import codec_path, family_dir  # noqa: PLC0415

    if family in ("hubert", "wav2vec2") and getattr(cfg.tokens, family).weights == "scratch":
        return [family_dir(cfg, family) / "ssl" / "model.pt"]
    if family == "encodec" and cfg.tokens.encodec.weights == "scratch":
        return [codec_path(cfg)]
    return []


def _draft_models(decoding: DecodingConfig) -> list[Path]:
    return [Path(decoding.draft_checkpoint)] if decoding.draft_checkpoint else []


def _decoding_setting(bundle: TTSBundle, decoding: DecodingConfig) -> str:
    """One decoding setting named as ``vadusa bench`` names it (``ar-b1``, ``draft-g4``,
    ``vadusa-hall-n16-t3``), with the heads' training mode after the method."""
    from vadusa.decoding.bench import vadusa_settings  # noqa: PLC0415

    if decoding.method == "ar":
        return f"ar-b{decoding.batch_size}"
    if decoding.method == "draft":
        return f"draft-g{decoding.draft_tokens}"
    typical = decoding.acceptance == "typical"
    name = vadusa_settings([decoding.tau], [decoding.heads], [str(decoding.tree)],
                           typical)[-1].name  # the typical setting comes last
    mode = (bundle.meta.get("heads") or {}).get("mode")
    return name.replace("-", f"-{mode}-", 1) if mode else name


def _family(parser: argparse.ArgumentParser,
            choices: tuple[str, ...] = FAMILIES,
            required: bool = True) -> None:
    parser.add_argument("--family", required=required, choices=choices, help="token family")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config, args.overrides)
        if args.command in TORCHRUN_COMMANDS:
            _maybe_torchrun(args.command, list(argv) if argv is not None else sys.argv[1:],
                            cfg.device)
        return COMMANDS[args.command](cfg, args)
    except (ConfigError, FileNotFoundError, UserFacingError) as exc:
        print(f"vadusa {args.command}: error: {exc}", file=sys.stderr)
        return 2


class UserFacingError(RuntimeError):
    pass


# The trainers that run as DDP under torchrun (training.tts.Distributed); in a job with several
# GPUs they relaunch themselves there (training/launch.py), so the rule's command stays one.
TORCHRUN_COMMANDS = ("train-base", "train-draft")


def _maybe_torchrun(command: str, argv: list[str], device: str) -> None:
    from vadusa.training.launch import LaunchError, relaunch_under_torchrun  # noqa: PLC0415

    try:
        relaunch_under_torchrun(command, argv, device)  # returns only when one process is due
    except LaunchError as exc:
        raise UserFacingError(str(exc)) from exc


def _user_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean "fix your input", reported without a traceback."""
    from vadusa.checkpoint import CheckpointError  # noqa: PLC0415
    from vadusa.data.audio import AudioError  # noqa: PLC0415
    from vadusa.data.candidates import CorpusSourceError  # noqa: PLC0415
    from vadusa.data.durations import DurationStoreError  # noqa: PLC0415
    from vadusa.data.manifest import ManifestError  # noqa: PLC0415
    from vadusa.data.synthetic import CorpusError  # noqa: PLC0415
    from vadusa.data.text import TextError  # noqa: PLC0415
    from vadusa.data.voices import VoiceError  # noqa: PLC0415
    from vadusa.decoding.tree import TreeError  # noqa: PLC0415
    from vadusa.eval.evaluate import EvaluationError  # noqa: PLC0415
    from vadusa.eval.judge import JudgeError  # noqa: PLC0415
    from vadusa.eval.listen import ListenError  # noqa: PLC0415
    from vadusa.eval.resynthesize import ResynthesisError  # noqa: PLC0415
    from vadusa.eval.similarity import SimilarityError  # noqa: PLC0415
    from vadusa.eval.table import TableError  # noqa: PLC0415
    from vadusa.model.loading import SynthesisInputError  # noqa: PLC0415
    from vadusa.sweep.study import SweepError  # noqa: PLC0415
    from vadusa.tokenizers.base import TokenizerError  # noqa: PLC0415
    from vadusa.tokenizers.codec import CodecError  # noqa: PLC0415
    from vadusa.tokenizers.ssl import SSLError  # noqa: PLC0415
    from vadusa.tokenizers.store import TokenStoreError  # noqa: PLC0415
    from vadusa.tracking.report import ReportError  # noqa: PLC0415
    from vadusa.training.aligner import AlignTrainError  # noqa: PLC0415
    from vadusa.training.codec import CodecTrainError  # noqa: PLC0415
    from vadusa.training.durations import DurationTrainError  # noqa: PLC0415
    from vadusa.training.heads import HeadsTrainError  # noqa: PLC0415
    from vadusa.training.ssl import SSLTrainError  # noqa: PLC0415
    from vadusa.training.tts import TTSTrainError  # noqa: PLC0415
    from vadusa.training.vocoder import VocoderTrainingError  # noqa: PLC0415
    from vadusa.vocoder import VocoderError  # noqa: PLC0415

    return (AudioError, CorpusSourceError, ManifestError, CorpusError, TextError, VoiceError,
            JudgeError, CheckpointError, ResynthesisError, TokenizerError, TokenStoreError,
            SynthesisInputError, SSLError, SSLTrainError, VocoderError, VocoderTrainingError,
            TTSTrainError, EvaluationError, HeadsTrainError, TreeError, SimilarityError,
            TableError, SweepError, CodecError, CodecTrainError, ReportError, AlignTrainError,
            DurationTrainError, DurationStoreError, ListenError)


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


def _corpus(cfg: Config, args: argparse.Namespace) -> Path:
    return Path(args.corpus) if args.corpus else cfg.experiment_dir / "corpus"


@_guard
def cmd_train_ssl(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.tokenizers.registry import family_dir  # noqa: PLC0415
    from vadusa.training.ssl import train_ssl  # noqa: PLC0415

    out = Path(args.out) if args.out else family_dir(cfg, args.family) / "ssl"
    print(train_ssl(cfg, args.family, _corpus(cfg, args), out))
    return 0


@_guard
def cmd_train_codec(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.checkpoint import load_checkpoint  # noqa: PLC0415
    from vadusa.tokenizers.registry import codec_path  # noqa: PLC0415
    from vadusa.training.codec import train_codec  # noqa: PLC0415

    if cfg.tokens.encodec.weights != "scratch":
        raise UserFacingError(f"tokens.encodec.weights={cfg.tokens.encodec.weights} names the "
                              f"published codec, so the pipeline would not use a codec trained "
                              f"here: set tokens.encodec.weights=scratch to train one")
    out = Path(args.out) if args.out else codec_path(cfg).parent
    final = train_codec(cfg, _corpus(cfg, args), out)
    meta = load_checkpoint(final, kind="codec")["meta"]
    dev = {k: v for k, v in meta.items() if k.startswith("dev/")}
    print(final)
    print(f"encodec codec: {meta.get('steps')} steps, {meta['frame_rate']:g} frames/s, "
          f"{meta['bins']} tokens; "
          + (", ".join(f"{k} {v:.4f}" for k, v in sorted(dev.items())) if dev
             else "no dev losses (no dev split)"))
    return 0


@_guard
def cmd_fit_kmeans(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.devices import resolve_device  # noqa: PLC0415
    from vadusa.tokenizers.registry import family_dir  # noqa: PLC0415
    from vadusa.tokenizers.tokenize import fit_kmeans  # noqa: PLC0415

    out = Path(args.out) if args.out else family_dir(cfg, args.family) / "kmeans.npz"
    quantizer = fit_kmeans(cfg, args.family, _corpus(cfg, args), out, resolve_device(cfg.device))
    print(f"{args.family}: {quantizer.n_clusters} clusters on {quantizer.settings['frames']} "
          f"frames -> {out}")
    return 0


@_guard
def cmd_tokenize(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.devices import resolve_device  # noqa: PLC0415
    from vadusa.tokenizers.registry import family_dir  # noqa: PLC0415
    from vadusa.tokenizers.tokenize import tokenize_corpus  # noqa: PLC0415
    from vadusa.tracking import open_tracker  # noqa: PLC0415

    out = Path(args.out) if args.out else family_dir(cfg, args.family)
    with open_tracker(cfg, stage="tokenize", out_dir=out, family=args.family) as tracker:
        _use_inputs(cfg, tracker, models=_tokenizer_models(cfg, args.family))
        stats = tokenize_corpus(cfg, args.family, _corpus(cfg, args), out,
                                out / "kmeans.npz", resolve_device(cfg.device))
        tracker.log_summary({f"tokens/{k}": stats[k] for k in (
            "frames_per_second", "cluster_usage", "entropy_bits", "repeat_rate")})
        tracker.log_figure("tokens/cluster_usage", out / "cluster_usage.png")
    print(f"{args.family}: {stats['frames_per_second']:.2f} frames/s (declared "
          f"{stats['declared_frame_rate']:.2f}), {stats['clusters_used']}/{stats['vocab_size']} "
          f"clusters used, entropy {stats['entropy_bits']:.2f} bits, "
          f"repeat rate {stats['repeat_rate']:.3f}")
    return 0


@_guard
def cmd_train_vocoder(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.tokenizers.registry import family_dir  # noqa: PLC0415
    from vadusa.training.vocoder import train_vocoder  # noqa: PLC0415

    if args.family == "encodec":
        raise UserFacingError("the encodec family's vocoder is its codec's decoder: run "
                              "`vadusa train-codec` (tokens/encodec/codec/codec.pt)")
    tokens = Path(args.tokens) if args.tokens else family_dir(cfg, args.family)
    out = Path(args.out) if args.out else cfg.experiment_dir / "vocoder" / args.family
    print(train_vocoder(cfg, args.family, _corpus(cfg, args), tokens, out))
    return 0


@_guard
def cmd_align(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.tokenizers.registry import family_dir  # noqa: PLC0415
    from vadusa.training.aligner import train_aligner  # noqa: PLC0415

    tokens = Path(args.tokens) if args.tokens else family_dir(cfg, args.family)
    out = Path(args.out) if args.out else cfg.experiment_dir / "durations" / args.family
    qa = json.loads(train_aligner(cfg, args.family, _corpus(cfg, args), tokens, out)
                    .read_text())
    print(f"{args.family}: dev phone error rate {100 * qa['dev_phone_error_rate']:.1f} %, "
          f"{sum(qa['unaligned'].values())} utterances not aligned, "
          f"{qa['mean_frames_per_spoken_symbol']:.2f} frames per spoken symbol -> {out}")
    return 0


@_guard
def cmd_train_durations(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.training.durations import train_durations  # noqa: PLC0415

    out = (Path(args.out) if args.out
           else cfg.experiment_dir / "models" / args.family / "durations")
    print(train_durations(cfg, _corpus(cfg, args), _durations_dir(cfg, args, args.family),
                          out, args.family))
    return 0


def _alignment_inputs(cfg: Config, args: argparse.Namespace, family: str) -> dict[str, Any]:
    """train_base's durations and duration model, when the config aligns by durations."""
    if cfg.model.alignment != "duration":
        return {}
    return {"durations_dir": _durations_dir(cfg, args, family),
            "duration_model": _duration_model(cfg, args, family)}


@_guard
def cmd_train_base(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.tokenizers.registry import family_dir  # noqa: PLC0415
    from vadusa.training.tts import train_base  # noqa: PLC0415

    tokens = Path(args.tokens) if args.tokens else family_dir(cfg, args.family)
    out = Path(args.out) if args.out else cfg.experiment_dir / "models" / args.family / "base"
    print(train_base(cfg, args.family, _corpus(cfg, args), tokens, out,
                     **_alignment_inputs(cfg, args, args.family)))
    return 0


@_guard
def cmd_train_draft(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.tokenizers.registry import family_dir  # noqa: PLC0415
    from vadusa.tokenizers.store import read_meta  # noqa: PLC0415
    from vadusa.training.tts import train_base  # noqa: PLC0415

    if not (args.family or args.tokens):
        raise UserFacingError("give --family or --tokens (the family is read from it)")
    tokens = Path(args.tokens) if args.tokens else family_dir(cfg, args.family)
    family = args.family or read_meta(tokens)["family"]
    out = Path(args.out) if args.out else cfg.experiment_dir / "models" / family / "draft"
    # the base model's training, with the draft's sizes and steps (Config.for_draft)
    print(train_base(cfg.for_draft(), family, _corpus(cfg, args), tokens, out,
                     stage="train-draft", **_alignment_inputs(cfg, args, family)))
    return 0


@_guard
def cmd_decode(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.decoding.run import decode_requests, read_texts, write_jsonl  # noqa: PLC0415

    decoding = _decoding(cfg, args)
    bundle = _decoding_bundle(cfg, args.checkpoint, decoding)
    records = list(decode_requests(bundle, read_texts(Path(args.texts)), decoding,
                                   draft=_draft_bundle(bundle, decoding)))
    write_jsonl(Path(args.out), records)
    tokens = sum(len(r["tokens"]) for r in records)
    seconds = sum(r["seconds"] for r in records) / decoding.batch_size
    print(f"{len(records)} utterances, {tokens} tokens, {tokens / seconds:.1f} tokens/s "
          f"(batch {decoding.batch_size}) -> {args.out}")
    return 0


@_guard
def cmd_synthesize(cfg: Config, args: argparse.Namespace) -> int:
    import numpy as np  # noqa: PLC0415

    from vadusa.data import audio  # noqa: PLC0415
    from vadusa.decoding.run import decode_prefix  # noqa: PLC0415
    from vadusa.devices import resolve_device  # noqa: PLC0415
    from vadusa.model.loading import resolve_speaker, synthesis_prefix  # noqa: PLC0415
    from vadusa.vocoder import load_vocoder, voice_for  # noqa: PLC0415

    device = resolve_device(cfg.device)
    decoding = _decoding(cfg, args)
    bundle = _decoding_bundle(cfg, args.checkpoint, decoding)
    prompt = None
    if args.prompt_wav or args.prompt_text:
        if not (args.prompt_wav and args.prompt_text):
            raise UserFacingError("--prompt-wav and --prompt-text go together")
        from vadusa.tokenizers.registry import load_tokenizer  # noqa: PLC0415

        wave, rate = audio.read(args.prompt_wav)
        prompt = (args.prompt_text, load_tokenizer(cfg, bundle.family, device)
                  .encode(wave, rate).tolist())
    prefix = synthesis_prefix(bundle, args.text, args.speaker, prompt,
                              cfg.decoding.max_tokens_per_symbol)
    speaker = resolve_speaker(bundle, args.speaker)
    if args.speaker is None and speaker is not None:
        print(f"no --speaker: speaking with the model's default voice, {speaker}")
    result = decode_prefix(bundle, prefix, decoding, draft=_draft_bundle(bundle, decoding))
    if not result.tokens:
        raise UserFacingError("the model produced no speech tokens for this text")
    vocoder_path = _vocoder_path(cfg, args, bundle.family)
    vocoder = load_vocoder(vocoder_path, device=device, family=bundle.family)
    voice = voice_for(vocoder, speaker)
    wave, rate = vocoder.decode(np.asarray(result.tokens), voice)
    audio.write_wav(args.out, wave, rate)
    print(f"{len(result.tokens)} tokens in {result.seconds:.2f} s "
          f"({len(result.tokens) / result.seconds:.1f} tokens/s) -> {args.out}")
    return 0


@_guard
def cmd_listen(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.eval.listen import listening_page  # noqa: PLC0415
    from vadusa.tokenizers.registry import family_dir  # noqa: PLC0415
    from vadusa.tokenizers.store import read_meta  # noqa: PLC0415

    systems = {}
    for spec in args.system:
        name, sep, directory = spec.partition("=")
        if not sep or not name or not directory:
            raise UserFacingError(f"--system {spec!r}: expected NAME=DIR, e.g. AR=eval/ar/test")
        systems[name] = Path(directory)
    frame_rate = float(read_meta(family_dir(cfg, args.family))["frame_rate"])
    print(listening_page(_corpus(cfg, args), args.split, systems, args.utterances,
                         Path(args.out), frame_rate))
    return 0


@_guard
def cmd_resynthesize(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.devices import resolve_device  # noqa: PLC0415
    from vadusa.eval import resynthesize as rs  # noqa: PLC0415
    from vadusa.eval.judge import WhisperJudge  # noqa: PLC0415
    from vadusa.tokenizers.registry import load_tokenizer  # noqa: PLC0415
    from vadusa.tracking import open_tracker  # noqa: PLC0415
    from vadusa.vocoder import load_vocoder  # noqa: PLC0415

    if bool(args.copy) == bool(args.family):
        raise UserFacingError("give --family (units) or --copy (the input's own mel), one of "
                              "them")
    out = Path(args.out)
    if args.split:
        items = rs.items_from_split(_corpus(cfg, args), args.split, args.limit)
    elif args.list:
        items = rs.items_from_list(Path(args.list))[: args.limit or None]
    else:
        items = rs.items_from_list(rs.write_librivox_list(out / "librivox.tsv"))
    device = resolve_device(cfg.device)
    if args.copy:
        from vadusa.vocoder.hifigan import CopySynthesis  # noqa: PLC0415

        tokenizer = vocoder = CopySynthesis(cfg.vocoder.hifigan, device)
    else:
        vocoder_path = _vocoder_path(cfg, args, args.family)
        vocoder = load_vocoder(vocoder_path, device=device,
                               family="encodec" if args.family == "encodec" else None)
        if vocoder.family != args.family:
            raise UserFacingError(f"{vocoder_path} is a vocoder for {vocoder.family!r} "
                                  f"tokens, not {args.family!r}")
        tokenizer = load_tokenizer(cfg, args.family, device)
    source = args.split or ("list" if args.list else "librivox")
    with open_tracker(cfg, stage="resynthesize", out_dir=out, family=tokenizer.family,
                      setting=source) as tracker:
        if not args.copy:
            _use_inputs(cfg, tracker, models=[vocoder_path,
                                              *_tokenizer_models(cfg, args.family)])
        metrics = rs.resynthesize(items, tokenizer, vocoder, WhisperJudge(cfg.judge), out,
                                  args.speaker)
        tracker.log_summary({k: metrics[k] for k in ("wer", "cer", "input_wer", "input_cer")})
    print(rs.format_resynthesis(metrics))
    return 0


@_guard
def cmd_evaluate(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.devices import resolve_device  # noqa: PLC0415
    from vadusa.eval.evaluate import evaluate_tts, format_evaluation, split_requests  # noqa: PLC0415
    from vadusa.eval.judge import WhisperJudge  # noqa: PLC0415
    from vadusa.tracking import open_tracker  # noqa: PLC0415
    from vadusa.vocoder import load_vocoder  # noqa: PLC0415

    device = resolve_device(cfg.device)
    decoding = _decoding(cfg, args)
    bundle = _decoding_bundle(cfg, args.checkpoint, decoding)
    # a draft that does not fit fails here, not after the vocoder loaded; evaluation then
    # gets the same, already loaded draft (run.load_draft keeps it)
    _draft_bundle(bundle, decoding)
    vocoder_path = _vocoder_path(cfg, args, bundle.family)
    vocoder = load_vocoder(vocoder_path, device=device, family=bundle.family)
    if vocoder.vocab_size != bundle.vocab.n_units:
        raise UserFacingError(f"{vocoder_path} decodes {vocoder.vocab_size} "
                              f"units, the model {args.checkpoint} emits "
                              f"{bundle.vocab.n_units}: retrain one of them on the same tokens")
    requests, ids = split_requests(_corpus(cfg, args), args.split, args.limit)
    similarity = references = None
    if cfg.judge.speaker_similarity:
        from vadusa.eval.evaluate import reference_audio  # noqa: PLC0415
        from vadusa.eval.similarity import SpeakerSimilarity  # noqa: PLC0415

        references = reference_audio(_corpus(cfg, args), args.split, ids)
        similarity = SpeakerSimilarity(str(device))
    out = Path(args.out)
    with open_tracker(cfg, stage="evaluate", out_dir=out, family=bundle.family,
                      setting=f"{_decoding_setting(bundle, decoding)}-{args.split}",
                      tags=(decoding.method, args.split)) as tracker:
        _use_inputs(cfg, tracker, models=[Path(args.checkpoint), vocoder_path,
                                          *_draft_models(decoding)],
                    trees=[decoding.tree] if decoding.method == "vadusa" else [])
        metrics = evaluate_tts(bundle, requests, ids, decoding, vocoder,
                               WhisperJudge(cfg.judge), out, similarity, references)
        tracker.log_summary({k: metrics[k] for k in ("wer", "cer", "tokens_per_second",
                                                     "real_time_factor", "sim")
                             if metrics[k] is not None})
    print(format_evaluation(metrics))
    return 0


@_guard
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
    from vadusa.eval.evaluate import split_requests  # noqa: PLC0415
    from vadusa.tracking import open_tracker  # noqa: PLC0415

    decoding = cfg.decoding  # bench's --tau/--heads/--tree are lists of settings, not one
    if args.precision:
        decoding = dataclasses.replace(decoding, precision=args.precision)
    if args.draft:
        decoding = dataclasses.replace(decoding, draft_checkpoint=args.draft)
    bundle = _decoding_bundle(cfg, args.checkpoint, decoding)
    if args.texts:
        requests = read_texts(Path(args.texts))[: args.limit or None]
    else:
        requests = split_requests(_corpus(cfg, args), args.split, args.limit)[0]
    settings = ar_settings(args.batch_sizes, raced_precision(bundle))
    if bundle.heads is not None:
        d = decoding
        settings += vadusa_settings(args.tau or [d.tau], args.heads or [d.heads],
                                    args.tree or [str(d.tree)], args.typical)
    elif (args.tau or args.heads or args.tree or args.typical) and not args.also_heads:
        raise UserFacingError(f"{args.checkpoint} has no draft heads: VADUSA settings need a "
                              "heads.pt from `vadusa train-heads` or `vadusa train-joint`")
    others = {}
    for path in args.also_heads:
        label = Path(path).parent.name or "heads"
        while label in others or label in ("vadusa", "ar", "draft", "typical"):
            label += "x"
        others[label] = _decoding_bundle(cfg, path, decoding)
        if others[label].heads is None:
            raise UserFacingError(f"--also-heads {path} has no draft heads: give a heads.pt "
                                  "from `vadusa train-heads` or `vadusa train-joint`")
        if others[label].family != bundle.family:
            raise UserFacingError(f"--also-heads {path} is a {others[label].family} model, "
                                  f"{args.checkpoint} a {bundle.family} one")
        d = decoding
        settings += vadusa_settings(args.tau or [d.tau], args.heads or [d.heads],
                                    args.tree or [str(d.tree)], args.typical, heads_from=label)
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
    run_dir = Path(args.out).with_suffix("") if args.out else cfg.experiment_dir / "bench"
    with open_tracker(cfg, stage="bench", out_dir=run_dir, family=bundle.family,
                      setting=Path(args.out).stem if args.out else None) as tracker:
        _use_inputs(cfg, tracker, models=[Path(args.checkpoint), *map(Path, args.also_heads),
                                          *_draft_models(decoding)],
                    trees=[s.tree for s in settings if s.method == "vadusa"])
        tracker.log_table("bench", BENCH_COLUMNS,
                          [[r.get(c) for c in BENCH_COLUMNS] for r in results])
        tracker.log_summary({f"{r['setting']}/{k}": r[k] for r in results
                             for k in ("speedup", "mean_accepted", "tokens_per_second")})
    return 0


def _train_heads(cfg: Config, args: argparse.Namespace, joint: bool) -> int:
    from vadusa.model.loading import load_tts  # noqa: PLC0415
    from vadusa.tokenizers.registry import family_dir  # noqa: PLC0415
    from vadusa.training.heads import train_heads  # noqa: PLC0415

    family = load_tts(args.checkpoint).family
    tokens = Path(args.tokens) if args.tokens else family_dir(cfg, family)
    print(train_heads(cfg, Path(args.checkpoint), _corpus(cfg, args), tokens, Path(args.out),
                      joint=joint, durations_dir=_durations_dir(cfg, args, family)))
    return 0


@_guard
def cmd_train_heads(cfg: Config, args: argparse.Namespace) -> int:
    return _train_heads(cfg, args, joint=False)


@_guard
def cmd_train_joint(cfg: Config, args: argparse.Namespace) -> int:
    return _train_heads(cfg, args, joint=True)


@_guard
def cmd_calibrate(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.decoding.calibrate import calibrate, format_table  # noqa: PLC0415
    from vadusa.eval.evaluate import split_requests  # noqa: PLC0415
    from vadusa.tracking import artifact_name, open_tracker  # noqa: PLC0415

    decoding = _decoding(cfg, args)
    bundle = _decoding_bundle(cfg, args.checkpoint, decoding)
    requests = split_requests(_corpus(cfg, args), args.split, args.limit)[0]
    out = Path(args.out)
    table, trees = calibrate(bundle, requests, decoding, args.nodes, out)
    print(format_table(table))
    for path, expected in trees:
        print(f"{path}: expected {expected:.2f} tokens per step")
    mode = (bundle.meta.get("heads") or {}).get("mode")
    with open_tracker(cfg, stage="calibrate", out_dir=out, family=bundle.family,
                      setting="-".join(p for p in (mode, f"tau{decoding.tau}") if p)) as tracker:
        _use_inputs(cfg, tracker, models=[Path(args.checkpoint)])
        tracker.log_summary({f"tree-{Path(path).stem.removeprefix('tree-')}/expected_length":
                             expected for path, expected in trees})
        tracker.log_artifact(out, artifact_name(cfg, out), "trees")
    return 0


@_guard
def cmd_sweep(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.checkpoint import file_digest  # noqa: PLC0415
    from vadusa.devices import resolve_device  # noqa: PLC0415
    from vadusa.eval.evaluate import split_requests  # noqa: PLC0415
    from vadusa.eval.judge import WhisperJudge  # noqa: PLC0415
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
    from vadusa.vocoder import load_vocoder  # noqa: PLC0415

    sweep = cfg.sweep
    if args.trials is not None:
        sweep = dataclasses.replace(sweep, trials=args.trials)
    if args.storage is not None:
        sweep = dataclasses.replace(sweep, storage=args.storage)
    decoding = cfg.decoding
    if args.precision:
        decoding = dataclasses.replace(decoding, precision=args.precision)
    bundle = _decoding_bundle(cfg, args.checkpoint, decoding)
    if bundle.heads is None:
        raise UserFacingError(f"{args.checkpoint} has no draft heads: sweep a heads.pt from "
                              "`vadusa train-heads` or `vadusa train-joint`")
    vocoder_path = _vocoder_path(cfg, args, bundle.family)
    split, limit = args.split or sweep.split, args.limit or sweep.utterances
    out = Path(args.out)
    # one study per model, vocoder and measuring setup: other weights or settings start a
    # new study (in the same storage) instead of mixing with old trials; more trials or
    # another storage continue the same one
    setup = {"checkpoint": file_digest(args.checkpoint), "vocoder": file_digest(vocoder_path),
             "split": split, "limit": limit, "decoding": dataclasses.asdict(decoding),
             "judge": {k: v for k, v in dataclasses.asdict(cfg.judge).items()
                       if k != "speaker_similarity"},  # the sweep does not measure SIM
             "seed": cfg.seed,
             "sweep": {k: v for k, v in dataclasses.asdict(sweep).items()
                       if k not in ("trials", "storage")}}
    digest = hashlib.sha256(json.dumps(setup, sort_keys=True).encode()).hexdigest()[:10]
    name = args.study or f"{out.name}-{digest}"
    study = open_study(name, open_storage(sweep.storage, out), sweep.sampler, cfg.seed)
    if args.report_only:
        print(json.dumps(write_report(study, sweep, out)["trials"]))
        return 0

    vocoder = load_vocoder(vocoder_path, device=resolve_device(cfg.device),
                           family=bundle.family)
    requests = split_requests(_corpus(cfg, args), split, limit)[0]
    space = search_space(sweep, len(bundle.heads), decoding.temperature, decoding.top_k)
    objective = DecodingObjective(bundle, requests, decoding, vocoder, WhisperJudge(cfg.judge))
    print(f"sweep {name}: {completed(study)} of {sweep.trials} trials done; "
          f"{len(requests)} utterances per trial; space {space}", flush=True)

    with open_tracker(cfg, stage="sweep", out_dir=out, family=bundle.family,
                      setting=out.name) as tracker:
        _use_inputs(cfg, tracker, models=[Path(args.checkpoint), vocoder_path])
        def log(study: Any) -> None:
            trial = study.trials[-1]
            if trial.values is not None:
                tracker.log({"trial/speedup": trial.values[0], "trial/wer": trial.values[1]}
                            | {f"param/{k}": v for k, v in trial.params.items()
                               if isinstance(v, int | float)}, step=trial.number)
            write_report(study, sweep, out)  # the outputs follow the study as it runs

        ran = run_study(study, objective, space, sweep.trials, on_trial=log)
        summary = write_report(study, sweep, out)
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


@_guard
def cmd_table(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.atomic import write_text_atomic  # noqa: PLC0415
    from vadusa.eval.table import COLUMNS, main_table, to_csv, to_html, to_markdown  # noqa: PLC0415

    families = args.families or list(cfg.tokens.families)
    out = Path(args.out) if args.out else cfg.experiment_dir / "tables"
    out.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, list[dict[str, Any]], tuple[str, ...]]] = []
    if args.ablation:
        from vadusa.eval.table import ABLATION_COLUMNS, ablation_rows  # noqa: PLC0415

        for family in families:
            configured = (f"model.alignment={cfg.model.alignment}, "
                          f"train.token_noise={cfg.train.token_noise}, "
                          f"model.dropout={cfg.model.dropout}")
            rows = ablation_rows(cfg.experiment_dir, family, configured,
                                 dict(cfg.ablation.variants))
            markdown = to_markdown(rows, ABLATION_COLUMNS)
            write_text_atomic(out / f"ablation_{family}.md", markdown)
            write_text_atomic(out / f"ablation_{family}.csv", to_csv(rows, ABLATION_COLUMNS))
            write_text_atomic(out / f"ablation_{family}.html",
                              to_html(rows, ABLATION_COLUMNS, f"alignment ablation: {family}"))
            print(markdown, end="")
            written.append((f"ablation_{family}", rows, ABLATION_COLUMNS))
    elif args.open:
        from vadusa.eval.figures import open_questions  # noqa: PLC0415
        from vadusa.eval.table import OPEN_COLUMNS, open_rows  # noqa: PLC0415

        h = cfg.heads
        for family in families:
            rows = open_rows(cfg.experiment_dir, family, list(h.open_taus), list(h.open_heads),
                             h.eval_taus[0], h.count)
            markdown = to_markdown(rows, OPEN_COLUMNS)
            write_text_atomic(out / f"open_{family}.md", markdown)
            write_text_atomic(out / f"open_{family}.csv", to_csv(rows, OPEN_COLUMNS))
            write_text_atomic(out / f"open_{family}.html",
                              to_html(rows, OPEN_COLUMNS, f"open questions: {family}"))
            open_questions(rows, out / f"open_{family}.png",
                           f"{family}: tolerance and head count (frozen heads, "
                           f"{h.open_utterances or 'all'} test utterances)")
            print(markdown, end="")
            written.append((f"open_{family}", rows, OPEN_COLUMNS))
    else:
        rows = main_table(cfg.experiment_dir, families)
        markdown = to_markdown(rows)
        write_text_atomic(out / f"{args.name}.md", markdown)
        write_text_atomic(out / f"{args.name}.csv", to_csv(rows))
        write_text_atomic(out / f"{args.name}.html", to_html(rows, title=f"{args.name} table"))
        print(markdown, end="")
        written.append((args.name, rows, COLUMNS))
    setting = "ablation" if args.ablation else "open" if args.open else args.name
    _track_tables(cfg, out, setting, families, written)
    return 0


def _track_tables(cfg: Config, out: Path, setting: str, families: list[str],
                  written: list[tuple[str, list[dict[str, Any]], tuple[str, ...]]]) -> None:
    """The tables as W&B tables (raw numbers), and their CSVs as artifacts."""
    from vadusa.tracking import artifact_name, open_tracker  # noqa: PLC0415

    # one family: a family's run; several: the experiment's, with the families as tags
    family = families[0] if len(families) == 1 else None
    with open_tracker(cfg, stage="table", out_dir=out, family=family, setting=setting,
                      tags=tuple(families)) as tracker:
        for name, rows, columns in written:
            # "" (no tau for AR...) as None: a W&B table column keeps one type
            tracker.log_table(f"tables/{name}", [*columns, "wer_low", "wer_high"],
                              [[None if r.get(c) == "" else r.get(c) for c in columns]
                               + list(r.get("wer_ci") or [None, None]) for r in rows])
            csv_path = out / f"{name}.csv"
            tracker.log_artifact(csv_path, artifact_name(cfg, csv_path), "table")


@_guard
def cmd_wandb_report(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.tracking.report import collect, online_by_default, publish, write_page  # noqa: PLC0415

    out = Path(args.out) if args.out else cfg.experiment_dir / "wandb_report"
    report = collect(cfg, args.families)
    page = write_page(report, out)
    print(f"{page}: {', '.join(f.family for f in report.families) or 'no family'}"
          + (f", tables {', '.join(report.tables)}" if report.tables else ""))
    for missing in report.missing + [m for f in report.families for m in f.missing]:
        print(f"  missing: {missing}")
    if args.online if args.online is not None else online_by_default(cfg):
        print(f"W&B Report: {publish(report, cfg, out)}")
    return 0


COMMANDS = {
    "config": cmd_config,
    "prepare": cmd_prepare,
    "corpus-qa": cmd_corpus_qa,
    "train-ssl": cmd_train_ssl,
    "train-codec": cmd_train_codec,
    "fit-kmeans": cmd_fit_kmeans,
    "tokenize": cmd_tokenize,
    "train-vocoder": cmd_train_vocoder,
    "align": cmd_align,
    "train-durations": cmd_train_durations,
    "train-base": cmd_train_base,
    "train-draft": cmd_train_draft,
    "decode": cmd_decode,
    "synthesize": cmd_synthesize,
    "resynthesize": cmd_resynthesize,
    "evaluate": cmd_evaluate,
    "listen": cmd_listen,
    "bench": cmd_bench,
    "train-heads": cmd_train_heads,
    "train-joint": cmd_train_joint,
    "calibrate": cmd_calibrate,
    "sweep": cmd_sweep,
    "table": cmd_table,
    "wandb-report": cmd_wandb_report,
}


if __name__ == "__main__":
    sys.exit(main())

