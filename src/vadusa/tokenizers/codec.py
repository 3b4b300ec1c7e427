"""The ``encodec`` token family: the first codebook of a neural audio codec, as in VALL-E.

A codec here is the ``encodec`` package's ``EncodecModel`` (Defossez et al. 2022): a SEANet
encoder, a residual vector quantizer (RVQ) of Q codebooks and a SEANet decoder.

    wave (T,) -> encoder -> latents (D, F) -> RVQ -> codes (Q, F)       one frame = hop samples
    codes (Q, F) -> sum of the Q code vectors (D, F) -> decoder -> wave (F * hop,)

Its weights come from one of two places (``tokens.encodec.weights``):

official  the published 24 kHz model, a plain state dict (``encodec_24khz-d7cc33bc.th``) read
          from a local file, never downloaded: 75 Hz, 32 codebooks of 1024, 1.5 to 24 kbps.
scratch   a small codec trained by the pipeline (``vadusa.training.codec``) with the sizes of
          ``tokens.encodec.scratch``, saved as a self-describing checkpoint of kind "codec".

The AR model's tokens are the first codebook's ids, one per frame. RVQ quantizes the encoder's
latents with codebook 1 first and only the residual with the later ones, so codebook 1 does
not depend on them: the tokens are the same at any bandwidth. The codec's decoder is the
family's vocoder and decodes from codebook 1 alone, because that is all the AR model predicts.
That is our choice; what it costs in intelligibility is measured separately, by resynthesis
(the judge's WER on decode(encode(x)) of test utterances), as for the other families.

    model = load_codec_model(cfg.tokens.encodec, scratch_path)
    tokens = codec_tokenizer(model).encode(wave, 16000)  # (F,) int64 in [0, 1024)
    wave, rate = CodecVocoder(model).decode(tokens, speaker="flite_rms")  # vadusa.vocoder.codec

Shapes: T samples, B batch, D latent dims, F frames (ceil(T / hop)), Q codebooks.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import torch
from encodec import EncodecModel
from encodec.modules import SEANetDecoder, SEANetEncoder
from encodec.quantization import ResidualVectorQuantizer

from vadusa.checkpoint import load_checkpoint, save_checkpoint
from vadusa.config import CodecTrainConfig, EncodecConfig
from vadusa.tokenizers.base import Tokenizer

FAMILY = "encodec"
CHECKPOINT_KIND = "codec"
OFFICIAL_NAME = "encodec_24khz-d7cc33bc.th"
OFFICIAL_URL = f"https://dl.fbaipublicfiles.com/encodec/v0/{OFFICIAL_NAME}"
OFFICIAL_SAMPLE_RATE = 24_000
OFFICIAL_BANDWIDTHS = (1.5, 3.0, 6.0, 12.0, 24.0)  # kbps, as the package lists them


class CodecError(ValueError):
    pass


@contextlib.contextmanager
def quiet_weight_norm() -> Iterator[None]:
    """The package builds its convolutions with ``torch.nn.utils.weight_norm``, which torch
    deprecates with a FutureWarning per layer. The published weights are stored in that form
    (``weight_g``/``weight_v``), so we keep it and silence the warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weight_norm.*", category=FutureWarning)
        yield


# --------------------------------------------------------------------------------------------
# The published 24 kHz model, from a local file.
# --------------------------------------------------------------------------------------------


def official_24khz() -> EncodecModel:
    """The architecture of the published 24 kHz model (causal, weight norm), untrained: what
    ``EncodecModel.encodec_model_24khz(pretrained=False)`` builds, without its download path."""
    with quiet_weight_norm():
        return EncodecModel._get_model(list(OFFICIAL_BANDWIDTHS), OFFICIAL_SAMPLE_RATE,
                                       channels=1, causal=True, model_norm="weight_norm",
                                       audio_normalize=False, name="encodec_24khz")


def load_official(path: str | Path, bandwidth: float) -> EncodecModel:
    """The published 24 kHz EnCodec from its file (a plain state dict), at ``bandwidth`` kbps
    (one of 1.5, 3, 6, 12, 24; 0 = 24), in eval mode on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CodecError(f"EnCodec weights not found: {path}. tokens.encodec.weights names the "
                         f"published 24 kHz model's file ({OFFICIAL_URL}), which the pipeline "
                         f"never downloads; or set it to 'scratch' to train a codec here")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (torch raises many types for bad files)
        raise CodecError(f"cannot read EnCodec weights {path}: {exc}") from exc
    if isinstance(state, dict) and "kind" in state and "state" in state:
        raise CodecError(f"{path} is a vadusa {state['kind']!r} checkpoint, not the published "
                         f"EnCodec state dict: for a codec trained here set "
                         f"tokens.encodec.weights=scratch")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise CodecError(f"{path} is not a state dict (names -> tensors) like {OFFICIAL_NAME}")
    model = official_24khz()
    _check_state(state, model.state_dict(), f"{path} does not hold the published 24 kHz "
                                            f"EnCodec model ({OFFICIAL_NAME})")
    model.load_state_dict(state)
    set_bandwidth(model, bandwidth)
    return model.eval()


def _check_state(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                 what: str) -> None:
    """Missing, unexpected and misshapen tensors, a few of each named."""
    def some(keys: list[str]) -> str:
        return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")

    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshapen = sorted(k for k in set(state) & set(expected)
                       if state[k].shape != expected[k].shape)
    problems = []
    if missing:
        problems.append(f"{len(missing)} tensors missing ({some(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({some(unexpected)})")
    if misshapen:
        k = misshapen[0]
        problems.append(f"{len(misshapen)} of another shape (e.g. {k}: "
                        f"{tuple(state[k].shape)}, expected {tuple(expected[k].shape)})")
    if problems:
        raise CodecError(f"{what}: " + "; ".join(problems))


def set_bandwidth(model: EncodecModel, bandwidth: float) -> None:
    """How many codebooks ``EncodecModel.encode`` computes: ``bandwidth`` kbps, 0 = all of them."""
    allowed = list(model.target_bandwidths)
    matches = [b for b in allowed if math.isclose(b, bandwidth)] if bandwidth else allowed[-1:]
    if not matches:
        raise CodecError(f"tokens.encodec.bandwidth={bandwidth:g} kbps is not a bandwidth of "
                         f"this codec; choose one of {', '.join(f'{b:g}' for b in allowed)} "
                         f"(or 0 for all {model.quantizer.n_q} codebooks)")
    model.set_target_bandwidth(matches[0])


# --------------------------------------------------------------------------------------------
# The small codec trained from scratch, and its checkpoint.
# --------------------------------------------------------------------------------------------


def scratch_arch(train: CodecTrainConfig) -> dict[str, Any]:
    """What rebuilds a scratch codec (stored in its checkpoint): sizes, no training settings."""
    return {"sample_rate": train.sample_rate, "ratios": list(train.ratios),
            "n_filters": train.n_filters, "residual_layers": train.residual_layers,
            "lstm": train.lstm, "dimension": train.dimension, "n_q": train.n_q,
            "bins": train.bins, "causal": train.causal}


def build_scratch(arch: dict[str, Any], dead_code_threshold: float = 2.0) -> EncodecModel:
    """An untrained codec of ``scratch_arch``'s sizes, from the package's classes.

    ``dead_code_threshold`` only matters in training (the codebooks' dead-code replacement).
    Codebooks start empty and are set by k-means on the first training batch, as EnCodec's."""
    hop = math.prod(arch["ratios"])
    if arch["sample_rate"] % hop:
        raise CodecError(f"a scratch codec at {arch['sample_rate']} Hz with ratios "
                         f"{arch['ratios']} ({hop} samples a frame) has no whole frame rate: "
                         f"make tokens.encodec.scratch.sample_rate a multiple of {hop}")
    if arch["bins"] & (arch["bins"] - 1):
        raise CodecError(f"tokens.encodec.scratch.bins={arch['bins']}: the codec needs a power "
                         f"of 2 (e.g. 1024)")
    sizes = {"channels": 1, "dimension": arch["dimension"], "n_filters": arch["n_filters"],
             "n_residual_layers": arch["residual_layers"], "ratios": list(arch["ratios"]),
             "lstm": arch["lstm"], "causal": arch["causal"], "norm": "weight_norm"}
    with quiet_weight_norm():
        encoder, decoder = SEANetEncoder(**sizes), SEANetDecoder(**sizes)
    quantizer = ResidualVectorQuantizer(dimension=arch["dimension"], n_q=arch["n_q"],
                                        bins=arch["bins"],
                                        threshold_ema_dead_code=dead_code_threshold)
    # bandwidth of k codebooks: k * log2(bins) bits a frame, in kbps
    per_codebook = math.log2(arch["bins"]) * (arch["sample_rate"] // hop) / 1000
    bandwidths = [per_codebook * k for k in range(1, arch["n_q"] + 1)]
    return EncodecModel(encoder, decoder, quantizer, bandwidths, arch["sample_rate"], channels=1,
                        name="vadusa-scratch")


def codec_meta(model: EncodecModel, arch: dict[str, Any] | None) -> dict[str, Any]:
    """What a codec checkpoint says about itself (``arch`` None: the published model)."""
    return {"family": FAMILY, "arch": arch or "official-24khz", "sample_rate": model.sample_rate,
            "frame_rate": frame_rate(model), "bins": int(model.quantizer.bins),
            "n_q": int(model.quantizer.n_q)}


def save_codec(path: str | Path, model: EncodecModel, arch: dict[str, Any],
               config: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
    """Write a scratch codec as a checkpoint of kind "codec" (weights on the CPU)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_checkpoint(path, kind=CHECKPOINT_KIND, config=config, state=state,
                    meta=codec_meta(model, arch) | (meta or {}))


def load_codec(path: str | Path) -> tuple[EncodecModel, dict[str, Any]]:
    """A scratch codec and its checkpoint's meta; the model in eval mode on the CPU."""
    return codec_from_checkpoint(load_checkpoint(path, kind=CHECKPOINT_KIND), path)


def codec_from_checkpoint(blob: dict[str, Any], path: str | Path
                          ) -> tuple[EncodecModel, dict[str, Any]]:
    """``load_codec`` on a checkpoint already read (``path`` only names it in errors)."""
    meta = blob["meta"]
    if meta.get("family") != FAMILY or not isinstance(meta.get("arch"), dict):
        raise CodecError(f"{path} is not a scratch {FAMILY} codec (meta: family "
                         f"{meta.get('family')!r}, arch {meta.get('arch')!r})")
    try:
        model = build_scratch(meta["arch"])
    except (KeyError, TypeError) as exc:
        raise CodecError(f"{path} describes a codec this version cannot build ({exc}); "
                         f"retrain it") from exc
    _check_state(blob["state"], model.state_dict(),
                 f"{path} does not match the codec its meta describes")
    model.load_state_dict(blob["state"])
    return model.eval(), meta


def load_codec_model(units: EncodecConfig, scratch: str | Path) -> EncodecModel:
    """The codec ``tokens.encodec`` names: the scratch checkpoint at ``scratch``, or the
    published file at ``units.weights``; at ``units.bandwidth``, in eval mode on the CPU."""
    if units.weights != "scratch":
        return load_official(units.weights, units.bandwidth)
    if not Path(scratch).is_file():
        raise CodecError(f"codec not found: {scratch} (tokens.encodec.weights=scratch: run "
                         f"`vadusa train-codec` first)")
    model, _ = load_codec(scratch)
    set_bandwidth(model, units.bandwidth)
    return model


def frame_rate(model: EncodecModel) -> float:
    """Frames a second, exact (the package's ``EncodecModel.frame_rate`` rounds up to an int)."""
    return model.sample_rate / hop_length(model)


def hop_length(model: EncodecModel) -> int:
    return int(math.prod(model.encoder.ratios))


# --------------------------------------------------------------------------------------------
# One forward pass with the first k codebooks (training, and reconstruction losses).
# --------------------------------------------------------------------------------------------


class Reconstruction(NamedTuple):
    wave: torch.Tensor  # (B, 1, T): the input's length
    codes: torch.Tensor  # (Q, B, F) int64, Q = the codebooks used
    commitment: torch.Tensor  # scalar: mean over the codebooks used (0 in eval mode)


def reconstruct(model: EncodecModel, wave: torch.Tensor, codebooks: int) -> Reconstruction:
    """(B, 1, T) -> the wave decoded from the first ``codebooks`` codebooks.

    In train mode the quantizer's forward passes gradients straight through, computes the
    commitment loss and updates its codebooks (k-means on first use, moving averages). In eval
    mode it only looks codes up: its forward would run that k-means on whatever it is given
    (dev audio, say) if a codebook had not been used in training yet."""
    latents = model.encoder(wave)  # (B, D, F)
    vq = model.quantizer.vq
    if model.training:
        quantized, codes, commitment = vq(latents, n_q=codebooks)  # (B, D, F), (Q, B, F), (Q, 1)
    else:
        codes = vq.encode(latents, n_q=codebooks)  # (Q, B, F)
        quantized, commitment = vq.decode(codes), latents.new_zeros(1)
    out = model.decoder(quantized)  # (B, 1, F * hop) >= T: the last frame is padded
    return Reconstruction(out[..., :wave.shape[-1]], codes, commitment.mean())


# --------------------------------------------------------------------------------------------
# The codec behind the tokenizer contract (its vocoder: ``vadusa.vocoder.codec``).
# --------------------------------------------------------------------------------------------


class CodecEncoder:
    """Feature extractor: waveform -> the encoder's latent frames, (F, D)."""

    def __init__(self, model: EncodecModel, device: torch.device | str = "cpu") -> None:
        self.name = FAMILY
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.sample_rate = int(model.sample_rate)
        self.hop_length = hop_length(model)
        self.dim = int(model.quantizer.dimension)

    def extract(self, wave: torch.Tensor) -> torch.Tensor:
        """(T,) float32 at ``sample_rate`` -> (F, D), F = ceil(T / hop)."""
        with torch.inference_mode():
            batch = wave.reshape(1, 1, -1).to(self.device, torch.float32)  # (T,) -> (1, 1, T)
            return self.model.encoder(batch)[0].T.float().cpu()  # (1, D, F) -> (F, D)


class FirstCodebook:
    """Quantizer: latent frames -> the ids of RVQ's first codebook, (F,) (the tokens), or of
    all the codebooks the configured bandwidth uses, (F, N) (``quantize_codes``: codebooks
    2..N are the NAR stage's)."""

    def __init__(self, model: EncodecModel) -> None:
        self.vq = model.quantizer.vq
        self.layer = self.vq.layers[0]
        self.n_clusters = int(model.quantizer.bins)
        # the package reckons bandwidth per codebook at its (integer) frame rate
        self.codebooks = int(model.quantizer.get_num_quantizers_for_bandwidth(
            model.frame_rate, model.bandwidth))

    def vectors(self) -> torch.Tensor:
        """(N, K, D) the entries of the bandwidth's codebooks (in the latent space: the
        package's codebooks project in and out by identity at these sizes)."""
        return torch.stack([layer.codebook.detach().float().cpu()
                            for layer in self.vq.layers[:self.codebooks]])

    def quantize(self, features: torch.Tensor) -> torch.Tensor:
        """(F, D) -> (F,) int64 in [0, bins)."""
        device = self.layer.codebook.device
        with torch.inference_mode():
            latents = features.T[None].to(device, torch.float32)  # (F, D) -> (1, D, F)
            return self.layer.encode(latents)[0]  # (1, F) -> (F,)

    def quantize_codes(self, features: torch.Tensor) -> torch.Tensor:
        """(F, D) -> (F, N) int64: residual quantization over the first N codebooks."""
        device = self.layer.codebook.device
        with torch.inference_mode():
            latents = features.T[None].to(device, torch.float32)  # (F, D) -> (1, D, F)
            codes = self.vq.encode(latents, n_q=self.codebooks)  # (N, 1, F)
            return codes[:, 0].T  # (N, F) -> (F, N)


def codec_tokenizer(model: EncodecModel, device: torch.device | str = "cpu") -> Tokenizer:
    """The family's tokenizer: checks and resampling of ``base``, then codebook 1's ids."""
    return Tokenizer(FAMILY, CodecEncoder(model, device), FirstCodebook(model))
