"""From a config name to a tokenizer: ``family`` -> feature extractor (+ k-means artifact).

Artifacts of a family live in its token directory (``vadusa.plan.Plan.tokens``): a
from-scratch HuBERT/wav2vec2 (``Plan.ssl_model``), a from-scratch codec (``Plan.codec``), the
k-means (``Plan.kmeans``), token files, ``stats.json``. The ``encodec`` family needs no
k-means: its quantizer is the codec's first codebook (``vadusa.tokenizers.codec``). The
``melrvq`` family's k-means is residual (``vadusa.tokenizers.residual``, several codebooks)
and is also its vocoder.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vadusa.checkpoint import file_digest
from vadusa.config import Config
from vadusa.plan import Plan
from vadusa.tokenizers.base import FeatureExtractor, Tokenizer, TokenizerError
from vadusa.tokenizers.kmeans import KMeansQuantizer
from vadusa.tokenizers.residual import KIND, ResidualKMeans
from vadusa.tokenizers.store import read_meta

FAMILIES = ("whisper", "hubert", "wav2vec2", "encodec", "melrvq")
OFFICIAL_BINS = 1024  # entries per codebook of the published 24 kHz EnCodec


def family_dir(cfg: Config, family: str) -> Path:
    return Path(Plan(cfg).tokens(family))


def codec_path(cfg: Config) -> Path:
    """Where the pipeline writes its from-scratch ``encodec`` codec."""
    return Path(Plan(cfg).codec())


def build_extractor(cfg: Config, family: str, device: torch.device | None = None
                    ) -> FeatureExtractor:
    device = device or torch.device("cpu")
    if family == "whisper":
        from vadusa.eval.judge import whisper_model_dir  # noqa: PLC0415
        from vadusa.tokenizers.whisper import WhisperEncoderFeatures  # noqa: PLC0415

        units = cfg.tokens.whisper
        # tiny.en's encoder, never the judge of record's: the judge stays independent
        model_dir = units.model_dir or whisper_model_dir("tiny.en")
        return WhisperEncoderFeatures(model_dir, pool=units.pool, threads=cfg.judge.threads,
                                      subtract_silence=units.subtract_silence,
                                      layer=units.layer,
                                      device="cuda" if device.type == "cuda" else "cpu")
    if family in ("hubert", "wav2vec2"):
        from vadusa.tokenizers.ssl import build_ssl_extractor  # noqa: PLC0415

        units = getattr(cfg.tokens, family)
        scratch = Path(Plan(cfg).ssl_model(family))
        return build_ssl_extractor(family, units, scratch if units.weights == "scratch" else None,
                                   device)
    if family == "encodec":
        from vadusa.tokenizers.codec import CodecEncoder, load_codec_model  # noqa: PLC0415

        return CodecEncoder(load_codec_model(cfg.tokens.encodec, codec_path(cfg)), device)
    if family == "melrvq":
        from vadusa.tokenizers.mel import MelWithUnits, StackedMel  # noqa: PLC0415

        rvq = cfg.tokens.melrvq
        if rvq.first == "mel":
            return StackedMel(rvq.stack)
        # codebook 1 from another family's units: its tokenizer, with its k-means
        if n_clusters(cfg, rvq.first) != rvq.n_clusters:
            raise TokenizerError(f"tokens.melrvq.first: {rvq.first} needs tokens.melrvq."
                                 f"n_clusters equal to tokens.{rvq.first}.n_clusters "
                                 f"({n_clusters(cfg, rvq.first)}), not {rvq.n_clusters}")
        kmeans = Path(Plan(cfg).kmeans(rvq.first))
        if not kmeans.is_file():
            raise TokenizerError(f"tokens.melrvq.first: {rvq.first} reads the {rvq.first} "
                                 f"units' k-means, and {kmeans} is missing: run `vadusa "
                                 f"fit-kmeans --family {rvq.first}` first")
        units = kmeans_tokenizer(cfg, rvq.first, kmeans, device)
        return MelWithUnits(rvq.stack, units, {
            "family": rvq.first, "features": getattr(units.extractor, "settings", {}),
            "kmeans_sha256": file_digest(kmeans)})
    raise ValueError(f"unknown token family {family!r} (available: {', '.join(FAMILIES)})")


def codec_file(cfg: Config) -> Path:
    """The file the ``encodec`` family's codec is read from: the scratch checkpoint, or the
    published model's weights."""
    units = cfg.tokens.encodec
    return codec_path(cfg) if units.weights == "scratch" else Path(units.weights)


def code_vectors(cfg: Config, family: str, tokens_dir: Path) -> torch.Tensor:
    """(N, K, D) the entries of every codebook of an acoustic family's quantizer: the one that
    made the codes in ``tokens_dir`` (checked by its digest in their meta.json)."""
    if family == "melrvq":
        path = Path(tokens_dir) / Path(Plan(cfg).kmeans(family)).name
    elif family == "encodec":
        path = codec_file(cfg)
    else:
        raise TokenizerError(f"{family!r} tokens have one codebook: no codebook entries to give")
    if not path.is_file():
        raise TokenizerError(f"no {family} quantizer at {path}: the codes in {tokens_dir} were "
                             "made by it (`vadusa fit-kmeans` / `vadusa train-codec`)")
    if file_digest(path) != read_meta(tokens_dir).get("quantizer_sha256"):
        raise TokenizerError(f"{path} is not the quantizer that made the codes in {tokens_dir}: "
                             f"retokenize (`vadusa tokenize --family {family}`)")
    if family == "melrvq":
        return ResidualKMeans.load(path).vectors()
    from vadusa.tokenizers.codec import FirstCodebook, load_codec_model  # noqa: PLC0415

    return FirstCodebook(load_codec_model(cfg.tokens.encodec, codec_path(cfg))).vectors()


def n_clusters(cfg: Config, family: str) -> int:
    """The family's vocabulary: k-means clusters, or the codec's codebook entries."""
    if family == "encodec":
        units = cfg.tokens.encodec
        return units.scratch.bins if units.weights == "scratch" else OFFICIAL_BINS
    return getattr(cfg.tokens, family).n_clusters


def load_tokenizer(cfg: Config, family: str, device: torch.device | None = None) -> Tokenizer:
    if family == "encodec":
        from vadusa.tokenizers.codec import codec_tokenizer, load_codec_model  # noqa: PLC0415

        model = load_codec_model(cfg.tokens.encodec, codec_path(cfg))
        return codec_tokenizer(model, device or torch.device("cpu"))
    return kmeans_tokenizer(cfg, family, Path(Plan(cfg).kmeans(family)), device)


def kmeans_tokenizer(cfg: Config, family: str, kmeans_path: Path,
                     device: torch.device | None = None) -> Tokenizer:
    """The configured extractor with the k-means at ``kmeans_path``, which must have been
    fitted on the same kind of features (same layer, etc.: same dims do not prove it)."""
    extractor = build_extractor(cfg, family, device)
    quantizer: KMeansQuantizer | ResidualKMeans
    if family == "melrvq":
        quantizer = ResidualKMeans.load(kmeans_path)
        if quantizer.settings.get("kind") != KIND or quantizer.input_dim != extractor.dim:
            raise TokenizerError(f"{kmeans_path} is not the melrvq family's residual k-means "
                                 f"for {extractor.dim}-dim frames: rerun `vadusa fit-kmeans "
                                 "--family melrvq`")
    else:
        quantizer = KMeansQuantizer.load(kmeans_path)
    fitted, now = quantizer.settings.get("features"), getattr(extractor, "settings", {})
    if fitted is not None and fitted != now:
        raise TokenizerError(f"{kmeans_path} was fitted on {family} features {fitted}, the "
                             f"config asks for {now}: rerun `vadusa fit-kmeans --family "
                             f"{family}` (or set tokens.{family} back)")
    return Tokenizer(family, extractor, quantizer)
