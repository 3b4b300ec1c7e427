"""The tokenizer contract: ``encode(wave, sample_rate) -> tokens``.

A tokenizer is a feature extractor (waveform -> frames of features) followed by a quantizer
(features -> integer ids). Each part reports its own rates, so the frame rate is queried,
never hard-coded. An acoustic family's quantizer has several codebooks (``quantize_codes``):
its tokens are codebook 1, ``encode_codes`` gives them all. Special ids sit just past the
vocabulary: ``bos = vocab_size``, ``eos = vocab_size + 1``, ``pad = vocab_size + 2``.

Shapes: T samples, F frames, D feature dims, N codebooks.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from vadusa.data.audio import resample

N_SPECIAL = 3  # bos, eos, pad
MIN_SECONDS = 0.1
SILENCE_RMS = 1e-4


class TokenizerError(ValueError):
    pass


class FeatureExtractor(Protocol):
    name: str
    sample_rate: int  # input rate the extractor expects
    hop_length: int  # input samples per output frame
    dim: int

    def extract(self, wave: torch.Tensor) -> torch.Tensor:
        """(T,) float32 at ``sample_rate`` -> (F, D)."""
        ...


class Quantizer(Protocol):
    n_clusters: int

    def quantize(self, features: torch.Tensor) -> torch.Tensor:
        """(F, D) -> (F,) int64 in [0, n_clusters)."""
        ...


class Tokenizer:
    def __init__(self, family: str, extractor: FeatureExtractor, quantizer: Quantizer) -> None:
        self.family = family
        self.extractor = extractor
        self.quantizer = quantizer

    @property
    def sample_rate(self) -> int:
        return self.extractor.sample_rate

    @property
    def frame_rate(self) -> float:
        return self.extractor.sample_rate / self.extractor.hop_length

    @property
    def vocab_size(self) -> int:
        return self.quantizer.n_clusters

    @property
    def codebooks(self) -> int:
        """Codebooks per frame: 1 for k-means units; the rest are the NAR stage's to predict."""
        return int(getattr(self.quantizer, "codebooks", 1))

    @property
    def bos_id(self) -> int:
        return self.vocab_size

    @property
    def eos_id(self) -> int:
        return self.vocab_size + 1

    @property
    def pad_id(self) -> int:
        return self.vocab_size + 2

    def encode(self, wave: np.ndarray | torch.Tensor, sample_rate: int) -> np.ndarray:
        """(T,) at ``sample_rate`` -> (F,) int64 token ids."""
        with torch.inference_mode():
            ids = self.quantizer.quantize(extract_features(self.extractor, wave, sample_rate))
        return ids.cpu().numpy().astype(np.int64)

    def encode_codes(self, wave: np.ndarray | torch.Tensor, sample_rate: int) -> np.ndarray:
        """(T,) at ``sample_rate`` -> (F, N) ids of every codebook (column 0: ``encode``'s)."""
        features = extract_features(self.extractor, wave, sample_rate)
        with torch.inference_mode():
            if self.codebooks == 1:
                codes = self.quantizer.quantize(features)[:, None]  # (F,) -> (F, 1)
            else:
                codes = self.quantizer.quantize_codes(features)  # type: ignore[attr-defined]
        return codes.cpu().numpy().astype(np.int64)


def extract_features(extractor: FeatureExtractor, wave: np.ndarray | torch.Tensor,
                     sample_rate: int) -> torch.Tensor:
    """Checked, resampled waveform -> (F, D) features."""
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    if len(wave) < MIN_SECONDS * sample_rate:
        raise TokenizerError(f"audio too short to tokenize: {len(wave) / sample_rate:.3f} s "
                             f"(at least {MIN_SECONDS} s)")
    if float(np.sqrt(np.mean(wave**2))) < SILENCE_RMS:
        raise TokenizerError("audio is silent (RMS below 1e-4): nothing to tokenize")
    wave = resample(wave, sample_rate, extractor.sample_rate)
    with torch.inference_mode():
        return extractor.extract(torch.from_numpy(wave))
