from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from vadusa.atomic import atomic_path
from vadusa.data import audio
from vadusa.data.manifest import (
    ManifestError,
    Utterance,
    read_manifest,
    write_manifest,
)


def utt(i: int = 0, **changes: object) -> Utterance:
    base = dict(id=f"u{i}", speaker="spk", text="Hello there.", normalized_text="hello there.",
                audio_path="/x.wav", sample_rate=16000, num_samples=16000, duration=1.0,
                split="train")
    return Utterance(**{**base, **changes})


def test_round_trip(tmp_path: Path) -> None:
    records = [utt(i) for i in range(5)] + [utt(9, split="test", offset=2.5)]
    assert write_manifest(tmp_path / "m.jsonl.gz", records) == 6
    assert read_manifest(tmp_path / "m.jsonl.gz") == records


def test_records_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        utt().speaker = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"split": "valid"}, "split"),
        ({"normalized_text": "  "}, "empty normalized text"),
        ({"duration": 2.0}, "duration"),
        ({"num_samples": 0}, "non-positive"),
        ({"speaker": ""}, "empty speaker"),
    ],
)
def test_invalid_records_are_rejected(changes: dict, problem: str) -> None:
    with pytest.raises(ManifestError, match=problem):
        utt(**changes)


def test_duplicate_ids_are_rejected_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="duplicate"):
        write_manifest(tmp_path / "m.jsonl.gz", [utt(1), utt(1)])
    assert list(tmp_path.iterdir()) == []  # atomic: no partial file left behind


def test_missing_manifest_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="vadusa prepare"):
        read_manifest(tmp_path / "train.jsonl.gz")


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_audio_read_resample_and_errors(tmp_path: Path) -> None:
    rate = 22050
    t = np.arange(rate) / rate
    audio.write_wav(tmp_path / "a.wav", 0.5 * np.sin(2 * np.pi * 440 * t), rate)
    wave, out_rate = audio.read(tmp_path / "a.wav", target_rate=16000)
    assert out_rate == 16000 and abs(len(wave) - 16000) <= 1
    segment, _ = audio.read(tmp_path / "a.wav", offset=0.5, num_samples=rate // 4)
    assert len(segment) == rate // 4
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00not really a wave file")
    with pytest.raises(audio.AudioError, match="unreadable"):
        audio.probe(tmp_path / "corrupt.wav")
    with pytest.raises(audio.AudioError, match="not found"):
        audio.probe(tmp_path / "missing.wav")


def test_trim_silence_keeps_margin() -> None:
    rate = 16000
    tone = 0.5 * np.sin(2 * np.pi * 200 * np.arange(rate) / rate).astype(np.float32)
    padded = np.concatenate([np.zeros(rate), tone, np.zeros(2 * rate)]).astype(np.float32)
    trimmed = audio.trim_silence(padded, rate, margin=0.1)
    assert abs(len(trimmed) - 1.2 * rate) <= 0.02 * rate
