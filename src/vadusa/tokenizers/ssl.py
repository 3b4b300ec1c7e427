"""HuBERT and wav2vec 2.0 features: the output of one transformer layer of a torchaudio
``Wav2Vec2Model`` (both families share that architecture; they differ in how it was trained).

Weights come from the pipeline's own small model trained from scratch (``weights: scratch``,
see ``vadusa.training.ssl``) or from a published checkpoint (``weights: checkpoint``) in one
of three formats, all read without running code from the file:

    torchaudio   a torch-saved state dict of a torchaudio model, e.g. the HUBERT_BASE bundle's
    huggingface  a ``save_pretrained`` directory: config.json + model.safetensors (or .bin)
    fairseq      a ``.pt`` file whose "model" entry holds fairseq's parameter names

For torchaudio and fairseq files ``tokens.<family>.arch`` names the architecture to load into
(base | large); a Hugging Face directory describes its own architecture in config.json.

Shapes: T samples, F frames (50 Hz at 16 kHz), D transformer width.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torchaudio.models import (
    Wav2Vec2Model,
    hubert_base,
    hubert_large,
    wav2vec2_base,
    wav2vec2_large,
    wav2vec2_large_lv60k,
    wav2vec2_model,
)

from vadusa.checkpoint import load_checkpoint
from vadusa.config import SSLTrainConfig, SSLUnitsConfig

FAMILIES = ("hubert", "wav2vec2")
FORMATS = ("torchaudio", "huggingface", "fairseq")
SAMPLE_RATE = 16000
HOP_LENGTH = 320  # product of the conv strides: 5 * 2**6
RECEPTIVE_FIELD = 400  # samples seen by one frame of the conv front end (25 ms)

Arch = dict[str, Any]  # keyword arguments of torchaudio.models.wav2vec2_model


class SSLError(ValueError):
    """A HuBERT/wav2vec2 extractor cannot be built as configured."""


class SSLCheckpointError(SSLError):
    """A checkpoint is missing, unreadable, or does not fit the configured architecture."""


# --------------------------------------------------------------------------------------------
# The extractor.
# --------------------------------------------------------------------------------------------


class SSLFeatureExtractor:
    """Waveform -> the output of transformer layer ``layer`` (1-based), one frame per 20 ms."""

    sample_rate = SAMPLE_RATE
    hop_length = HOP_LENGTH

    def __init__(self, model: Wav2Vec2Model, layer: int, name: str,
                 device: torch.device | str = "cpu") -> None:
        layers = num_layers(model)
        if not 1 <= layer <= layers:
            raise SSLError(f"{name}: layer {layer} asked for, but the model has {layers} "
                           f"transformer layers (choose 1..{layers})")
        self.name = name
        self.layer = layer
        self.dim = width(model)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    def extract(self, wave: torch.Tensor) -> torch.Tensor:
        """(T,) float32 at 16 kHz -> (F, D), F = (T - 400) // 320 + 1 (no padding, as trained)."""
        if wave.numel() < RECEPTIVE_FIELD:
            raise SSLError(f"{self.name}: {wave.numel()} samples is shorter than one frame "
                           f"({RECEPTIVE_FIELD} samples)")
        with torch.inference_mode():
            batch = wave.reshape(1, -1).to(self.device, torch.float32)  # (T,) -> (1, T)
            outputs, _ = self.model.extract_features(batch, num_layers=self.layer)
            return outputs[-1][0].float().cpu()  # last of the layers run: (1, F, D) -> (F, D)


def num_layers(model: Wav2Vec2Model) -> int:
    return len(model.encoder.transformer.layers)


def width(model: Wav2Vec2Model) -> int:
    return model.encoder.feature_projection.projection.out_features


def build_ssl_extractor(family: str, units: SSLUnitsConfig, scratch_checkpoint: Path | None,
                        device: torch.device) -> SSLFeatureExtractor:
    """The extractor ``tokens.<family>`` describes: pipeline-trained or published weights."""
    _check_family(family)
    if units.weights == "scratch":
        model = load_scratch_model(family, scratch_checkpoint)
        name = f"{family}-scratch-layer{units.layer}"
    elif units.weights == "checkpoint":
        model = load_ssl_checkpoint(family, units)
        name = f"{family}-{units.checkpoint_format}-{units.arch}-layer{units.layer}"
    else:
        raise SSLError(f"tokens.{family}.weights: {units.weights!r} is neither 'scratch' "
                       "nor 'checkpoint'")
    layers = num_layers(model)
    if not 1 <= units.layer <= layers:
        raise SSLError(f"tokens.{family}.layer={units.layer}, but the {family} model has "
                       f"{layers} transformer layers: choose 1..{layers}")
    return SSLFeatureExtractor(model, units.layer, name, device)


def load_scratch_model(family: str, path: Path | None) -> Wav2Vec2Model:
    """The model ``vadusa.training.ssl`` trained, rebuilt from the config stored with it."""
    if path is None:
        raise SSLError(f"tokens.{family}.weights is 'scratch' but no trained model was given: "
                       f"run the train-ssl stage for {family} first")
    blob = load_checkpoint(path, kind="ssl")
    trained_family = blob["meta"].get("family")
    if trained_family != family:
        raise SSLCheckpointError(f"{path} holds a {trained_family!r} model, not {family!r}: "
                                 f"it was trained for tokens.{trained_family}")
    train = scratch_config_from(blob["config"], family)
    model = wav2vec2_model(**scratch_arch(train))
    model.load_state_dict(blob["state"])
    return model


def scratch_config_from(config: Mapping[str, Any], family: str) -> SSLTrainConfig:
    """The SSLTrainConfig inside a stored ``cfg.to_dict()``; keys unknown here are ignored, so
    a checkpoint outlives additions to the config."""
    stored = config["tokens"][family]["scratch"]
    known = SSLTrainConfig.__dataclass_fields__
    return SSLTrainConfig(**{k: v for k, v in stored.items() if k in known})


# --------------------------------------------------------------------------------------------
# Architectures.
# --------------------------------------------------------------------------------------------


def conv_layers(channels: int) -> list[tuple[int, int, int]]:
    """(channels, kernel, stride) of the standard 7-layer front end: 320x down-sampling."""
    return [(channels, 10, 5)] + [(channels, 3, 2)] * 4 + [(channels, 2, 2)] * 2


def scratch_arch(train: SSLTrainConfig) -> Arch:
    """The small model trained from scratch. Published models use ``group_norm``, which
    normalizes each channel over time, so zero padding in a batch would shift the statistics
    of every utterance; ``layer_norm`` normalizes each frame alone."""
    if train.dim % train.heads:
        raise SSLError(f"tokens.*.scratch: dim {train.dim} is not divisible by "
                       f"heads {train.heads}")
    return {
        "extractor_mode": "layer_norm",
        "extractor_conv_layer_config": conv_layers(train.conv_channels),
        "extractor_conv_bias": False,
        "encoder_embed_dim": train.dim,
        "encoder_projection_dropout": 0.1,
        "encoder_pos_conv_kernel": 128,  # as published: 2.56 s of relative position
        "encoder_pos_conv_groups": math.gcd(16, train.dim),
        "encoder_num_layers": train.layers,
        "encoder_num_heads": train.heads,
        "encoder_attention_dropout": 0.1,
        "encoder_ff_interm_features": train.ffn_dim,
        "encoder_ff_interm_dropout": 0.0,
        "encoder_dropout": 0.1,
        "encoder_layer_norm_first": False,  # post-LN: every layer's output is normalized
        "encoder_layer_drop": 0.0,  # with 4 layers, dropping one removes a quarter of the model
        "aux_num_out": None,
    }


#: (family, arch) -> torchaudio factories of the published architectures. wav2vec 2.0 large
#: was published twice (LibriSpeech: group_norm front end; LV-60k/XLSR: layer_norm front end
#: with conv bias); the checkpoint's own tensors pick the variant.
PUBLISHED: dict[tuple[str, str], tuple[Callable[..., Wav2Vec2Model], ...]] = {
    ("hubert", "base"): (hubert_base,),
    ("hubert", "large"): (hubert_large,),
    ("wav2vec2", "base"): (wav2vec2_base,),
    ("wav2vec2", "large"): (wav2vec2_large, wav2vec2_large_lv60k),
}


def _published_factory(family: str, arch: str,
                       state: Mapping[str, torch.Tensor]) -> Callable[[], Wav2Vec2Model]:
    if (family, arch) not in PUBLISHED:
        raise SSLError(f"tokens.{family}.arch: {arch!r} is not a published architecture "
                       f"(base | large)")
    factories = PUBLISHED[family, arch]
    per_layer_norm = "feature_extractor.conv_layers.1.layer_norm.weight" in state
    factory = factories[-1] if per_layer_norm and len(factories) > 1 else factories[0]
    return factory


# --------------------------------------------------------------------------------------------
# Published checkpoints.
# --------------------------------------------------------------------------------------------


def load_ssl_checkpoint(family: str, units: SSLUnitsConfig,
                        arch_params: Arch | None = None) -> Wav2Vec2Model:
    """A published checkpoint as a torchaudio ``Wav2Vec2Model``.

    ``arch_params`` (keyword arguments of ``torchaudio.models.wav2vec2_model``) replaces the
    published ``units.arch`` for torchaudio and fairseq files: a custom architecture."""
    _check_family(family)
    path = _checkpoint_path(family, units)
    fmt = units.checkpoint_format
    if fmt == "huggingface":
        return _load_huggingface(family, path)
    if fmt == "torchaudio":
        state = _read_torchaudio(family, path)
    elif fmt == "fairseq":
        state = _read_fairseq(family, path)
    else:
        raise SSLError(f"tokens.{family}.checkpoint_format: {fmt!r} is not one of "
                       f"{' | '.join(FORMATS)}")
    state = _normalize(state)
    if arch_params is not None:
        factory, label = (lambda: wav2vec2_model(**arch_params)), "the custom architecture"
    else:
        factory, label = _published_factory(family, units.arch, state), f"arch {units.arch!r}"
    with torch.device("meta"):  # shapes only: a large model is not allocated to be compared
        expected = factory().state_dict()
    problems = describe_mismatch(state, expected, label)
    if problems:
        raise _mismatch_error(path, family, fmt, problems)
    model = factory()
    model.load_state_dict(state)
    return model.eval()


def describe_mismatch(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor],
                      label: str) -> list[str]:
    """What differs between a checkpoint's tensors and an architecture's, most telling first;
    empty when they fit."""
    problems = []
    for what, measure in (("layer count", _layer_count), ("width", _width),
                          ("conv front end layers", _conv_count)):
        have, want = measure(state), measure(expected)
        if have != want:
            problems.append(f"{what}: checkpoint has {have}, {label} has {want}")
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing:
        problems.append(f"{len(missing)} tensors missing from the checkpoint, e.g. "
                        f"{', '.join(missing[:3])}")
    if unexpected:
        problems.append(f"{len(unexpected)} tensors the architecture lacks, e.g. "
                        f"{', '.join(unexpected[:3])}")
    if reshaped:
        problems.append(f"{len(reshaped)} tensors of another shape, e.g. " + ", ".join(
            f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in reshaped[:3]))
    return problems


def _layer_count(state: Mapping[str, torch.Tensor]) -> str:
    found = {int(m.group(1)) for k in state
             if (m := re.match(r"encoder\.transformer\.layers\.(\d+)\.", k))}
    return f"{max(found) + 1 if found else 0} transformer layers"


def _width(state: Mapping[str, torch.Tensor]) -> str:
    norm = state.get("encoder.transformer.layer_norm.weight")
    return f"width {norm.shape[0]}" if norm is not None else "no transformer"


def _conv_count(state: Mapping[str, torch.Tensor]) -> str:
    found = {int(m.group(1)) for k in state
             if (m := re.match(r"feature_extractor\.conv_layers\.(\d+)\.conv\.weight", k))}
    return f"{len(found)} conv layers"


def _mismatch_error(path: Path, family: str, fmt: str, problems: list[str]) -> SSLCheckpointError:
    details = "\n".join(f"  - {p}" for p in problems)
    return SSLCheckpointError(
        f"{path} ({fmt} format) does not fit the configured {family} architecture:\n{details}\n"
        f"Set tokens.{family}.arch (base | large) to the checkpoint's architecture, or "
        f"tokens.{family}.checkpoint_format ({' | '.join(FORMATS)}) to the file's format.")


def _normalize(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Torchaudio names as this torchaudio writes them; heads that features do not need go."""
    out = {}
    for key, value in state.items():
        if key.startswith("aux.") or key == "label_embs_concat":  # CTC head, HuBERT targets
            continue
        # old-style weight norm (fairseq, older torchaudio/transformers) -> parametrizations
        key = re.sub(r"\.weight_g$", ".parametrizations.weight.original0", key)
        key = re.sub(r"\.weight_v$", ".parametrizations.weight.original1", key)
        out[key] = value
    return out


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise SSLError(f"unknown SSL family {family!r} (one of {', '.join(FAMILIES)})")


def _checkpoint_path(family: str, units: SSLUnitsConfig) -> Path:
    if not units.checkpoint:
        raise SSLCheckpointError(f"tokens.{family}.weights is 'checkpoint' but "
                                 f"tokens.{family}.checkpoint is empty: set it to the file "
                                 f"(or Hugging Face directory) to load")
    path = Path(units.checkpoint).expanduser()
    if not path.exists():
        raise SSLCheckpointError(f"checkpoint not found: {path} (tokens.{family}.checkpoint)")
    return path


def _torch_load(path: Path, family: str, allowed: tuple[Any, ...] = ()) -> Any:
    """``torch.load`` that runs no code from the file; errors name the config keys."""
    if path.is_dir():
        raise SSLCheckpointError(f"{path} is a directory, not a checkpoint file "
                                 f"(a Hugging Face directory needs "
                                 f"tokens.{family}.checkpoint_format=huggingface)")
    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (torch raises many types for bad files)
        raise SSLCheckpointError(
            f"cannot read {path} (tokens.{family}.checkpoint) as a weights-only torch file: "
            f"{exc}. If it pickles other objects, re-save just its tensors.") from exc


def _read_torchaudio(family: str, path: Path) -> dict[str, torch.Tensor]:
    blob = _torch_load(path, family)
    if isinstance(blob, dict) and "kind" in blob and "state" in blob:
        raise SSLCheckpointError(f"{path} is a vadusa {blob['kind']!r} checkpoint: use "
                                 f"tokens.{family}.weights=scratch for the pipeline's own model")
    if isinstance(blob, dict) and "model" in blob and isinstance(blob["model"], dict):
        raise SSLCheckpointError(f"{path} looks like a fairseq checkpoint (a 'model' entry): "
                                 f"set tokens.{family}.checkpoint_format=fairseq")
    if not isinstance(blob, dict) or not all(isinstance(v, torch.Tensor) for v in blob.values()):
        raise SSLCheckpointError(f"{path} is not a state dict (name -> tensor): fix "
                                 f"tokens.{family}.checkpoint_format")
    return blob


def _read_fairseq(family: str, path: Path) -> dict[str, torch.Tensor]:
    from torchaudio.models.wav2vec2.utils.import_fairseq import (  # noqa: PLC0415
        _convert_state_dict,
    )

    blob = _torch_load(path, family, allowed=(argparse.Namespace,))  # old files keep "args"
    if not isinstance(blob, dict) or not isinstance(blob.get("model"), dict):
        raise SSLCheckpointError(f"{path} has no 'model' entry, so it is not a fairseq "
                                 f"checkpoint: fix tokens.{family}.checkpoint_format")
    model_name = _fairseq_model_name(blob)  # "hubert", "wav2vec2", "hubert_ctc", "wav2vec_ctc"
    other = "wav2vec2" if family == "hubert" else "hubert"
    if model_name.startswith(other.removesuffix("2")):
        raise SSLCheckpointError(f"{path} is a fairseq {model_name!r} model, not {family}: "
                                 f"configure it as tokens.{other}.checkpoint, or fix "
                                 f"tokens.{family}.checkpoint")
    # fine-tuned checkpoints wrap the pretrained model: "w2v_encoder.w2v_model.<name>"
    state = {k.removeprefix("w2v_encoder."): v for k, v in blob["model"].items()}
    try:
        return _convert_state_dict(state)
    except ValueError as exc:  # torchaudio's mapping rejects names it does not know
        raise SSLCheckpointError(f"{path}: not a fairseq wav2vec2/HuBERT state dict ({exc}): "
                                 f"fix tokens.{family}.checkpoint_format") from exc


def _fairseq_model_name(blob: Mapping[str, Any]) -> str:
    """The model name from fairseq's hydra ``cfg`` or, in older files, its ``args``."""
    cfg = blob.get("cfg")
    if isinstance(cfg, Mapping) and isinstance(cfg.get("model"), Mapping):
        return str(cfg["model"].get("_name", ""))
    args = blob.get("args")
    return str(getattr(args, "arch", "") or "")


#: Hugging Face model_type -> (config class, model class) names in ``transformers``.
HF_MODELS = {"hubert": ("HubertConfig", "HubertModel"),
             "wav2vec2": ("Wav2Vec2Config", "Wav2Vec2Model")}
#: Parameters of task heads (pre-training, CTC) that sit beside the encoder in HF files.
HF_HEADS = ("quantizer.", "project_q.", "project_hid.", "lm_head.", "final_proj.",
            "label_embeddings_concat", "masked_spec_embed")


def _load_huggingface(family: str, path: Path) -> Wav2Vec2Model:
    config_file = path / "config.json"
    if not path.is_dir() or not config_file.is_file():
        raise SSLCheckpointError(f"{path} is not a Hugging Face model directory (no "
                                 f"config.json): fix tokens.{family}.checkpoint or "
                                 f"tokens.{family}.checkpoint_format")
    model_type = json.loads(config_file.read_text()).get("model_type")
    if model_type != family:
        raise SSLCheckpointError(f"{config_file}: model_type {model_type!r}, but it is "
                                 f"configured as tokens.{family}.checkpoint")
    try:
        import transformers  # noqa: PLC0415  (only this format needs it)
    except ImportError as exc:
        raise SSLCheckpointError("checkpoint_format huggingface needs the transformers "
                                 "package (pip install transformers)") from exc
    from torchaudio.models.wav2vec2.utils import import_huggingface_model  # noqa: PLC0415

    config_cls, model_cls = (getattr(transformers, n) for n in HF_MODELS[family])
    original = model_cls(config_cls.from_json_file(str(config_file)))
    state = _normalize(_read_huggingface_weights(family, path))
    prefix = f"{family}."  # *ForCTC / *ForPreTraining keep the encoder under "hubert."...
    state = {k.removeprefix(prefix): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(HF_HEADS)}
    expected = {k: v for k, v in original.state_dict().items() if not k.startswith(HF_HEADS)}
    problems = describe_mismatch(_hf_to_torchaudio_names(state),
                                 _hf_to_torchaudio_names(expected), "its config.json")
    if problems:
        raise _mismatch_error(path, family, "huggingface", problems)
    original.load_state_dict(state, strict=False)  # strict on everything but the heads above
    original.eval()
    quiet = logging.getLogger(import_huggingface_model.__module__)
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # it warns that no CTC head is imported: none is wanted
    try:
        return import_huggingface_model(original).eval()
    finally:
        quiet.setLevel(level)


def _hf_to_torchaudio_names(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Just enough renaming for ``describe_mismatch`` to count layers in HF names."""
    out = {}
    for key, value in state.items():
        key = re.sub(r"^encoder\.layers\.", "encoder.transformer.layers.", key)
        key = re.sub(r"^encoder\.layer_norm\.", "encoder.transformer.layer_norm.", key)
        out[key] = value
    return out


def _read_huggingface_weights(family: str, path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file  # noqa: PLC0415

    index = path / "model.safetensors.index.json"
    if index.is_file():  # sharded
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return {k: v for shard in shards for k, v in load_file(str(path / shard)).items()}
    if (path / "model.safetensors").is_file():
        return load_file(str(path / "model.safetensors"))
    if (path / "pytorch_model.bin").is_file():
        return _torch_load(path / "pytorch_model.bin", family)
    raise SSLCheckpointError(f"{path}: no model.safetensors or pytorch_model.bin beside "
                             f"config.json (tokens.{family}.checkpoint)")
