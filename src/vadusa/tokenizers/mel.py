"""The ``melrvq`` family: acoustic tokens that a laptop can make and hear.

The features are the log-mels the shipped HiFi-GAN generator was trained on
(``vocoder/hifigan.py``: 22.05 kHz, hop 256, 80 bands), ``stack`` consecutive frames to a token
(stack 2: 43 tokens a second, near the 50 Hz of the other families); the quantizer is residual
k-means (``tokenizers/residual.py``). Codebook 1 is the AR model's vocabulary; codebooks 2..N
are the non-autoregressive stage's. Decoding (``vocoder/melrvq.py``) sums the chosen entries
and runs HiFi-GAN: no vocoder to train, and with all codebooks the round trip is as
intelligible as the mels themselves (docs/tokens.md). It is the embedded default's acoustic
family; ``encodec`` stays the family for the published codec.

Shapes: T samples at 22.05 kHz, M mel frames (M = T // 256), F tokens (F = M // stack),
D = 80 * stack.
"""

from __future__ import annotations

from typing import Any

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
