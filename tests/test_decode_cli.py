"""Decoding a trained model from its checkpoint alone: records, batching, input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from test_train_base import tiny_cfg, tiny_data
from vadusa.checkpoint import CheckpointError, load_checkpoint
from vadusa.cli import main
from vadusa.devices import bf16_decodes_faster
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
    assert [r["speaker"] for r in one] == ["s0", "s1", "s0"]  # none given: the default voice
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


def test_known_speaker_decodes_with_the_stored_prompt(checkpoint: Path) -> None:
    bundle = load_tts(checkpoint)
    prompts = bundle.meta["prompts"]
    assert set(prompts) <= set(bundle.speakers) and prompts  # training conditions on prompts
    speaker, stored = next(iter(prompts.items()))
    with_prompt = synthesis_prefix(bundle, "one two.", speaker, None, 3.0).ids
    own_prompt = synthesis_prefix(bundle, "one two.", speaker, ("one.", [1, 2]), 3.0).ids
    # the prefix ends with bos + the prompt's speech tokens
    tail = with_prompt[-len(stored["tokens"]):].tolist()
    assert tail == [bundle.vocab.speech_offset + t for t in stored["tokens"]]
    assert own_prompt[-2:].tolist() == [bundle.vocab.speech_offset + t for t in (1, 2)]
    assert (len(with_prompt) - len(stored["text"]) - len(stored["tokens"])
            == len(own_prompt) - len(bundle.symbols.encode("one.")) - 2)


def test_no_speaker_means_the_default_voice(checkpoint: Path) -> None:
    """Training never shows the model its "unknown speaker" id: without a speaker it speaks
    with its default voice, its first training speaker, prompt included."""
    bundle = load_tts(checkpoint)
    assert bundle.default_speaker == bundle.speakers[0]
    default = synthesis_prefix(bundle, "one two.", None, None, 3.0).ids
    first = synthesis_prefix(bundle, "one two.", bundle.speakers[0], None, 3.0).ids
    assert default.tolist() == first.tolist()
    assert bundle.vocab.speaker_input(bundle.vocab.unknown_speaker) not in default.tolist()


def test_bench_runs_the_baseline_and_batched_ar_in_one_process(
        checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("one two three.\ns1\tfour five six.\nsix one.\ns0\ttwo two.\n")
    out = tmp_path / "bench.json"
    assert main(["bench", "--checkpoint", str(checkpoint), "--texts", str(texts),
                 "--batch-sizes", "2", "4", "--out", str(out), "--precision", "float32",
                 "--set", "decoding.max_tokens_per_symbol=3"]) == 0
    printed = capsys.readouterr().out
    assert "ar-b1" in printed and "ar-b4" in printed and "speedup" in printed
    results = json.loads(out.read_text())
    # where the CPU multiplies bfloat16 natively, AR at batch 1 in bfloat16 races too
    other = ["ar-b1-bfloat16"] if bf16_decodes_faster(torch.device("cpu")) else []
    assert [r["setting"] for r in results] == ["ar-b1", *other, "ar-b2", "ar-b4"]
    baseline = min(results[:1 + len(other)], key=lambda r: r["wall_seconds"])
    assert baseline["speedup"] == baseline["rate_speedup"] == 1.0
    results = [r for r in results if r["setting"] not in other]
    for r in results:  # same tokens: the per-token speedup is the wall-clock one
        assert r["precision"] == "float32"
        assert abs(r["rate_speedup"] - r["speedup"]) < 1e-9
    # batching changes the speed, never the tokens (the randomness is keyed per utterance;
    # in float32 a row's numbers do not depend on its batch, in bfloat16 rounding may)
    assert len({r["tokens_sha256"] for r in results}) == 1  # the same sequences, in order
    assert results[0]["tokens"] > 0
    for r in results:
        assert r["utterances"] == 4 and r["mean_accepted"] == 1.0
        assert r["real_time_factor"] > 0 and sum(r["accept_length_histogram"].values()) \
            == r["tokens"]


class _EchoJudge:
    """Transcribes every clip as the same words: the WER bookkeeping is then known."""

    name = "echo"

    def transcribe(self, wave, rate) -> str:  # noqa: ANN001
        return "one two"


class _ToneVocoder:
    speakers = ["s0", "s1"]

    def decode(self, tokens, speaker):  # noqa: ANN001, ANN201
        import numpy as np  # noqa: PLC0415

        return np.sin(np.arange(len(tokens) * 320) / 10.0).astype("float32"), 16000


def test_evaluate_records_failures_and_scores_the_rest(checkpoint: Path, tmp_path: Path) -> None:
    from vadusa.config import DecodingConfig  # noqa: PLC0415
    from vadusa.decoding.run import Request  # noqa: PLC0415
    from vadusa.eval.evaluate import evaluate_tts  # noqa: PLC0415

    requests = [Request(0, "one two.", "s0"), Request(1, "#$%", "s1"),
                Request(2, "one two three four.", "s1")]
    metrics = evaluate_tts(load_tts(checkpoint), requests, ["a", "b", "c"],
                           DecodingConfig(max_tokens_per_symbol=3.0), _ToneVocoder(),
                           _EchoJudge(), tmp_path / "eval")
    failed = {f["id"]: f["stage"] for f in metrics["failures"]}
    assert failed.get("b") == "text"  # no speakable symbols: recorded, not dropped
    scored = {r["id"]: r["wer"] for r in metrics["per_utterance"]}
    assert set(scored) | set(failed) == {"a", "b", "c"}
    assert scored == {"a": 0.0, "c": 0.5}  # 0 and 2 of 4 words wrong
    assert metrics["wer"] == pytest.approx(2 / 6) and metrics["utterances"] == 2
    assert (tmp_path / "eval" / "metrics.json").is_file() and metrics["dtype"] == "float32"
    assert len(list((tmp_path / "eval" / "wavs").glob("*.wav"))) == len(scored)


class Payload:
    """A Python object in a .pt file: what a weights-only load refuses to run."""


@pytest.mark.parametrize("content", ["pickle", "truncated"])
def test_a_damaged_checkpoint_is_named_without_torchs_unsafe_advice(
        checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture, content: str) -> None:
    """torch's error for a file that is not weights-only says to retry with
    weights_only=False, which runs the file's code: the user is told what the file is instead."""
    bad = tmp_path / "bad.pt"
    if content == "pickle":  # a pickle of a Python object, as an untrusted file might be
        torch.save({"kind": "tts", "state": {}, "hook": Payload()}, bad)
    else:  # a checkpoint cut short, as a full disk leaves it
        bad.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(bad)
    message = str(err.value)
    assert "damaged or not a vadusa checkpoint" in message and str(bad) in message
    assert "will likely succeed" not in message and "arbitrary code" not in message
    texts = tmp_path / "t.txt"
    texts.write_text("one two.\n")
    assert main(["decode", "--checkpoint", str(bad), "--texts", str(texts),
                 "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "damaged or not a vadusa checkpoint" in capsys.readouterr().err
