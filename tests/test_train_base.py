"""The AR model's sequences and its training: loss falls, resume equals uninterrupted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

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
        f"results_dir={tmp}", "tracking.backend=none", "model.dim=32", "model.layers=2",
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

    real_save = tts_training._save_state

    def save_then_die(*args, **kwargs):  # noqa: ANN002, ANN003
        real_save(*args, **kwargs)
        raise KeyboardInterrupt("killed after the first checkpoint")

    monkeypatch.setattr(tts_training, "_save_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_base(cfg, "toy", corpus, tokens, tmp_path / "b")
    monkeypatch.setattr(tts_training, "_save_state", real_save)
    resumed = train_base(cfg, "toy", corpus, tokens, tmp_path / "b")
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["state"]["position"]["losses"] == losses
    for key, value in a["state"].items():
        assert torch.equal(value, b["state"][key]), key
    meta = a["meta"]
    assert meta["family"] == "toy" and meta["speakers"] == ["s0", "s1"]
    assert meta["vocab"]["n_units"] == 16 and "dev/loss" in meta["dev"]


def test_loss_falls(tmp_path: Path) -> None:
    corpus, tokens = tiny_data(tmp_path)
    cfg = tiny_cfg(tmp_path, "train.steps=60", "train.checkpoint_every=60",
                   "train.eval_every=60", "model.dropout=0.0")
    train_base(cfg, "toy", corpus, tokens, tmp_path / "m")
    losses = load_checkpoint(tmp_path / "m" / "last.pt")["state"]["position"]["losses"]
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:5])


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
    sets = [f"results_dir={tmp_path}", "tracking.backend=files", "model.dim=32",
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
