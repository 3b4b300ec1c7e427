"""Speaker similarity: the pretrained GE2E encoder hears the same voice as the same and two
voices as different; too little speech is a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import requires_voices
from vadusa.data import audio
from vadusa.data.voices import get_voice, synthesize
from vadusa.eval.similarity import SimilarityError, SpeakerSimilarity

TEXTS = ("The old clock in the hall struck nine as the rain began.",
         "Nobody could remember who had planted the tall pine by the gate.")


@pytest.fixture(scope="module")
def sim() -> SpeakerSimilarity:
    return SpeakerSimilarity()


@requires_voices
def test_same_voice_is_closer_than_another_voice(sim: SpeakerSimilarity,
                                                 tmp_path: Path) -> None:
    waves = {}
    for voice in ("flite_rms", "flite_slt"):
        jobs = [(text, tmp_path / f"{voice}-{i}.wav") for i, text in enumerate(TEXTS)]
        synthesize(get_voice(voice), jobs)
        waves[voice] = [audio.read(str(path)) for _, path in jobs]
    (rms0, r0), (rms1, r1) = waves["flite_rms"]
    (slt0, s0), _ = waves["flite_slt"]
    itself = sim.similarity(rms0, r0, rms0, r0)
    same_voice = sim.similarity(rms0, r0, rms1, r1)  # other words, same voice
    other_voice = sim.similarity(rms0, r0, slt0, s0)  # same words, other voice
    assert itself == pytest.approx(1.0, abs=1e-4)
    assert same_voice > other_voice + 0.1
    # the rate does not matter: the encoder resamples to its own 16 kHz
    resampled = audio.resample(rms1, r1, 22050)
    assert sim.similarity(rms0, r0, resampled, 22050) == pytest.approx(same_voice, abs=0.03)


def test_silence_is_an_error_naming_the_need(sim: SpeakerSimilarity) -> None:
    with pytest.raises(SimilarityError, match="silent"):
        sim.embed(np.zeros(16000, dtype=np.float32), 16000)
    # a faint 50 ms blip is voiced for too short a time
    blip = np.zeros(16000, dtype=np.float32)
    blip[:800] = 0.5 * np.sin(np.arange(800) * 2 * np.pi * 200 / 16000)
    with pytest.raises(SimilarityError, match="too little for a speaker embedding"):
        sim.embed(blip, 16000)
