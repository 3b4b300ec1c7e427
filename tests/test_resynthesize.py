from __future__ import annotations

from pathlib import Path

import pytest

from vadusa.data.audio import write_wav
from vadusa.eval.resynthesize import (
    LIBRIVOX_DIR,
    Item,
    ResynthesisError,
    items_from_list,
    resynthesize,
    write_librivox_list,
)
from vadusa.vocoder import VocoderError


def test_audio_list_parsing(tmp_path: Path) -> None:
    listing = tmp_path / "list.tsv"
    listing.write_text("a.wav\tHello there.\n\n/abs/b.flac\tGood morning!\n")
    items = items_from_list(listing)
    assert [(i.id, i.text) for i in items] == [("a", "Hello there."), ("b", "Good morning!")]
    assert items[0].audio_path == str(tmp_path / "a.wav") and items[1].audio_path == "/abs/b.flac"
    assert items[0].speaker is None


@pytest.mark.parametrize(("content", "problem"), [
    ("a.wav Hello\n", "path<TAB>text"), ("a.wav\t  \n", "empty transcript"), ("\n", "no utter")])
def test_bad_audio_lists(tmp_path: Path, content: str, problem: str) -> None:
    listing = tmp_path / "list.tsv"
    listing.write_text(content)
    with pytest.raises(ResynthesisError, match=problem):
        items_from_list(listing)


def test_missing_list(tmp_path: Path) -> None:
    with pytest.raises(ResynthesisError, match="not found"):
        items_from_list(tmp_path / "none.tsv")


def test_librivox_list(tmp_path: Path) -> None:
    source = tmp_path / "librivox"
    source.mkdir()
    (source / "transcription").write_text(
        "<s> he was not an ill disposed young man </s> (clip-0880)\n"
        "<s> he might even have been made amiable himself </s> (clip-0930)\n")
    items = items_from_list(write_librivox_list(tmp_path / "list.tsv", source))
    assert [i.id for i in items] == ["clip-0880", "clip-0930"]
    assert items[0].text == "he was not an ill disposed young man"
    with pytest.raises(ResynthesisError, match="pocketsphinx-testdata"):
        write_librivox_list(tmp_path / "x.tsv", tmp_path / "nowhere")


@pytest.mark.skipif(not (LIBRIVOX_DIR / "transcription").is_file(),
                    reason="pocketsphinx-testdata not installed (scripts/setup.sh installs it)")
def test_installed_librivox_recordings_are_readable(tmp_path: Path) -> None:
    from vadusa.data import audio

    items = items_from_list(write_librivox_list(tmp_path / "list.tsv"))
    assert len(items) == 5
    for item in items:
        rate, frames = audio.probe(item.audio_path)
        assert rate == 16000 and frames > rate


def test_a_failed_round_trip_counts_as_all_words_deleted(tmp_path: Path) -> None:
    """One recording the vocoder refuses and one that cannot be read: both count in the WER
    as all their words deleted (4 + 3 of 2 + 4 + 3 words), the judged one as judged."""
    import numpy as np  # noqa: PLC0415

    for name in ("ok", "refused"):
        write_wav(tmp_path / f"{name}.wav", np.zeros(1600, dtype=np.float32), 16000)

    class Tokens:
        family = "units"

        def encode(self, wave: np.ndarray, rate: int) -> np.ndarray:
            return np.zeros(5, dtype=np.int64)

    class Vocoder:
        calls = 0

        def decode(self, tokens: np.ndarray, voice: object) -> tuple[np.ndarray, int]:
            Vocoder.calls += 1
            if Vocoder.calls == 2:
                raise VocoderError("unit 7 out of range")
            return np.zeros(1600, dtype=np.float32), 16000

    class Judge:
        name = "echo"

        def transcribe(self, wave: np.ndarray, rate: int) -> str:
            return "one two"

    items = [Item("ok", str(tmp_path / "ok.wav"), "one two"),
             Item("refused", str(tmp_path / "refused.wav"), "one two three four"),
             Item("missing", str(tmp_path / "missing.wav"), "five six seven")]
    metrics = resynthesize(items, Tokens(), Vocoder(), Judge(), tmp_path / "out")
    assert metrics["utterances"] == 1 and metrics["failed"] == 2
    assert [(f["id"], f["stage"]) for f in metrics["failures"]] == [
        ("refused", "resynthesize"), ("missing", "read")]
    assert metrics["words"] == 9 and metrics["wer"] == pytest.approx(7 / 9)
    # the refused one's recording was heard ("one two" of four words: 2 deleted); the
    # missing one's was not (3 deleted)
    assert metrics["input_wer"] == pytest.approx(5 / 9)
    assert metrics["ci"]["wer"]["low"] <= metrics["wer"] <= metrics["ci"]["wer"]["high"]
    assert {r["id"] for r in metrics["failed_utterances"]} == {"refused", "missing"}
