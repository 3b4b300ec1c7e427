"""The AR model's sequences and its training: loss falls, resume equals uninterrupted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TOY_MODEL
from vadusa.checkpoint import load_checkpoint
from vadusa.config import load_config
from vadusa.data.manifest import SPLITS, Utterance, manifest_path, write_manifest
from vadusa.data.text import SymbolTable, normalize
from vadusa.model.tts import TTSVocab, build_sequence
from vadusa.tokenizers.store import write_meta, write_split
from vadusa.training import tts as tts_training
from vadusa.training.tts import TTSTrainError, train_base


def test_sequence_layout_and_targets() -> None:
    vocab = TTSVocab(n_symbols=10, n_units=5, n_speakers=2)
    ex = build_sequence(vocab, 1, prompt_text=[3], text=[4, 5], prompt_speech=[0, 1],
                        speech=[2, 3])
    spk = vocab.speaker_input(1)
    s = vocab.speech_offset
    assert ex.input_ids.tolist() == [spk, 3, 4, 5, s + vocab.bos, s + 0, s + 1, s + 2, s + 3,
                                     s + vocab.eos]
    # position of the last prompt token predicts the first target token; eos is predicted
    assert ex.targets.tolist() == [-100] * 6 + [2, 3, vocab.eos, -100]
    assert vocab.input_size == 10 + 8 + 3 and vocab.output_size == 8
    # prompt text [1, 2) is said by the queries predicting prompt speech (bos and the first
    # prompt token); target text [2, 4) by those predicting the target tokens and eos
    assert ex.segments == ((1, 2, 4, 6), (2, 4, 6, 9))


def test_prompt_loss_makes_the_prompt_tokens_targets() -> None:
    vocab = TTSVocab(n_symbols=10, n_units=5, n_speakers=2)
    ex = build_sequence(vocab, 1, prompt_text=[3], text=[4, 5], prompt_speech=[0, 1],
                        speech=[2, 3], prompt_loss=True)
    # bos predicts the first prompt token, that one the second, then the target as before
    assert ex.targets.tolist() == [-100] * 4 + [0, 1, 2, 3, vocab.eos, -100]


def test_guide_penalty_is_low_on_the_diagonal_and_one_elsewhere() -> None:
    vocab = TTSVocab(n_symbols=10, n_units=5, n_speakers=2)
    ex = build_sequence(vocab, 1, prompt_text=[3, 0], text=[4, 5, 6, 7],
                        prompt_speech=[0, 1, 2, 3], speech=list(range(5)) * 2)
    L = len(ex.input_ids)
    W, rows = tts_training.guide_penalty([ex], L, sigma=0.2)
    (p0, p1, pq0, pq1), (t0, t1, q0, q1) = ex.segments
    assert rows[0].tolist() == [pq0 <= i < q1 for i in range(L)]
    # a query attends freely only to its own segment's text, most cheaply along the diagonal
    for q in range(q0, q1):
        own = W[0, q, t0:t1]
        place = (q - q0 + 0.5) / (q1 - q0) * (t1 - t0)  # where on the text this query is
        assert own[min(t1 - t0 - 1, int(place))] == own.min() < 0.5
        assert torch.all(W[0, q, :t0] == 1) and torch.all(W[0, q, t1:] == 1)
    assert torch.all(W[0, pq0, p0:p1] < 1) and torch.all(W[0, pq0, t0:t1] == 1)


def test_token_noise_corrupts_only_speech_inputs_at_the_rate_asked() -> None:
    vocab = TTSVocab(n_symbols=10, n_units=50, n_speakers=2)
    ex = build_sequence(vocab, 1, prompt_text=[3], text=[4, 5, 6], prompt_speech=[7] * 100,
                        speech=[9] * 2000)
    inputs = ex.input_ids[None]  # (1, L)
    noisy = tts_training.corrupt_speech(inputs, vocab, 0.2, torch.Generator().manual_seed(0))
    again = tts_training.corrupt_speech(inputs, vocab, 0.2, torch.Generator().manual_seed(0))
    assert torch.equal(noisy, again)  # keyed by the generator: a resumed run sees the same
    speech = (inputs >= vocab.speech_offset) & (inputs < vocab.speech_offset + vocab.n_units)
    changed = noisy != inputs
    assert not changed[~speech].any()  # speaker, text, bos and eos are never touched
    assert noisy[speech].min() >= vocab.speech_offset
    assert noisy[speech].max() < vocab.speech_offset + vocab.n_units
    # a replaced token equals the old one with probability 1/50: 0.2 * 49/50 of them change
    assert abs(changed[speech].float().mean().item() - 0.2 * 49 / 50) < 0.03
    assert torch.equal(tts_training.corrupt_speech(inputs, vocab, 0.0, torch.Generator()),
                       inputs)


def test_probed_attention_weights_are_the_ones_the_model_uses() -> None:
    from vadusa.model.transformer import Transformer, TransformerConfig, causal_mask

    torch.manual_seed(0)
    model = Transformer(TransformerConfig(vocab_size=20, output_size=8, dim=16, layers=2,
                                          heads=2, max_seq=32)).eval()
    tokens = torch.randint(0, 20, (2, 7))
    pos = torch.arange(7).expand(2, 7)
    mask = causal_mask(7, tokens.device).expand(2, 7, 7)
    probes: dict = {1: None}
    with torch.no_grad():
        plain = model(tokens, pos, mask)
        probed = model(tokens, pos, mask, probes=probes)
    assert torch.equal(plain, probed)
    probs = probes[1]
    assert probs.shape == (2, 7, 7)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 7))
    assert torch.all(probs.triu(1) == 0)  # causal
    # a head whose keys are zeroed attends uniformly: the weights respond to the model's own
    attn = model.blocks[1].attn
    with torch.no_grad():
        attn.qkv.weight[16:16 + 8] = 0  # head 0's key rows
        model(tokens, pos, mask, probes=probes)
    uniform = torch.tril(torch.ones(7, 7)) / torch.arange(1, 8)[:, None]
    torch.testing.assert_close(probes[1][0], uniform)


def tiny_data(root: Path) -> tuple[Path, Path]:
    """A corpus of two speakers whose 'speech' is a deterministic function of the text."""
    corpus, tokens = root / "corpus", root / "tokens"
    SymbolTable().save(corpus / "symbols.json")
    rng = np.random.default_rng(0)
    words = ["one", "two", "three", "four", "five", "six"]
    write_meta(tokens, {"family": "toy", "vocab_size": 16, "frame_rate": 10.0})
    for split, n in (("train", 24), ("dev", 4), ("test", 4)):
        records, items = [], []
        for i in range(n):
            text = " ".join(rng.choice(words, size=3)) + "."
            speaker = f"s{i % 2}"
            speech = np.array([(ord(c) + i % 2) % 16 for c in text[:-1] for _ in (0, 1)])
            uid = f"{split}{i}"
            seconds = len(speech) / 10.0
            records.append(Utterance(uid, speaker, text, normalize(text), "/none.wav", 100,
                                     int(seconds * 100), seconds, split))
            items.append((uid, speaker, speech))
        write_manifest(manifest_path(corpus, split), records)
        write_split(tokens, split, 16, items)
    return corpus, tokens


def tiny_cfg(tmp: Path, *extra: str):
    return load_config(overrides=[
        f"results_dir={tmp}", "tracking.backend=none", *TOY_MODEL, "model.dim=32",
        "model.layers=2",
        "model.heads=2", "model.max_seq=256", "model.prompt_max_seconds=5.0",
        "model.dropout=0.1", "train.steps=8", "train.batch_tokens=600",
        "train.warmup_steps=2", "train.checkpoint_every=4", "train.eval_every=4",
        "train.lr=3e-3", *extra])


def test_train_resume_equals_uninterrupted(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    corpus, tokens = tiny_data(tmp_path)
    cfg = tiny_cfg(tmp_path)
    straight = train_base(cfg, "toy", corpus, tokens, tmp_path / "a")
    losses = load_checkpoint(tmp_path / "a" / "last.pt")["state"]["position"]["losses"]
    assert len(losses) == 8 and all(np.isfinite(losses))

    real_save = tts_training.save_training_state

    def save_then_die(*args, **kwargs):  # noqa: ANN002, ANN003
        real_save(*args, **kwargs)
        raise KeyboardInterrupt("killed after the first checkpoint")

    monkeypatch.setattr(tts_training, "save_training_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_base(cfg, "toy", corpus, tokens, tmp_path / "b")
    monkeypatch.setattr(tts_training, "save_training_state", real_save)
    resumed = train_base(cfg, "toy", corpus, tokens, tmp_path / "b")
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["state"]["position"]["losses"] == losses
    for key, value in a["state"].items():
        assert torch.equal(value, b["state"][key]), key
    meta = a["meta"]
    assert meta["family"] == "toy" and meta["speakers"] == ["s0", "s1"]
    assert meta["vocab"]["n_units"] == 16 and "dev/loss" in meta["dev"]


def test_a_changed_training_setting_starts_over(tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    corpus, tokens = tiny_data(tmp_path)
    train_base(tiny_cfg(tmp_path), "toy", corpus, tokens, tmp_path / "m")
    first = load_checkpoint(tmp_path / "m" / "last.pt")["state"]["position"]["losses"]
    # a finished run with other settings must not pass for this one
    capsys.readouterr()
    train_base(tiny_cfg(tmp_path, "train.guide_weight=0.5", "train.eval_every=2"), "toy",
               corpus, tokens, tmp_path / "m")
    said = capsys.readouterr().out
    assert "belongs to another run (1 differ: train.guide_weight: 1.0 -> 0.5)" in said
    stale = load_checkpoint(tmp_path / "m" / "last.stale.pt")["state"]["position"]["losses"]
    again = load_checkpoint(tmp_path / "m" / "last.pt")["state"]["position"]["losses"]
    assert stale == first and len(again) == 8 and again != first
    # only evaluation/checkpoint cadence changed: the finished run is reused as it is
    train_base(tiny_cfg(tmp_path, "train.guide_weight=0.5", "train.eval_every=4"), "toy",
               corpus, tokens, tmp_path / "m")
    assert load_checkpoint(tmp_path / "m" / "last.pt")["state"]["position"]["losses"] == again


def test_loss_falls(tmp_path: Path) -> None:
    corpus, tokens = tiny_data(tmp_path)
    cfg = tiny_cfg(tmp_path, "train.steps=200", "train.checkpoint_every=200",
                   "train.eval_every=200", "model.dropout=0.0")
    base = train_base(cfg, "toy", corpus, tokens, tmp_path / "m")
    losses = load_checkpoint(tmp_path / "m" / "last.pt")["state"]["position"]["losses"]
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:5])
    # the toy speech spells its text: a model that has learned anything reads the text, so
    # another utterance's text makes its speech less likely
    dev = load_checkpoint(base)["meta"]["dev"]
    assert dev["dev/text_gain"] > 0.1, dev
    assert (tmp_path / "m" / "alignment.png").stat().st_size > 1000


def test_wrong_family_and_too_long(tmp_path: Path) -> None:
    corpus, tokens = tiny_data(tmp_path)
    with pytest.raises(TTSTrainError, match="'toy' tokens, not 'whisper'"):
        train_base(tiny_cfg(tmp_path), "whisper", corpus, tokens, tmp_path / "x")
    with pytest.raises(TTSTrainError, match="model.max_seq"):
        train_base(tiny_cfg(tmp_path, "model.max_seq=20"), "toy", corpus, tokens,
                   tmp_path / "y")


def test_splits_are_complete(tmp_path: Path) -> None:
    corpus, _ = tiny_data(tmp_path)
    assert all(manifest_path(corpus, s).is_file() for s in SPLITS)


@pytest.mark.slow
def test_ddp_two_cpu_processes_train(tmp_path: Path) -> None:
    """torchrun + DDP with the gloo backend: 2 processes train one model together."""
    import os
    import subprocess
    import sys

    corpus, tokens = tiny_data(tmp_path)
    write_meta(tokens, {"family": "whisper", "vocab_size": 16, "frame_rate": 10.0})  # CLI name
    sets = [f"results_dir={tmp_path}", "tracking.backend=files", *TOY_MODEL, "model.dim=32",
            "model.layers=2", "model.heads=2", "model.max_seq=256",
            "model.prompt_max_seconds=5.0", "train.steps=12", "train.batch_tokens=600",
            "train.warmup_steps=2", "train.checkpoint_every=6", "train.eval_every=6",
            "train.lr=3e-3", "device=cpu"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", "29517", "-m", "vadusa.cli", "train-base", "--family", "whisper",
           "--corpus", str(corpus), "--tokens", str(tokens), "--out", str(tmp_path / "ddp"),
           *[a for s in sets for a in ("--set", s)]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    blob = load_checkpoint(tmp_path / "ddp" / "base.pt", kind="tts")
    losses = load_checkpoint(tmp_path / "ddp" / "last.pt")["state"]["position"]["losses"]
    assert len(losses) == 12 and all(np.isfinite(losses))
    assert np.isfinite(blob["meta"]["dev"]["dev/loss"])
    history = (tmp_path / "ddp" / "tracking" / "train-base" / "history.jsonl").read_text()
    assert history.count("train/loss") == 1  # only rank 0 logs (one point per 10 steps)
