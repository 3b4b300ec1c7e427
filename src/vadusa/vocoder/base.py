"""The vocoder contract, shared by every vocoder (``vadusa.vocoder``'s ``UnitVocoder``, the
``encodec`` family's ``vadusa.vocoder.codec.CodecVocoder``): ``decode(tokens, speaker) ->
(wave, sample_rate)``, with the checks of its input and the choice of its voice. A vocoder whose
``speaker_conditioning`` is ``dvector`` also takes the voice as a (256,) d-vector."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

__all__ = ["Vocoder", "VocoderError", "check_units", "voice_for", "wants_embedding"]


class VocoderError(ValueError):
    pass


class Vocoder(Protocol):
    sample_rate: int
    family: str
    vocab_size: int
    speakers: list[str]  # voices it knows; empty: speaker-agnostic (a codec)

    def decode(self, tokens: np.ndarray, speaker: str) -> tuple[np.ndarray, int]:
        """(U,) int unit ids -> ((T,) float32 waveform, sample rate)."""
        ...


def wants_embedding(vocoder: Any) -> bool:
    """Whether a vocoder renders a voice from a speaker embedding (a prompt's d-vector,
    ``vocoder.speaker_conditioning: dvector``) rather than from a table of training voices."""
    return getattr(vocoder, "speaker_conditioning", "table") == "dvector"


def voice_for(vocoder: Any, speaker: str | None,
              embedding: np.ndarray | None = None) -> str | np.ndarray:
    """The voice to decode ``speaker``'s tokens with: ``embedding`` (the prompt's (256,)
    d-vector) when given and the vocoder is conditioned on d-vectors, so that any voice, heard
    in training or not, is rendered as its prompt sounds; else ``speaker`` itself if the
    vocoder knows it, else its first voice; a speaker-agnostic vocoder (a codec: no
    ``speakers``) takes any."""
    if embedding is not None and wants_embedding(vocoder):
        return np.asarray(embedding, dtype=np.float32)
    speakers = list(getattr(vocoder, "speakers", None) or [])
    if not speakers:
        return speaker or ""
    return speaker if speaker in speakers else speakers[0]


def check_units(tokens: np.ndarray, vocab_size: int, family: str) -> np.ndarray:
    """A vocoder's input checked: a non-empty 1-d int array of ids in [0, vocab_size)."""
    units = np.asarray(tokens)
    if units.ndim != 1 or units.size == 0:
        raise VocoderError(f"expected a non-empty 1-d array of unit ids, "
                           f"got shape {units.shape}")
    if not np.issubdtype(units.dtype, np.integer):
        raise VocoderError(f"unit ids must be integers, got dtype {units.dtype}")
    bad = units[(units < 0) | (units >= vocab_size)]
    if bad.size:
        raise VocoderError(
            f"{bad.size} unit ids outside the vocabulary [0, {vocab_size}) of this "
            f"{family!r} vocoder (e.g. {int(bad[0])}); strip bos/eos/pad "
            f"({vocab_size}..{vocab_size + 2}) before decoding")
    return units.astype(np.int64)
