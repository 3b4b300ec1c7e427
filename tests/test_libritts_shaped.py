"""`vadusa make-corpus --layout libritts`: a tiny LibriTTS-shaped corpus, read back by
`vadusa prepare` as LibriTTS."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import soundfile as sf

from conftest import requires_voices
from vadusa.cli import main
from vadusa.config import DEFAULT_VOICES, LibriTTSShapedConfig, load_config
from vadusa.data.libritts_shaped import (
    DEV,
    LIBRIVOX_NAME,
    TEST,
    TEST_OTHER,
    TRAIN,
    chapter_ids,
    libritts_normalized,
    plan_libritts_shaped,
    speaker_ids,
)
from vadusa.data.manifest import manifest_path, read_manifest
from vadusa.data.text import normalize
from vadusa.data.voices import VOICES
from vadusa.eval.resynthesize import LIBRIVOX_DIR

HAVE_LIBRIVOX = (LIBRIVOX_DIR / "transcription").is_file()
SENTENCES = [f"Sentence {w} is a clean one, said once." for w in
             "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
             "november oscar papa quebec romeo sierra tango".split()]
TINY = LibriTTSShapedConfig(train_voices=("flite_rms", "flite_slt"),
                            dev_voices=("flite_kal16",), test_voices=("flite_awb", "piper_joe"),
                            train_hours=0.005, dev_utterances=2, test_utterances=3,
                            chapters_per_speaker=2)


def test_plan_keeps_speakers_and_sentences_apart() -> None:
    plan = plan_libritts_shaped(SENTENCES, TINY, seed=3)
    assert plan == plan_libritts_shaped(SENTENCES, TINY, seed=3)
    assert plan != plan_libritts_shaped(SENTENCES, TINY, seed=4)
    voices = {s: {u.voice for u in plan if u.subset == s} for s in (TRAIN, DEV, TEST)}
    assert voices == {TRAIN: {"flite_rms", "flite_slt"}, DEV: {"flite_kal16"},
                      TEST: {"flite_awb", "piper_joe"}}
    texts = [u.text for u in plan]
    assert len(texts) == len(set(texts))  # no sentence twice, so none in two subsets
    assert sum(u.subset == DEV for u in plan) == 2 and sum(u.subset == TEST for u in plan) == 6
    for utt in plan:
        speaker, chapter, para, sent = utt.id.split("_")
        assert (speaker, chapter) == (utt.speaker, utt.chapter)
        assert len(speaker) == 4 and len(chapter) == 6 and len(para) == len(sent) == 6
    test_chapters = {u.chapter for u in plan if u.voice == "flite_awb"}
    assert len(test_chapters) == 2  # 3 utterances in 2 chapters


def test_too_few_sentences_is_an_error() -> None:
    from vadusa.data.synthetic import CorpusError  # noqa: PLC0415

    with pytest.raises(CorpusError, match="test_utterances"):
        plan_libritts_shaped(SENTENCES[:8], TINY, seed=0)


def test_ids_are_stable_and_unique() -> None:
    ids = speaker_ids()
    assert set(ids) == {*VOICES, LIBRIVOX_NAME} and len(set(ids.values())) == len(ids)
    assert all(len(i) == 4 and i.isdigit() for i in ids.values())
    assert chapter_ids("flite_rms", 4)[:2] == chapter_ids("flite_rms", 2)


def test_unseen_voices_of_the_default_are_not_training_voices() -> None:
    shaped = LibriTTSShapedConfig()
    assert shaped.train_voices == DEFAULT_VOICES
    unseen = {*shaped.dev_voices, *shaped.test_voices}
    assert len(shaped.test_voices) >= 2 and not set(shaped.dev_voices) & set(shaped.test_voices)
    assert not unseen & set(DEFAULT_VOICES) and unseen <= set(VOICES)


@pytest.mark.parametrize("text", [
    "He owed 1,000 dollars & 3 cents on the 21st.", "Caf\u00e9 \u2014 it\u2019s  closed: go!",
    "A plain sentence, as fortunes have.", "he might even have been made amiable himself"])
def test_normalized_text_normalizes_like_the_original(text: str) -> None:
    assert normalize(libritts_normalized(text)) == normalize(text)
    assert not any(c.isdigit() for c in libritts_normalized(text))


def make_corpus(out: Path, *extra: str) -> int:
    return main(["make-corpus", "--layout", "libritts", str(out),
                 "--set", "corpus.libritts_shaped.train_voices=[flite_rms, flite_slt]",
                 "--set", "corpus.libritts_shaped.dev_voices=[flite_kal16]",
                 "--set", "corpus.libritts_shaped.test_voices=[flite_awb, flite_awb_high]",
                 "--set", "corpus.libritts_shaped.train_hours=0.004",
                 "--set", "corpus.libritts_shaped.dev_utterances=2",
                 "--set", "corpus.libritts_shaped.test_utterances=2",
                 "--set", "corpus.libritts_shaped.chapters_per_speaker=2",
                 "--set", f"corpus.libritts_shaped.test_other={HAVE_LIBRIVOX}",
                 "--set", "corpus.synthetic.workers=1", *extra])


def snapshot(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@requires_voices
def test_make_corpus_then_prepare(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "LibriTTS-shaped"
    assert make_corpus(out) == 0
    ids = speaker_ids()
    layout = {subset: sorted(p.name for p in (out / subset).iterdir())
              for subset in (TRAIN, DEV, TEST, TEST_OTHER) if (out / subset).is_dir()}
    assert layout[TRAIN] == sorted([ids["flite_rms"], ids["flite_slt"]])
    assert layout[DEV] == [ids["flite_kal16"]]
    assert layout[TEST] == sorted([ids["flite_awb"], ids["flite_awb_high"]])
    assert layout.get(TEST_OTHER) == ([ids[LIBRIVOX_NAME]] if HAVE_LIBRIVOX else None)

    wavs = sorted(out.glob("*/*/*/*.wav"))
    for wav in wavs:
        speaker, chapter = wav.parent.parent.name, wav.parent.name
        assert wav.stem.startswith(f"{speaker}_{chapter}_")
        info = sf.info(str(wav))
        assert (info.samplerate, info.channels, info.subtype) == (24000, 1, "PCM_16")
        original = wav.with_suffix(".original.txt").read_text()
        normalized = wav.with_suffix(".normalized.txt").read_text()
        assert normalized and normalize(normalized) == normalize(original)
        trans = wav.parent / f"{speaker}_{chapter}.trans.tsv"
        assert f"{wav.stem}\t{original}\t{normalized}\n" in trans.read_text()
    speakers = (out / "speakers.tsv").read_text().splitlines()
    assert speakers[0] == "READER\tGENDER\tSUBSET\tNAME"
    assert f"{ids['flite_slt']}\tF\t{TRAIN}\tflite_slt" in speakers
    assert f"{ids['flite_awb_high']}\tM\t{TEST}\tflite_awb_high" in speakers
    assert "flite_awb_high" in (out / "README.txt").read_text()

    corpus = tmp_path / "corpus"
    subsets = f"{{{TRAIN}: train, {DEV}: dev, {TEST}: test" + (
        f", {TEST_OTHER}: test}}" if HAVE_LIBRIVOX else "}")
    assert main(["prepare", "--set", "corpus.source=libritts", "--set",
                 f"corpus.libritts.root={out}", "--set", f"corpus.libritts.subsets={subsets}",
                 "--set", "tracking.backend=none", "--out", str(corpus)]) == 0
    records = {s: read_manifest(manifest_path(corpus, s)) for s in ("train", "dev", "test")}
    assert sum(map(len, records.values())) == len(wavs)
    assert {(r.speaker, r.subset) for r in records["train"]} == {
        (ids["flite_rms"], TRAIN), (ids["flite_slt"], TRAIN)}
    assert {(r.speaker, r.subset) for r in records["dev"]} == {(ids["flite_kal16"], DEV)}
    expected_test = {(ids["flite_awb"], TEST), (ids["flite_awb_high"], TEST)}
    if HAVE_LIBRIVOX:
        expected_test.add((ids[LIBRIVOX_NAME], TEST_OTHER))
    assert {(r.speaker, r.subset) for r in records["test"]} == expected_test

    # A rerun makes nothing; a lost file is the only one made again.
    before = snapshot(out)
    with caplog.at_level(logging.INFO, logger="vadusa.data.libritts_shaped"):
        assert make_corpus(out) == 0
    assert "0 to make" in caplog.text and snapshot(out) == before
    victim = wavs[0]
    victim.unlink()
    assert make_corpus(out) == 0
    after = snapshot(out)
    assert victim in after and {p for p in after if after[p] != before[p]} == {victim}

    # Another plan (seed, chapters): an id that now means another sentence is made again, and
    # the files of the old plan are gone, not read as extra utterances.
    texts = {p: p.with_suffix(".original.txt").read_text() for p in out.glob("*/*/*/*.wav")}
    assert make_corpus(out, "--set", "seed=8",
                       "--set", "corpus.libritts_shaped.chapters_per_speaker=1") == 0
    for voice in ("flite_rms", "flite_kal16", "flite_awb_high"):
        assert len(list(out.glob(f"*/{ids[voice]}/*"))) == 1
    kept = [p for p in out.glob("*/*/*/*.wav") if p in texts]
    new_text = [p for p in kept if p.with_suffix(".original.txt").read_text() != texts[p]]
    assert new_text and all(p.stat().st_mtime_ns != after[p] for p in new_text)


def test_make_corpus_refuses_a_voice_in_two_subsets(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    assert main(["make-corpus", "--layout", "libritts", str(tmp_path / "out"), "--set",
                 "corpus.libritts_shaped.test_voices=[flite_rms, flite_awb]"]) == 2
    assert "flite_rms in both train_voices and test_voices" in capsys.readouterr().err


def test_make_corpus_refuses_a_foreign_directory(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "LibriTTS" / "train-clean-100").mkdir(parents=True)
    assert main(["make-corpus", "--layout", "libritts", str(tmp_path / "LibriTTS")]) == 2
    assert "no plan.json" in capsys.readouterr().err


def test_local_config_reads_the_made_corpus(repo: Path) -> None:
    cfg = load_config([repo / "config" / "libritts.yaml", repo / "config" / "libritts-local.yaml"])
    assert cfg.experiment == "libritts-local" and cfg.corpus.source == "libritts"
    assert cfg.corpus.libritts.root == "data/LibriTTS-shaped" and cfg.corpus.libritts.seen_test
    read = {s for s, split in cfg.corpus.libritts.subsets.items() if split is not None}
    assert read == {TRAIN, DEV, TEST, TEST_OTHER}
    assert cfg.tokens.families == ("whisper",)
