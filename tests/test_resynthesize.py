from __future__ import annotations

from pathlib import Path

import pytest

from vadusa.eval.resynthesize import (
    LIBRIVOX_DIR,
    ResynthesisError,
    items_from_list,
    write_librivox_list,
)


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
