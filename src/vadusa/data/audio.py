"""Audio I/O with soundfile (torchaudio.load needs FFmpeg here), resampling, and trimming.

Waves are float32 numpy arrays, mono, in [-1, 1].
"""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from vadusa.atomic import atomic_path


class AudioError(ValueError):
    """Audio that cannot be used: missing, unreadable, empty, or silent."""


def probe(path: str | Path) -> tuple[int, int]:
    """(sample_rate, num_frames) of an audio file; AudioError if it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioError(f"unreadable audio file {path}: {exc}") from exc
    if info.frames <= 0:
        raise AudioError(f"empty audio file {path}")
    return int(info.samplerate), int(info.frames)


def read(
    path: str | Path,
    offset: float = 0.0,
    num_samples: int | None = None,
    target_rate: int | None = None,
) -> tuple[np.ndarray, int]:
    """Read (a segment of) a file as mono float32; resample if ``target_rate`` is given."""
    rate, frames = probe(path)
    start = int(round(offset * rate))
    stop = frames if num_samples is None else min(frames, start + num_samples)
    if start >= stop:
        raise AudioError(f"{path}: segment at {offset:.2f} s lies outside the file")
    try:
        wave, rate = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioError(f"unreadable audio file {path}: {exc}") from exc
    wave = wave.mean(axis=1)  # (T, C) -> (T,)
    if target_rate is not None and target_rate != rate:
        wave, rate = resample(wave, rate, target_rate), target_rate
    return wave.astype(np.float32), rate


def resample(wave: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (anti-aliased) between integer rates."""
    if rate == target_rate:
        return wave
    g = gcd(rate, target_rate)
    return resample_poly(wave, target_rate // g, rate // g).astype(np.float32)


def trim_silence(
    wave: np.ndarray, rate: int, threshold_db: float = -40.0, margin: float = 0.1
) -> np.ndarray:
    """Cut leading/trailing frames quieter than ``threshold_db`` below the peak, keeping
    ``margin`` seconds on each side. Voices pad very differently; this evens them out."""
    hop = max(1, int(0.01 * rate))
    n = len(wave) // hop
    if n == 0:
        return wave
    frames = wave[: n * hop].reshape(n, hop)  # (T,) -> (frames, hop)
    energy = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    loud = np.nonzero(energy > energy.max() + threshold_db)[0]
    if len(loud) == 0:
        return wave
    pad = int(margin * rate)
    start = max(0, loud[0] * hop - pad)
    stop = min(len(wave), (loud[-1] + 1) * hop + pad)
    return wave[start:stop]


def write_wav(path: str | Path, wave: np.ndarray, rate: int) -> None:
    """Write 16-bit PCM WAV atomically."""
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(wave, -1.0, 1.0), rate, subtype="PCM_16", format="WAV")
