"""The corpus's d-vector store: one GE2E d-vector per utterance, from the real (offline)
Resemblyzer encoder on short synthetic voices; a silent utterance is listed, not fatal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import lfilter

from vadusa.cli import main
from vadusa.config import load_config
from vadusa.data.audio import write_wav
from vadusa.data.dvectors import (
    DIM,
    DvectorStoreError,
    compute_dvectors,
    dvectors_path,
    mean_dvector,
    read_dvectors,
    read_skipped,
    skipped_path,
    write_dvectors,
)
from vadusa.data.manifest import Utterance, manifest_path, read_manifest, write_manifest
from vadusa.eval.similarity import SpeakerSimilarity
from vadusa.plan import Plan

RATE = 16000


def vowel(seconds: float, f0: float, formants: tuple[float, ...], seed: int) -> np.ndarray:
    """A voice stand-in the encoder's VAD accepts: a pulse train at ``f0`` through vocal-tract
    resonances, in syllable-rate bursts. Pitch and formants make the voice."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    phase = np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 2 * t))) / RATE
    x = (np.diff(np.floor(phase), prepend=0) > 0) + 0.01 * rng.standard_normal(len(t))
    for fc in formants:
        r, theta = np.exp(-np.pi * 100 / RATE), 2 * np.pi * fc / RATE
        x = lfilter([1], [1, -2 * r * np.cos(theta), r * r], x)
    x *= 0.5 * (1 - np.cos(2 * np.pi * 4 * t))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


VOICES = {"low": (110.0, (500.0, 1500.0)), "high": (220.0, (700.0, 2200.0))}


def write_voice_corpus(root: Path, split: str = "train") -> Path:
    """Two utterances of each of two voices and one silent utterance, as a corpus split."""
    records = []
    waves = {f"{voice}-{n}": vowel(1.0 + 0.2 * n, f0, formants, seed=n)
             for voice, (f0, formants) in VOICES.items() for n in range(2)}
    waves["low-silent"] = np.zeros(RATE, dtype=np.float32)
    for utt_id, wave in waves.items():
        path = root / "wavs" / f"{utt_id}.wav"
        write_wav(path, wave, RATE)
        records.append(Utterance(id=utt_id, speaker=utt_id.split("-")[0], text="a",
                                 normalized_text="a", audio_path=str(path), sample_rate=RATE,
                                 num_samples=len(wave), duration=len(wave) / RATE, split=split))
    write_manifest(manifest_path(root, split), records)
    return root


@pytest.fixture(scope="module")
def encoder() -> SpeakerSimilarity:
    return SpeakerSimilarity()


def test_store_writes_reads_and_lists_what_it_skipped(tmp_path: Path,
                                                      encoder: SpeakerSimilarity) -> None:
    corpus = write_voice_corpus(tmp_path / "corpus")
    done = compute_dvectors(corpus, "train", encoder)
    assert done.path == dvectors_path(corpus, "train") == corpus / "dvectors" / "train.npz"
    assert done.embedded == 4
    assert list(done.skipped) == ["low-silent"] and "silent" in done.skipped["low-silent"]
    assert read_skipped(corpus, "train") == done.skipped  # the sidecar, one line per utterance
    assert skipped_path(corpus, "train").read_text().count("\n") == 1

    vectors = read_dvectors(corpus, "train")
    assert sorted(vectors) == ["high-0", "high-1", "low-0", "low-1"]
    for v in vectors.values():
        assert v.shape == (DIM,) and v.dtype == np.float32
        assert float(np.linalg.norm(v)) == pytest.approx(1.0, abs=1e-4)
    # the encoder hears two voices: each utterance is closer to the other of its voice
    assert vectors["low-0"] @ vectors["low-1"] > vectors["low-0"] @ vectors["high-0"]

    mean = mean_dvector(vectors, ["low-0", "low-1", "low-silent"])  # the skipped one passed over
    assert float(np.linalg.norm(mean)) == pytest.approx(1.0, abs=1e-5)
    expected = vectors["low-0"] + vectors["low-1"]
    np.testing.assert_allclose(mean, expected / np.linalg.norm(expected), atol=1e-6)

    # a rerun with nothing to skip leaves no stale list behind
    voiced = [u for u in read_manifest(manifest_path(corpus, "train")) if u.id != "low-silent"]
    write_manifest(manifest_path(corpus, "train"), voiced)
    assert compute_dvectors(corpus, "train", encoder).skipped == {}
    assert read_skipped(corpus, "train") == {}


def test_missing_or_damaged_store_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(DvectorStoreError, match=r"dvectors/dev\.npz does not exist.*vadusa "
                                                r"embed-speakers --corpus .* --split dev"):
        read_dvectors(tmp_path, "dev")
    path = dvectors_path(tmp_path, "dev")
    path.parent.mkdir()
    path.write_bytes(b"not a zip")
    with pytest.raises(DvectorStoreError, match="damaged.*delete it"):
        read_dvectors(tmp_path, "dev")
    with pytest.raises(DvectorStoreError, match=r"need \(2, 256\)"):
        write_dvectors(path, ["a", "b"], np.zeros((2, 3)))
    with pytest.raises(DvectorStoreError, match="none of the utterances has a d-vector"):
        mean_dvector({}, ["a"])


def test_embed_speakers_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    corpus = write_voice_corpus(tmp_path / "corpus", "dev")
    assert main(["embed-speakers", "--corpus", str(corpus), "--split", "dev",
                 "--set", "device=cpu"]) == 0
    said = capsys.readouterr().out
    assert "dev: 4 d-vectors" in said and "1 utterances without one" in said
    assert len(read_dvectors(corpus, "dev")) == 4
    # the other splits have no manifest here: a clear error, not a traceback
    assert main(["embed-speakers", "--corpus", str(corpus), "--split", "test"]) == 2


def test_the_plan_puts_the_store_where_the_reader_looks() -> None:
    plan = Plan(load_config())
    assert plan.dvectors("train") == str(dvectors_path(plan.corpus(), "train"))
