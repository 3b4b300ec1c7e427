"""LibriTTS and Libriheavy preparation on small fixture trees in their real formats."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vadusa.config import load_config
from vadusa.data.audio import AudioError
from vadusa.data.candidates import CorpusSourceError
from vadusa.data.manifest import manifest_path, read_manifest
from vadusa.data.prepare import prepare_corpus


def tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def make_libritts(root: Path) -> None:
    """<root>/<subset>/<speaker>/<chapter>/<id>.wav + .normalized.txt, one corrupt file."""
    layout = {"train-clean-100": ["19", "26"], "dev-clean": ["84"], "test-clean": ["121"]}
    for subset, speakers in layout.items():
        for spk in speakers:
            chapter = root / subset / spk / "198"
            chapter.mkdir(parents=True)
            for k in range(2):
                stem = f"{spk}_198_00000{k}_000000"
                sf.write(chapter / f"{stem}.wav", tone(1.0 + k, 24000), 24000)
                (chapter / f"{stem}.normalized.txt").write_text(f"Speaker {spk} reads line {k}.")
                (chapter / f"{stem}.original.txt").write_text(f"Speaker {spk} reads line {k}.")
    bad = root / "train-clean-100" / "19" / "198" / "19_198_000009_000000"
    bad.with_suffix(".wav").write_bytes(b"RIFF....WAVEfmt garbage")
    bad.with_suffix(".normalized.txt").write_text("A corrupt file.")
    empty = root / "train-clean-100" / "26" / "198" / "26_198_000009_000000"
    sf.write(empty.with_suffix(".wav"), np.zeros(0, dtype=np.float32), 24000)
    empty.with_suffix(".normalized.txt").write_text("An empty file.")


def libritts_cfg(root: Path, *extra: str):
    return load_config(overrides=["corpus.source=libritts", f"corpus.libritts.root={root}",
                                  "corpus.libritts.subsets={train-clean-100: train, "
                                  "dev-clean: dev, test-clean: test}", *extra])


def test_libritts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "LibriTTS"
    make_libritts(root)
    with caplog.at_level(logging.WARNING):
        stats = prepare_corpus(libritts_cfg(root), tmp_path / "corpus")
    train = read_manifest(manifest_path(tmp_path / "corpus", "train"))
    assert {r.speaker for r in train} == {"19", "26"} and len(train) == 4
    assert {r.sample_rate for r in train} == {24000}
    assert train[0].text.startswith("Speaker") and train[0].normalized_text.startswith("speaker")
    assert stats["skipped"] == 2
    assert "19_198_000009_000000.wav" in caplog.text and "26_198_000009_000000.wav" in caplog.text
    skipped = (tmp_path / "corpus" / "skipped.tsv").read_text()
    assert "unreadable" in skipped and "empty" in skipped


def test_libritts_strict_fails_on_corrupt_audio(tmp_path: Path) -> None:
    make_libritts(tmp_path / "LibriTTS")
    with pytest.raises(AudioError, match="corpus.strict"):
        prepare_corpus(libritts_cfg(tmp_path / "LibriTTS", "corpus.strict=true"),
                       tmp_path / "corpus")


def test_libritts_missing_root_or_subset(tmp_path: Path) -> None:
    with pytest.raises(CorpusSourceError, match="corpus.libritts.root"):
        prepare_corpus(libritts_cfg(tmp_path / "nowhere"), tmp_path / "corpus")
    (tmp_path / "LibriTTS" / "train-clean-100").mkdir(parents=True)
    with pytest.raises(CorpusSourceError, match="dev-clean"):
        prepare_corpus(libritts_cfg(tmp_path / "LibriTTS"), tmp_path / "corpus")


def make_libriheavy(root: Path) -> dict[str, Path]:
    """LibriLight-style long recordings and lhotse cut manifests pointing into them."""
    rate = 16000
    manifests = {}
    for split, speakers in {"train": ["100", "101"], "dev": ["200"], "test": ["300"]}.items():
        lines = []
        for spk in speakers:
            rel = f"download/librilight/small/{spk}/book_{spk}/01_book_{spk}_64kb.flac"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(root / rel, tone(12.0, rate), rate, format="FLAC")
            rec_id = rel.removeprefix("download/librilight/").removesuffix(".flac")
            for k, start in enumerate((1.0, 5.5)):
                cut_id = f"{rec_id}_{k}"
                lines.append({
                    "id": cut_id, "start": start, "duration": 3.2, "channel": 0,
                    "supervisions": [{
                        "id": cut_id, "recording_id": rec_id, "start": 0, "duration": 3.2,
                        "channel": 0, "language": "English", "speaker": spk,
                        "custom": {"texts": [f"Reader {spk} says \"line {k}\".",
                                             f"READER {spk} SAYS LINE {k}"],
                                   "pre_texts": ["", ""], "begin_byte": 0, "end_byte": 10}}],
                    "recording": {"id": rec_id, "sources": [{"type": "file", "channels": [0],
                                                             "source": rel}],
                                  "sampling_rate": rate, "num_samples": 12 * rate,
                                  "duration": 12.0, "channel_ids": [0]},
                    "custom": {"text_path": "x"}, "type": "MonoCut"})
        if split == "train":  # a cut whose recording is missing, one beyond the file's end
            missing = json.loads(json.dumps(lines[0]))
            missing["id"] += "_missing"
            missing["recording"]["sources"][0]["source"] = "download/librilight/nope.flac"
            beyond = json.loads(json.dumps(lines[0]))
            beyond["id"] += "_beyond"
            beyond["start"] = 11.0
            lines += [missing, beyond]
        manifests[split] = root / f"libriheavy_cuts_{split}.jsonl.gz"
        with gzip.open(manifests[split], "wt") as f:
            f.write("".join(json.dumps(line) + "\n" for line in lines))
    return manifests


def test_libriheavy(tmp_path: Path) -> None:
    manifests = make_libriheavy(tmp_path / "lh")
    cfg = load_config(overrides=[
        "corpus.source=libriheavy", f"corpus.libriheavy.audio_root={tmp_path / 'lh'}",
        *(f"corpus.libriheavy.manifests.{s}={p}" for s, p in manifests.items())])
    stats = prepare_corpus(cfg, tmp_path / "corpus")
    train = read_manifest(manifest_path(tmp_path / "corpus", "train"))
    assert len(train) == 4 and stats["skipped"] == 2
    first = train[0]
    assert first.offset == 1.0 and first.num_samples == int(3.2 * 16000)
    assert "/" not in first.id and first.speaker == "100"
    assert first.normalized_text == "reader one hundred says line zero."


def test_libriheavy_unset_or_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(CorpusSourceError, match="manifests"):
        prepare_corpus(load_config(overrides=["corpus.source=libriheavy"]), tmp_path / "c")
    cfg = load_config(overrides=[
        "corpus.source=libriheavy", f"corpus.libriheavy.audio_root={tmp_path}",
        f"corpus.libriheavy.manifests.train={tmp_path / 'x.jsonl.gz'}"])
    with pytest.raises(CorpusSourceError, match="x.jsonl.gz"):
        prepare_corpus(cfg, tmp_path / "c")
