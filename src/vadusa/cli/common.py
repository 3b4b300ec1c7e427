"""What the subcommands share: their options, the error a user can fix, and the paths and
models several stages resolve alike.

Nothing here imports torch at module level: ``vadusa --help`` stays quick.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from vadusa.config import Config, DecodingConfig
from vadusa.config.model import NAR_DECODINGS
from vadusa.plan import NAR_FAMILIES, Plan

if TYPE_CHECKING:
    from vadusa.model.loading import TTSBundle

Handler = Callable[[Config, argparse.Namespace], int]
Parser = argparse.ArgumentParser | argparse._MutuallyExclusiveGroup

# = vadusa.tokenizers.registry.FAMILIES, which imports torch
FAMILIES = ("whisper", "hubert", "wav2vec2", "encodec", "melrvq")
SPLITS = ("train", "dev", "test")
VOCODER_HELP = ("unit2mel or codec checkpoint (default: the family's vocoder; for encodec the "
                "codec, trained here or tokens.encodec.weights)")
BASE_HELP = "a trained model (base.pt)"
HEADS_HELP = "a model with draft heads (heads.pt)"
TOKENS_HELP = "token directory (default: the family's, tokens/<family>)"
LIMIT_HELP = "only the first N utterances of the split (0: all)"
PROMPT_TOKENS_HELP = ("a prompted model's token directory, where the zero-shot prompts' tokens "
                      "come from (default: the family's, tokens/<family>)")
BATCH_SIZE_HELP = "utterances per batch (decoding.batch_size)"


class Subcommand(NamedTuple):
    """One ``vadusa`` subcommand: its help line, its options (besides ``common_options``)
    and its handler."""

    help: str
    options: Callable[[argparse.ArgumentParser], None]
    run: Handler


class UserFacingError(RuntimeError):
    pass


# Options.

def common_options(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--set`` and ``-v``: every subcommand has them."""
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help="YAML config file (repeatable; later files override earlier ones)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        dest="overrides", help="override one config key (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def family_option(parser: Parser, choices: tuple[str, ...] = FAMILIES,
                  required: bool = True) -> None:
    parser.add_argument("--family", required=required, choices=choices, help="token family")


def corpus_option(parser: Parser) -> None:
    parser.add_argument("--corpus", help="corpus directory (default: results/<experiment>/corpus)")


def split_option(parser: Parser, default: str | None = None, help: str | None = None) -> None:
    parser.add_argument("--split", choices=SPLITS, default=default, help=help)


def checkpoint_option(parser: Parser, help: str = BASE_HELP) -> None:
    parser.add_argument("--checkpoint", required=True, help=help)


def tokens_option(parser: Parser, help: str = TOKENS_HELP) -> None:
    parser.add_argument("--tokens", help=help)


def vocoder_option(parser: Parser) -> None:
    parser.add_argument("--vocoder", help=VOCODER_HELP)


def nar_option(parser: Parser) -> None:
    parser.add_argument("--nar", help="an acoustic family's NAR stage (nar.pt from `vadusa "
                        "train-nar`): codebooks 2..N are filled in and all are decoded "
                        "(default: models/<family>/nar/nar.pt if it exists; `none`: codebook 1 "
                        "alone)")
    nar_decoding_option(parser)


def nar_decoding_option(parser: Parser) -> None:
    parser.add_argument("--nar-decoding", choices=NAR_DECODINGS,
                        help="how the NAR stage picks codebooks 2..N (default: the `nar.decoding`"
                        " it was trained with; a mel stage, nar.mel_stage, decodes its mel as "
                        "it is)")


def limit_option(parser: Parser, help: str = LIMIT_HELP) -> None:
    parser.add_argument("--limit", type=int, help=help)


def batch_size_option(parser: Parser) -> None:
    parser.add_argument("--batch-size", type=int, help=BATCH_SIZE_HELP)


def durations_option(parser: Parser) -> None:
    parser.add_argument("--durations", help="the aligner's durations, `vadusa align`'s output "
                        "(default: durations/<family>; with model.alignment: duration)")


def duration_model_option(parser: Parser) -> None:
    parser.add_argument("--duration-model", help="the duration model, `vadusa train-durations`"
                        "'s durations.pt (default: models/<family>/durations/durations.pt; "
                        "with model.alignment: duration)")


def precision_option(parser: Parser) -> None:
    parser.add_argument("--precision", choices=("auto", "float32", "bfloat16"),
                        help="weights and activations while decoding (decoding.precision; "
                        "auto: bfloat16 on CPUs with AVX512-BF16 or AMX, else float32)")


# The decoding settings that are one value in decode, synthesize, evaluate and calibrate, and a
# list of settings to race in bench: their types (None: a string).
SETTING_TYPES: dict[str, type | None] = {"--tau": int, "--heads": int, "--tree": None,
                                         "--draft-tokens": int}


def setting_option(parser: Parser, flag: str, help: str, many: bool = False) -> None:
    """One decoding setting (``SETTING_TYPES``): a value, or with ``many`` one or more."""
    parser.add_argument(flag, type=SETTING_TYPES[flag], nargs="+" if many else None, help=help)


def decoding_options(parser: Parser) -> None:
    """One decoding setting: the options ``decoding_config`` applies to ``cfg.decoding``."""
    parser.add_argument("--method", choices=("ar", "vadusa", "draft"),
                        help="ar (KV-cached baseline), vadusa (draft heads) or draft (a draft "
                        "model, --draft) (decoding.method; default ar)")
    setting_option(parser, "--tau", "VADUSA tolerance: samples of the base head a draft token "
                   "may match (decoding.tau)")
    setting_option(parser, "--heads", "draft heads used (decoding.heads; 0 = all)")
    setting_option(parser, "--tree", "a node count, fastest, or a tree file from "
                   "`vadusa calibrate` (decoding.tree)")
    parser.add_argument("--acceptance", choices=("tolerance", "typical"),
                        help="acceptance rule (decoding.acceptance)")
    parser.add_argument("--draft", help="--method draft: the draft model, a base.pt from "
                        "`vadusa train-draft` (decoding.draft_checkpoint)")
    setting_option(parser, "--draft-tokens", "--method draft: tokens the draft proposes per "
                   "step, gamma (decoding.draft_tokens)")
    precision_option(parser)


# Errors a user can fix.

def _user_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean "fix your input", reported without a traceback."""
    from vadusa.checkpoint import CheckpointError  # noqa: PLC0415
    from vadusa.data.audio import AudioError  # noqa: PLC0415
    from vadusa.data.candidates import CorpusSourceError  # noqa: PLC0415
    from vadusa.data.durations import DurationStoreError  # noqa: PLC0415
    from vadusa.data.dvectors import DvectorStoreError  # noqa: PLC0415
    from vadusa.data.manifest import ManifestError  # noqa: PLC0415
    from vadusa.data.synthetic import CorpusError  # noqa: PLC0415
    from vadusa.data.text import TextError  # noqa: PLC0415
    from vadusa.data.voices import VoiceError  # noqa: PLC0415
    from vadusa.decoding.tree import TreeError  # noqa: PLC0415
    from vadusa.eval.evaluate import EvaluationError  # noqa: PLC0415
    from vadusa.eval.job_times import JobTimesError  # noqa: PLC0415
    from vadusa.eval.judge import JudgeError  # noqa: PLC0415
    from vadusa.eval.listen import ListenError  # noqa: PLC0415
    from vadusa.eval.resynthesize import ResynthesisError  # noqa: PLC0415
    from vadusa.eval.similarity import SimilarityError  # noqa: PLC0415
    from vadusa.eval.table import TableError  # noqa: PLC0415
    from vadusa.model.loading import SynthesisInputError  # noqa: PLC0415
    from vadusa.model.nar import NARError  # noqa: PLC0415
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
            DurationTrainError, DurationStoreError, ListenError, NARError, JobTimesError,
            DvectorStoreError)


def guard(fn: Handler) -> Handler:
    """The handler, with the pipeline's input errors turned into ``UserFacingError``."""
    def run(cfg: Config, args: argparse.Namespace) -> int:
        try:
            return fn(cfg, args)
        except _user_errors() as exc:
            raise UserFacingError(str(exc)) from exc

    return run


# Paths: the command line's, else where the experiment's plan puts them (vadusa.plan).

def corpus_dir(cfg: Config, args: argparse.Namespace) -> Path:
    return Path(args.corpus or Plan(cfg).corpus())


def tokens_dir(cfg: Config, args: argparse.Namespace, family: str | None) -> Path:
    return Path(args.tokens or Plan(cfg).tokens(family))


def durations_dir(cfg: Config, args: argparse.Namespace, family: str) -> Path:
    return Path(args.durations or Plan(cfg).durations(family))


#: which speakers of a split a measurement takes: all, those the model was trained on, or
#: the others (``vadusa bench --speakers``; the zero-shot table's groups)
SPEAKER_GROUPS = ("all", "seen", "unseen")


def split_requests_for(cfg: Config, args: argparse.Namespace, bundle: TTSBundle, split: str,
                       limit: int | None, speakers: str = "all"
                       ) -> tuple[list[Any], list[str]]:
    """A corpus split's utterances as requests for ``bundle``, and their ids: the first
    ``limit`` (None or 0: all) of the ``speakers`` group (``SPEAKER_GROUPS``). A prompted model
    (``model.prompt``) gets the zero-shot protocol: each request is prompted by another
    utterance of its speaker, tokens from the family's token directory (``data/prompts.py``).
    Evaluation, the races, the sweep and calibration all ask here."""
    from vadusa.eval.evaluate import EvaluationError, split_requests  # noqa: PLC0415

    prompted = bool(bundle.meta.get("prompt"))
    tokens = Path(getattr(args, "tokens", None) or Plan(cfg).tokens(bundle.family))
    if prompted and not (tokens / "meta.json").is_file():
        raise UserFacingError(
            f"no token directory at {tokens}: the model is prompted, so each utterance is "
            f"prompted by another of its speaker, whose tokens come from there; give the "
            f"{bundle.family!r} tokens of this corpus with --tokens (from `vadusa tokenize`)")
    requests, ids = split_requests(corpus_dir(cfg, args), split,
                                   limit if speakers == "all" else None,
                                   tokens if prompted else None, cfg.model.prompt_max_seconds)
    if speakers == "all":
        return requests, ids
    seen = speakers == "seen"
    kept = [(r, i) for r, i in zip(requests, ids, strict=True)
            if (r.speaker in bundle.speakers) == seen][:limit or None]
    if not kept:
        raise EvaluationError(f"split {split!r} has no utterances of {speakers} speakers "
                              f"(the model's training speakers: {len(bundle.speakers)})")
    return [r for r, _ in kept], [i for _, i in kept]


def vocoder_path(cfg: Config, args: argparse.Namespace, family: str) -> Path:
    """``--vocoder``, or the family's vocoder of this experiment (``encodec``: its codec;
    ``melrvq``: its residual k-means, which HiFi-GAN decodes)."""
    if args.vocoder:
        return Path(args.vocoder)
    if family == "melrvq":
        return Path(Plan(cfg).kmeans(family))
    if family == "encodec":
        from vadusa.tokenizers.registry import codec_file  # noqa: PLC0415

        return codec_file(cfg)
    return Path(Plan(cfg).vocoder(family))


def nar_stage(cfg: Config, args: argparse.Namespace, family: str, vocoder_file: Path,
              device: Any) -> Any:
    """The NAR stage that fills an acoustic family's codebooks 2..N before vocoding (a
    ``vadusa.model.nar.NARStage``), or None: another family, ``--nar none``, or no stage
    trained yet (said on stderr: the audio is then codebook 1's alone)."""
    if family not in NAR_FAMILIES or args.nar == "none":
        return None
    path = Path(args.nar or Plan(cfg).nar(family))
    if not args.nar and not path.is_file():
        print(f"no NAR stage at {path}: decoding codebook 1 alone (train one with `vadusa "
              f"train-nar --family {family}`)", file=sys.stderr)
        return None
    from vadusa.checkpoint import file_digest  # noqa: PLC0415
    from vadusa.model.nar import NARError, load_nar  # noqa: PLC0415

    stage = load_nar(path, device, family, getattr(args, "nar_decoding", None))
    if stage.meta.get("quantizer_sha256") != file_digest(vocoder_file):
        raise NARError(f"{path} was trained on codes of another quantizer than {vocoder_file} "
                       f"decodes: retrain it (`vadusa train-nar --family {family}`) or give "
                       "the vocoder it was trained with")
    return stage


# Decoding.

def decoding_config(cfg: Config, args: argparse.Namespace) -> DecodingConfig:
    """The decoding config with the command line's choices applied."""
    changes = {key: getattr(args, key) for key in ("method", "tau", "heads", "tree",
                                                   "acceptance", "batch_size", "precision",
                                                   "draft_tokens")
               if getattr(args, key, None) is not None}
    if getattr(args, "draft", None) is not None:
        changes["draft_checkpoint"] = args.draft
    return dataclasses.replace(cfg.decoding, **changes)


def decoding_bundle(cfg: Config, checkpoint: str, decoding: DecodingConfig) -> TTSBundle:
    """A trained model on the configured device, in the decoding precision. ``auto`` takes
    bfloat16 where the device promises it faster and a timing of both confirms it
    (``decoding.timing.faster_precision``), else float32; the choice is printed."""
    import torch  # noqa: PLC0415

    from vadusa.devices import resolve_device, resolve_precision  # noqa: PLC0415
    from vadusa.model.loading import load_tts  # noqa: PLC0415

    device = resolve_device(cfg.device)
    dtype = resolve_precision(decoding.precision, device)
    bundle = load_tts(checkpoint, device, dtype=dtype)
    if decoding.precision == "auto" and dtype != torch.float32:
        from vadusa.decoding.timing import faster_precision  # noqa: PLC0415

        chosen, ms = faster_precision(bundle)
        print("decoding.precision auto: " + ", ".join(f"{k} {v:.2f} ms" for k, v in ms.items())
              + f" (1-token and 17-token forwards) -> {str(chosen).removeprefix('torch.')}",
              flush=True)
        if chosen != dtype:
            bundle = load_tts(checkpoint, device, dtype=chosen)
    return bundle


def draft_bundle(bundle: TTSBundle, decoding: DecodingConfig) -> TTSBundle | None:
    """The draft model of ``--method draft`` (None for the other methods), loaded and checked
    against the target before any decoding starts."""
    from vadusa.decoding.run import load_draft  # noqa: PLC0415

    return load_draft(bundle, decoding) if decoding.method == "draft" else None


# Tracking: the inputs a stage's run declares.

def tokenizer_models(cfg: Config, family: str | None) -> list[Path]:
    """The family's tokenizer checkpoints trained by the pipeline (``weights: scratch``)."""
    if family in ("hubert", "wav2vec2") and getattr(cfg.tokens, family).weights == "scratch":
        return [Path(Plan(cfg).ssl_model(family))]
    if family == "encodec" and cfg.tokens.encodec.weights == "scratch":
        return [Path(Plan(cfg).codec())]
    return []


def draft_models(decoding: DecodingConfig) -> list[Path]:
    return [Path(decoding.draft_checkpoint)] if decoding.draft_checkpoint else []


def use_inputs(cfg: Config, tracker: Any, models: Sequence[Path] = (),
               trees: Sequence[str] = ()) -> None:
    """Declare the checkpoints (and calibrated trees) a stage reads as inputs of its run, under
    the names their producing stages logged them. Only the experiment's own files: published
    weights and node counts are no stage's output, and W&B would upload them anew."""
    from vadusa.tracking import artifact_name  # noqa: PLC0415

    root = Path(Plan(cfg).root).resolve()
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
