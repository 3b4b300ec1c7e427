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
from vadusa.data.manifest import Utterance, iter_manifest, manifest_path, read_manifest
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


def make_clean_libritts(root: Path, layout: dict[str, dict[str, int]]) -> None:
    """A LibriTTS tree without faults: ``layout`` is subset -> speaker -> utterances (1-2.5 s
    tones in two chapters)."""
    for subset, speakers in layout.items():
        for spk, count in speakers.items():
            for k in range(count):
                chapter = root / subset / spk / str(100 + k % 2)
                chapter.mkdir(parents=True, exist_ok=True)
                stem = f"{spk}_{chapter.name}_{k:06d}_000000"
                sf.write(chapter / f"{stem}.wav", tone(1.0 + 0.1 * (k % 16), 24000), 24000)
                (chapter / f"{stem}.normalized.txt").write_text(f"Speaker {spk} reads {k}.")


SUBSETS4 = ("corpus.libritts.subsets={train-clean-100: train, dev-clean: dev, "
            "test-clean: test, test-other: test}")


def test_libritts_missing_and_empty_transcripts_are_named_and_skipped(tmp_path: Path) -> None:
    root = tmp_path / "LibriTTS"
    make_clean_libritts(root, {"train-clean-100": {"19": 3, "26": 3}, "dev-clean": {"84": 2},
                               "test-clean": {"121": 2}})
    chapter = root / "train-clean-100" / "19" / "100"
    (chapter / "19_100_000000_000000.normalized.txt").unlink()  # no transcript
    (chapter / "19_100_000002_000000.normalized.txt").write_text(" \n\t")  # an empty one
    stats = prepare_corpus(libritts_cfg(root), tmp_path / "corpus")
    skipped = dict(line.split("\t") for line in
                   (tmp_path / "corpus" / "skipped.tsv").read_text().splitlines())
    assert stats["skipped"] == 2 and len(skipped) == 2
    assert skipped[str(chapter / "19_100_000000_000000.wav")] == (
        f"no transcript {chapter / '19_100_000000_000000.normalized.txt'}")
    assert skipped[str(chapter / "19_100_000002_000000.wav")] == (
        f"empty transcript {chapter / '19_100_000002_000000.normalized.txt'}")
    train = read_manifest(manifest_path(tmp_path / "corpus", "train"))
    assert sorted(r.id for r in train) == ["19_101_000001_000000", "26_100_000000_000000",
                                           "26_100_000002_000000", "26_101_000001_000000"]


def test_libritts_records_keep_their_subset(tmp_path: Path) -> None:
    root = tmp_path / "LibriTTS"
    make_clean_libritts(root, {"train-clean-100": {"19": 2}, "dev-clean": {"84": 2},
                               "test-clean": {"121": 2}, "test-other": {"300": 2}})
    prepare_corpus(libritts_cfg(root, SUBSETS4), tmp_path / "corpus")
    subsets = {split: {r.speaker: r.subset for r in
                       read_manifest(manifest_path(tmp_path / "corpus", split))}
               for split in ("train", "dev", "test")}
    assert subsets == {"train": {"19": "train-clean-100"}, "dev": {"84": "dev-clean"},
                       "test": {"121": "test-clean", "300": "test-other"}}


def test_a_subset_mapped_to_null_is_not_read(tmp_path: Path) -> None:
    """config/libritts-local.yaml drops libritts.yaml's train-clean-360 this way."""
    root = tmp_path / "LibriTTS"
    make_clean_libritts(root, {"train-clean-100": {"19": 2}, "dev-clean": {"84": 2},
                               "test-clean": {"121": 2}})
    cfg = libritts_cfg(root, "corpus.libritts.subsets={train-clean-100: train, "
                       "train-clean-360: null, dev-clean: dev, test-clean: test}")
    assert prepare_corpus(cfg, tmp_path / "corpus")["utterances"]["train"] == 2


def test_seen_test_moves_training_speakers_utterances(tmp_path: Path) -> None:
    root = tmp_path / "LibriTTS"
    make_clean_libritts(root, {"train-clean-100": {"19": 12, "26": 9, "40": 10},
                               "dev-clean": {"84": 2}, "test-clean": {"121": 4}})

    def held_out(seed: int, out: str) -> list:
        prepare_corpus(libritts_cfg(root, "corpus.libritts.seen_test=7", f"seed={seed}"),
                       tmp_path / out)
        test = read_manifest(manifest_path(tmp_path / out, "test"))
        train = read_manifest(manifest_path(tmp_path / out, "train"))
        assert len(train) == 31 - 7 and not {r.id for r in train} & {r.id for r in test}
        assert {r.speaker for r in test if r.subset == "test-clean"} == {"121"}
        assert len([r for r in test if r.subset == "test-clean"]) == 4  # unseen: all still there
        return sorted((r.speaker, r.id) for r in test if r.subset == "train-clean-100")

    seen = held_out(1, "a")
    assert len(seen) == 7
    per_speaker = {spk: sum(s == spk for s, _ in seen) for spk in ("19", "26", "40")}
    assert sorted(per_speaker.values()) == [2, 2, 3]  # round-robin: every speaker gives some
    assert held_out(1, "b") == seen  # deterministic for the seed
    assert held_out(2, "c") != seen  # and a function of it
    dev = read_manifest(manifest_path(tmp_path / "a", "dev"))
    assert [r.speaker for r in dev] == ["84", "84"]


def test_seen_test_must_leave_some_training(tmp_path: Path) -> None:
    root = tmp_path / "LibriTTS"
    make_clean_libritts(root, {"train-clean-100": {"19": 2}, "dev-clean": {"84": 1},
                               "test-clean": {"121": 1}})
    with pytest.raises(CorpusSourceError, match="seen_test is 2"):
        prepare_corpus(libritts_cfg(root, "corpus.libritts.seen_test=2"), tmp_path / "c")


def test_a_manifest_written_before_subset_still_reads(tmp_path: Path) -> None:
    record = {"id": "19_198_000000_000000", "speaker": "19", "text": "A line.",
              "normalized_text": "a line.", "audio_path": "/x.wav", "sample_rate": 24000,
              "num_samples": 24000, "duration": 1.0, "split": "train", "offset": 0.0}
    path = tmp_path / "train.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(record) + "\n")
    (old,) = iter_manifest(path)
    assert old == Utterance(**record) and old.subset == ""


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
