from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import requires_voices
from vadusa.config import load_config
from vadusa.data import audio
from vadusa.data.manifest import SPLITS, manifest_path, read_manifest
from vadusa.data.prepare import prepare_corpus
from vadusa.data.synthetic import CorpusError, plan_corpus
from vadusa.data.voices import VoiceError, check_available, get_voice

SENTENCES = [f"Sentence number {w} is here and it is clean." for w in
             ("one two three four five six seven eight nine ten eleven twelve thirteen "
              "fourteen fifteen sixteen seventeen eighteen nineteen twenty").split()] * 3
SENTENCES = [s.replace("is here", f"is here {'again ' * i}") for i, s in enumerate(SENTENCES)]
VOICES = ["v1", "v2", "v3"]


def test_plan_is_deterministic_for_a_seed() -> None:
    a = plan_corpus(SENTENCES, VOICES, 0.05, 0.1, 0.1, seed=1)
    assert a == plan_corpus(SENTENCES, VOICES, 0.05, 0.1, 0.1, seed=1)
    assert a != plan_corpus(SENTENCES, VOICES, 0.05, 0.1, 0.1, seed=2)


def test_plan_splits_by_sentence_and_covers_every_speaker() -> None:
    plan = plan_corpus(SENTENCES, VOICES, 10.0, 0.1, 0.1, seed=0)  # more hours than text
    by_split = {s: [u for u in plan if u.split == s] for s in SPLITS}
    texts = {s: {u.text for u in us} for s, us in by_split.items()}
    assert not texts["train"] & texts["dev"] and not texts["train"] & texts["test"]
    assert not texts["dev"] & texts["test"]
    for split in SPLITS:
        assert {u.speaker for u in by_split[split]} == set(VOICES)
    assert len({u.id for u in plan}) == len(plan)


def test_plan_hours_bound_the_size() -> None:
    small = plan_corpus(SENTENCES, VOICES, 0.03, 0.1, 0.1, seed=0)
    big = plan_corpus(SENTENCES, VOICES, 0.06, 0.1, 0.1, seed=0)
    assert len(small) < len(big) <= len(SENTENCES)


def test_too_little_text_for_the_voices_is_an_error() -> None:
    with pytest.raises(CorpusError, match="too few"):
        plan_corpus(SENTENCES[:5], VOICES, 1.0, 0.1, 0.1, seed=0)


def test_unknown_voice_lists_the_known_ones() -> None:
    with pytest.raises(VoiceError, match="flite_rms"):
        get_voice("flite_nobody")


def test_missing_binary_names_it_and_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(VoiceError, match=r"`festival` binary .*apt-get install festival"):
        check_available(get_voice("festival_kal"))


@requires_voices
def test_build_resample_resume(tmp_path: Path) -> None:
    cfg = load_config(overrides=[
        "corpus.synthetic.voices=[flite_rms, flite_slt, festival_kal]",
        "corpus.synthetic.hours=0.01", "corpus.synthetic.dev_fraction=0.2",
        "corpus.synthetic.test_fraction=0.2", "corpus.sample_rate=22050",
        "corpus.synthetic.chunk_size=4"])
    corpus = tmp_path / "corpus"
    stats = prepare_corpus(cfg, corpus)
    records = {s: read_manifest(manifest_path(corpus, s)) for s in SPLITS}
    for split, recs in records.items():
        assert {r.speaker for r in recs} == {"flite_rms", "flite_slt", "festival_kal"}, split
        for r in recs:
            rate, frames = audio.probe(r.audio_path)
            assert (rate, frames) == (22050, r.num_samples)
            assert r.normalized_text and r.split == split
    assert stats["speakers"] == 3 and stats["total_hours"] > 0
    assert (corpus / "symbols.json").is_file()

    # Interrupted build: one file lost, one half-written temp file left behind.
    victim = Path(records["train"][0].audio_path)
    kept = Path(records["train"][1].audio_path)
    before = kept.stat().st_mtime_ns
    victim.unlink()
    (victim.parent / f".{victim.name}.abc.part").write_bytes(b"junk")
    prepare_corpus(cfg, corpus)
    assert victim.is_file() and kept.stat().st_mtime_ns == before  # only the lost one redone
    assert read_manifest(manifest_path(corpus, "train")) == records["train"]

    # Another plan gives ids new sentences: those files are made again, never reused.
    replanned = load_config(overrides=[
        "corpus.synthetic.voices=[flite_rms, flite_slt, festival_kal]",
        "corpus.synthetic.hours=0.02", "corpus.synthetic.dev_fraction=0.3",
        "corpus.synthetic.test_fraction=0.1", "corpus.sample_rate=22050",
        "corpus.synthetic.chunk_size=4"])
    prepare_corpus(replanned, corpus)
    new = {r.id: r for s in SPLITS for r in read_manifest(manifest_path(corpus, s))}
    old = {r.id: r for recs in records.values() for r in recs}
    moved = [i for i in new if i in old and new[i].text != old[i].text]
    same = [i for i in new if i in old and new[i].text == old[i].text]
    assert moved and same
    for i in moved:  # a new file: the text changed, so its length did (a reused file's not)
        assert new[i].num_samples != old[i].num_samples
    for i in same:
        assert new[i].num_samples == old[i].num_samples


@requires_voices
def test_voices_are_available_here() -> None:
    for name in load_config().corpus.synthetic.voices:
        check_available(get_voice(name))
    assert os.environ.get("WANDB_MODE") == "disabled"
