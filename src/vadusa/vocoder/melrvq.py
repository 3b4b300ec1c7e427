"""The ``melrvq`` family's vocoder: codes -> the sum of their residual k-means entries -> log-mel
frames -> the shipped HiFi-GAN. Nothing is trained; the file is the family's quantizer
(``tokens/melrvq/kmeans.npz``).

It decodes codebook 1 alone (what the AR model predicts: a coarse mel) or the first n
codebooks (after the non-autoregressive stage, ``model/nar.py``: the full mel), or a mel
itself (``decode_mel``: a mel stage's regression).

Shapes: F tokens, n codebooks given, D = 80 * stack, M = F * stack mel frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vadusa.data.mel import HOP_LENGTH, SAMPLE_RATE
from vadusa.tokenizers.mel import FAMILY, unstack
from vadusa.tokenizers.residual import ResidualKMeans
from vadusa.vocoder.base import VocoderError
from vadusa.vocoder.hifigan import HifiGan

__all__ = ["MelRVQVocoder"]


class MelRVQVocoder:
    """``decode(codes, speaker)``: (F,) codebook-1 ids or (F, n) codes -> 22.05 kHz waveform.
    Speaker-agnostic (``speakers`` empty): the voice is in the mel the codes encode."""

    family = FAMILY
    sample_rate = SAMPLE_RATE

    def __init__(self, quantizer: ResidualKMeans, device: torch.device | str = "cpu") -> None:
        features = quantizer.settings.get("features", {})
        if "stack" not in features:
            raise VocoderError("this residual k-means does not say how many mel frames a token "
                               "stacks: refit it with `vadusa fit-kmeans --family melrvq`")
        self.quantizer = quantizer
        self.stack = int(features["stack"])
        self.vocab_size = quantizer.n_clusters
        self.codebooks = quantizer.codebooks
        self.frame_rate = SAMPLE_RATE / (HOP_LENGTH * self.stack)
        self.speakers: list[str] = []
        self.meta: dict[str, Any] = dict(quantizer.settings)
        self.hifigan = HifiGan(str(quantizer.settings.get("hifigan", "universal")), device)

    def decode(self, tokens: np.ndarray, speaker: str) -> tuple[np.ndarray, int]:
        """(F,) or (F, n) int ids in [0, K) -> ((F * stack * 256,) float32 waveform, rate)."""
        codes = np.asarray(tokens)
        if codes.ndim not in (1, 2) or codes.shape[0] == 0 or (
                codes.ndim == 2 and not 1 <= codes.shape[1] <= self.codebooks):
            raise VocoderError(f"expected (frames,) codebook-1 ids or (frames, 1..{self.codebooks})"
                               f" codes, got shape {codes.shape}")
        if not np.issubdtype(codes.dtype, np.integer):
            raise VocoderError(f"code ids must be integers, got dtype {codes.dtype}")
        if codes.min() < 0 or codes.max() >= self.vocab_size:
            raise VocoderError(f"code ids outside [0, {self.vocab_size}) of this {FAMILY!r} "
                               f"vocoder; strip bos/eos/pad before decoding")
        mel = unstack(self.quantizer.decode(codes.astype(np.int64)))  # (80, M)
        return self.decode_mel(mel)

    def decode_mel(self, mel: torch.Tensor) -> tuple[np.ndarray, int]:
        """(80, M) log-mel (what the codes encode, or a mel stage's regression of it,
        ``model/nar.py``) -> ((M * 256,) float32 waveform, rate)."""
        return self.hifigan(mel), SAMPLE_RATE
