"""The ``melrvq`` family: acoustic tokens that a laptop can make and hear.

The features are the log-mels the shipped HiFi-GAN generator was trained on
(``vocoder/hifigan.py``: 22.05 kHz, hop 256, 80 bands), ``stack`` consecutive frames to a token
(stack 2: 43 tokens a second, near the 50 Hz of the other families); the quantizer is residual
k-means (``tokenizers/residual.py``). Codebook 1 is the AR model's vocabulary; codebooks 2..N
are the non-autoregressive stage's. Decoding (``vocoder/melrvq.py``) sums the chosen entries
and runs HiFi-GAN: no vocoder to train, and with all codebooks the round trip is as
intelligible as the mels themselves (docs/tokens.md). It is the embedded default's acoustic
family; ``encodec`` stays the family for the published codec.

With ``tokens.melrvq.first: whisper`` codebook 1 is the whisper family's unit at each token
(``MelWithUnits``: the unit whose 20 ms frame holds the token's centre), decoded as that
unit's mean mel; the residual codebooks refine it (``tokenizers/residual.py``). The AR model
then predicts units that say what was said, as the whisper family's model does, and the NAR
stage adds the voice and the detail (codec literature: a semantic first codebook, as in
SpeechTokenizer or Mimi).

Shapes: T samples at 22.05 kHz, M mel frames (M = T // 256), F tokens (F = M // stack),
D = 80 * stack.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vadusa.data.mel import HOP_LENGTH, N_MELS, SAMPLE_RATE, mel_settings, mel_spectrogram

FAMILY = "melrvq"


class StackedMel:
    """Feature extractor: waveform -> (F, 80 * stack) log-mel frames, ``stack`` to a row."""

    def __init__(self, stack: int) -> None:
        if stack < 1:
            raise ValueError(f"stack must be at least 1, got {stack}")
        self.name = FAMILY
        self.stack = stack
        self.sample_rate = SAMPLE_RATE
        self.hop_length = HOP_LENGTH * stack
        self.dim = N_MELS * stack
        self.settings: dict[str, Any] = {"stack": stack, **mel_settings()}

    def extract(self, wave: torch.Tensor) -> torch.Tensor:
        """(T,) float32 at 22.05 kHz -> (F, 80 * stack); a last incomplete stack is dropped."""
        mel = mel_spectrogram(wave).T  # (N_MELS, M) -> (M, N_MELS)
        rows = len(mel) // self.stack
        return mel[: rows * self.stack].reshape(rows, self.dim)  # (M', 80) -> (F, 80 * stack)


def unstack(features: torch.Tensor) -> torch.Tensor:
    """(F, 80 * stack) -> (N_MELS, F * stack): the mel the generator reads."""
    return features.reshape(-1, N_MELS).T  # (F, 80 * stack) -> (F * stack, 80) -> (80, M)


class MelWithUnits:
    """Feature extractor: waveform -> (F, 80 * stack + 1), ``StackedMel``'s rows and a last
    column of unit ids from ``units`` (a tokenizer of another family, e.g. whisper's k-means
    units, at its own frame rate), one per token: the unit frame that holds the token's
    centre. ``units_settings`` (what the units are: their family, features and k-means) go
    into ``settings``, so a quantizer fitted on other units is refused."""

    def __init__(self, stack: int, units: Any, units_settings: dict[str, Any]) -> None:
        self.mel = StackedMel(stack)
        self.units = units
        self.name = FAMILY
        self.sample_rate = self.mel.sample_rate
        self.hop_length = self.mel.hop_length
        self.dim = self.mel.dim + 1
        self.settings: dict[str, Any] = {**self.mel.settings, "first": units_settings}

    def extract(self, wave: torch.Tensor) -> torch.Tensor:
        """(T,) float32 at 22.05 kHz -> (F, 80 * stack + 1)."""
        mel = self.mel.extract(wave)  # (F, D)
        ids = torch.as_tensor(self.units.encode(wave.numpy(), self.sample_rate))  # (U,)
        return torch.cat([mel, align_units(ids, len(mel), self.units.frame_rate,
                                           self.mel.sample_rate / self.hop_length
                                           )[:, None].to(mel.dtype)], 1)  # (F, D + 1)


def align_units(ids: torch.Tensor, frames: int, unit_rate: float, frame_rate: float
                ) -> torch.Tensor:
    """(U,) unit ids at ``unit_rate`` -> (frames,) at ``frame_rate``: each frame takes the
    unit frame that holds its centre (the last one past the end)."""
    if len(ids) == 0:
        raise ValueError("no units to align: the units tokenizer returned none")
    centres = (np.arange(frames) + 0.5) / frame_rate  # (F,) seconds
    index = np.minimum((centres * unit_rate).astype(np.int64), len(ids) - 1)  # (F,)
    return ids[torch.from_numpy(index)]
