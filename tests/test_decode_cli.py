"""Decoding a trained model from its checkpoint alone: records, batching, input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_train_base import tiny_cfg, tiny_data
from vadusa.cli import main
from vadusa.model.loading import SynthesisInputError, load_tts, synthesis_prefix
from vadusa.training.tts import train_base


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("tts")
    corpus, tokens = tiny_data(tmp)
    return train_base(tiny_cfg(tmp, "train.steps=20"), "toy", corpus, tokens, tmp / "m")


def test_decode_writes_records_and_batching_changes_nothing(checkpoint: Path,
                                                            tmp_path: Path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("one two three.\ns1\tfour five six.\n\nsix one.\n")
    for batch in ("1", "3"):
        assert main(["decode", "--checkpoint", str(checkpoint), "--texts", str(texts),
                     "--out", str(tmp_path / f"b{batch}.jsonl"), "--batch-size", batch,
                     "--set", "decoding.max_tokens_per_symbol=3"]) == 0
    one = [json.loads(x) for x in (tmp_path / "b1.jsonl").read_text().splitlines()]
    three = [json.loads(x) for x in (tmp_path / "b3.jsonl").read_text().splitlines()]
    assert [r["speaker"] for r in one] == [None, "s1", None]
    assert [r["tokens"] for r in one] == [r["tokens"] for r in three]
    for r in one:
        assert r["forwards"] >= 1 and r["tokens_per_second"] > 0
        assert len(r["tokens"]) <= 3 * len(r["text"]) + 10
        assert all(0 <= t < 16 for t in r["tokens"])


def test_bad_inputs_are_clear(checkpoint: Path) -> None:
    bundle = load_tts(checkpoint)
    with pytest.raises(SynthesisInputError, match="empty text"):
        synthesis_prefix(bundle, "   ", None, None, 3.0)
    with pytest.raises(SynthesisInputError, match="no speakable symbols"):
        synthesis_prefix(bundle, "#$%", None, None, 3.0)
    with pytest.raises(SynthesisInputError, match="known speakers: s0, s1"):
        synthesis_prefix(bundle, "one two.", "s9", None, 3.0)
    with pytest.raises(SynthesisInputError, match="too long"):
        synthesis_prefix(bundle, "one two three four five six " * 10, None, None, 3.0)
    with pytest.raises(SynthesisInputError, match="'toy' tokens, not 'whisper'"):
        load_tts(checkpoint, family="whisper")
    with pytest.raises(SynthesisInputError, match="16 units"):
        load_tts(checkpoint, vocab_size=256)


def test_decode_cli_reports_unknown_speaker(checkpoint: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("nobody\tone two.\n")
    assert main(["decode", "--checkpoint", str(checkpoint), "--texts", str(texts),
                 "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "known speakers" in capsys.readouterr().err
