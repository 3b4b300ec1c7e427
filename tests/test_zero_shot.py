"""Zero-shot synthesis: a prompted model without a speaker embedding speaks voices it never
heard from an acoustic prompt; evaluation prompts each utterance with another of its speaker,
never itself, and reports seen and unseen speakers apart; failures count as deletions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from test_decode_cli import _EchoJudge, _ToneVocoder
from test_train_base import tiny_cfg
from vadusa.config import DecodingConfig
from vadusa.data.manifest import Utterance, manifest_path, read_manifest, write_manifest
from vadusa.data.prompts import choose_prompts
from vadusa.data.text import SymbolTable, normalize
from vadusa.eval.evaluate import evaluate_tts, split_requests
from vadusa.model.durations import MAX_RATE, DurationConfig, DurationModel
from vadusa.model.loading import (
    SynthesisInputError,
    load_tts,
    synthesis_prefix,
    text_pieces,
)
from vadusa.tokenizers.store import write_meta, write_split
from vadusa.training.tts import train_base

WORDS = ["one", "two", "three", "four", "five", "six"]
# train: s0, s1; dev: s0 and s2, a voice training never hears; test: s1 and s3, s4 unseen,
# s4 with a single utterance (nothing to prompt it with)
SPEAKERS = {"train": ["s0", "s1"] * 12, "dev": ["s0", "s2", "s2", "s2"],
            "test": ["s1", "s1", "s3", "s3", "s3", "s4"]}


def _record(uid: str, speaker: str, text: str, seconds: float, split: str) -> Utterance:
    return Utterance(uid, speaker, text, normalize(text), "/none.wav", 100,
                     int(round(seconds * 100)), round(seconds, 2), split)


def zero_shot_data(root: Path) -> tuple[Path, Path]:
    """Like test_train_base.tiny_data, with dev and test voices unseen in training."""
    corpus, tokens = root / "corpus", root / "tokens"
    SymbolTable().save(corpus / "symbols.json")
    rng = np.random.default_rng(1)
    write_meta(tokens, {"family": "toy", "vocab_size": 16, "frame_rate": 10.0})
    for split, speakers in SPEAKERS.items():
        records, items = [], []
        for i, speaker in enumerate(speakers):
            text = " ".join(rng.choice(WORDS, size=int(rng.integers(2, 4)))) + "."
            shift = int(speaker[1:])
            speech = np.array([(ord(c) + shift) % 16 for c in text[:-1] for _ in (0, 1)])
            records.append(_record(f"{split}{i}", speaker, text, len(speech) / 10.0, split))
            items.append((f"{split}{i}", speaker, speech))
        write_manifest(manifest_path(corpus, split), records)
        write_split(tokens, split, 16, items)
    return corpus, tokens


@pytest.fixture(scope="module")
def zero_shot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("zero-shot")
    corpus, tokens = zero_shot_data(tmp)
    # the dev split has a voice training never hears: a model without a speaker embedding
    # is validated on it (with a speaker embedding it could not be)
    model = train_base(tiny_cfg(tmp, "train.steps=6", "model.speaker_embedding=false"), "toy",
                       corpus, tokens, tmp / "m")
    return {"corpus": corpus, "tokens": tokens, "model": model}


def test_prompts_are_another_utterance_of_the_speaker_and_deterministic() -> None:
    records = [_record(f"a{i}", "a", "one two.", s, "test")
               for i, s in enumerate((1.0, 2.6, 3.1, 3.4, 7.0))]
    records += [_record("b0", "b", "one.", 5.0, "test"), _record("b1", "b", "two.", 6.0, "test"),
                _record("c0", "c", "one.", 2.0, "test")]
    pairs = choose_prompts(records, max_seconds=4.0)
    assert pairs == choose_prompts(list(reversed(records)), max_seconds=4.0)  # deterministic
    for target, pair in pairs.items():
        assert pair.target == target and pair.prompt != target
    for i in range(5):  # about 3 s, at most max_seconds: never a0 (1 s) or a4 (7 s)
        assert pairs[f"a{i}"].prompt in {"a1", "a2", "a3"} - {f"a{i}"}
    assert len({pairs[f"a{i}"].prompt for i in range(5)}) > 1  # not one prompt for all
    assert pairs["b0"].prompt == "b1" and pairs["b1"].prompt == "b0"  # only longer ones
    assert pairs["c0"].prompt == ""  # a voice with one utterance has nothing to prompt with


def test_split_requests_carry_zero_shot_prompts(zero_shot: dict[str, Path]) -> None:
    requests, ids = split_requests(zero_shot["corpus"], "test", None, zero_shot["tokens"],
                                   prompt_max_seconds=5.0)
    records = {r.id: r for r in read_manifest(manifest_path(zero_shot["corpus"], "test"))}
    for request, utt_id in zip(requests, ids, strict=True):
        if records[utt_id].speaker == "s4":  # alone in the split
            assert request.prompt is None and request.prompt_id == ""
            continue
        assert request.prompt_id != utt_id  # never the utterance judged
        assert records[request.prompt_id].speaker == records[utt_id].speaker
        assert request.prompt[0] == records[request.prompt_id].text and request.prompt[1]
    plain, _ = split_requests(zero_shot["corpus"], "test")
    assert all(r.prompt is None for r in plain)  # no token dir: a closed-set model's requests


def test_zero_shot_model_speaks_an_unseen_voice_from_its_prompt(
        zero_shot: dict[str, Path]) -> None:
    bundle = load_tts(zero_shot["model"])
    assert bundle.zero_shot and "s3" not in bundle.speakers
    prefix = synthesis_prefix(bundle, "one two.", "s3", ("three four.", [3, 4, 5]), 3.0)
    speech = bundle.vocab.speech_offset
    assert prefix.ids[-3:].tolist() == [speech + t for t in (3, 4, 5)]
    assert all(i < bundle.vocab.speaker_offset for i in prefix.ids.tolist())  # no speaker id
    with pytest.raises(SynthesisInputError, match="zero-shot"):
        synthesis_prefix(bundle, "one two.", "s3", None, 3.0)  # no prompt, nothing stored
    with pytest.raises(SynthesisInputError, match="no speech tokens"):
        synthesis_prefix(bundle, "one two.", "s3", ("three.", []), 3.0)
    # a training speaker is spoken from its stored prompt, as before
    assert synthesis_prefix(bundle, "one two.", "s0", None, 3.0).ids.numel() > 0


def test_evaluation_reports_seen_and_unseen_and_counts_failures(
        zero_shot: dict[str, Path], tmp_path: Path) -> None:
    bundle = load_tts(zero_shot["model"])
    requests, ids = split_requests(zero_shot["corpus"], "test", None, zero_shot["tokens"],
                                   prompt_max_seconds=5.0)
    subsets = {i: ("test-other" if i == "test5" else "test-clean") for i in ids}
    metrics = evaluate_tts(bundle, requests, ids, DecodingConfig(max_tokens_per_symbol=3.0),
                           _ToneVocoder(), _EchoJudge(), tmp_path / "eval", subsets=subsets)
    failed = {f["id"]: f for f in metrics["failures"]}
    assert "test5" in failed and "zero-shot" in failed["test5"]["error"]  # s4: no prompt
    # a failure is all its words deleted: the WER counts its words, with nothing right
    scored = metrics["per_utterance"] + metrics["failed_utterances"]
    assert metrics["wer"] == pytest.approx(sum(r["word_errors"] for r in scored)
                                           / sum(r["words"] for r in scored))
    lost = metrics["failed_utterances"][0]
    assert lost["word_errors"] == lost["words"] > 0
    groups = metrics["groups"]
    assert groups["seen"]["speakers"] == 1 and groups["unseen"]["speakers"] == 2
    assert groups["unseen"]["failed"] == 1 and groups["seen"]["failed"] == 0
    assert groups["subset:test-other"]["condition"] == "unseen"
    assert groups["subset:test-clean"]["condition"] == "mixed"
    pairs = (tmp_path / "eval" / "prompts.tsv").read_text().splitlines()
    assert pairs[0].split("\t") == ["target", "prompt", "speaker"] and len(pairs) == 7
    assert all(line.split("\t")[0] != line.split("\t")[1] for line in pairs[1:])


def test_long_text_is_spoken_in_pieces_that_fit(zero_shot: dict[str, Path]) -> None:
    bundle = load_tts(zero_shot["model"])
    prompt = ("three four.", [3, 4, 5])
    text = " ".join(["one two three four five six."] * 6)
    pieces = text_pieces(bundle, text, "s3", prompt, 3.0)
    assert len(pieces) > 1
    assert " ".join(p for p, _ in pieces).split() == text.split()  # nothing lost or doubled
    for _, prefix in pieces:
        assert len(prefix.ids) + prefix.budget <= bundle.max_seq
    short = text_pieces(bundle, "one two.", "s3", prompt, 3.0)
    assert [p for p, _ in short] == ["one two."]


def test_prompt_rate_reads_the_speaking_rate_of_a_new_voice() -> None:
    torch.manual_seed(0)
    model = DurationModel(DurationConfig(n_symbols=8, n_speakers=2)).eval()
    spoken = torch.ones(8, dtype=torch.bool)
    text = [1, 2, 3, 4]
    lead, durations = model.predict(text, 2, spoken)
    planned = lead + sum(durations)
    assert model.prompt_rate(text, planned, 2, spoken) == pytest.approx(1.0)
    assert model.prompt_rate(text, 2 * planned, 2, spoken) == pytest.approx(0.5, rel=0.05)
    assert model.prompt_rate(text, 1, 2, spoken) == MAX_RATE  # clamped: a noisy measure
    faster = model.predict(text, 2, spoken, rate=2.0)
    assert faster[0] + sum(faster[1]) < planned
