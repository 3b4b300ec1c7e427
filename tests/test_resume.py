"""The one resume policy of every trainer (training/resume.py): what makes a last.pt this run's,
what happens to another run's, and a safe, exact round trip of the training state."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from vadusa.checkpoint import CheckpointError, load_checkpoint
from vadusa.config import HeadsConfig, load_config
from vadusa.training.resume import (
    EVALUATION_ONLY,
    LAST,
    STALE,
    RunIdentity,
    flatten,
    last_checkpoint,
    resume_training_state,
    save_training_state,
)

KIND = "toy-train"


def run_of(*overrides: str, meta: dict | None = None) -> RunIdentity:
    cfg = load_config(overrides=["tracking.backend=none", *overrides])
    return RunIdentity(cfg.to_dict(), ("seed", "train"), meta or {"family": "toy"}, ("family",))


def parts() -> dict:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    return {"model": model, "optimizer": torch.optim.AdamW(model.parameters(), lr=1e-2)}


def test_flatten_names_leaf_keys_without_evaluation_only_ones() -> None:
    config = {"seed": 1, "train": {"lr": 0.1, "eval_every": 5, "sizes": [1, 2]},
              "heads": {"top_ranks": 3, "count": 2}}
    assert flatten(config, ("seed", "train", "heads.count", "heads.top_ranks")) == {
        "seed": 1, "train.lr": 0.1, "train.sizes": [1, 2], "heads.count": 2}
    assert {"checkpoint_every", "eval_every", "eval_utterances"} <= EVALUATION_ONLY


def test_round_trip_restores_weights_optimizer_rng_and_position(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run, saved_parts = run_of(), parts()
    loss = saved_parts["model"](torch.ones(1, 3)).sum()
    loss.backward()
    saved_parts["optimizer"].step()
    assert last_checkpoint(tmp_path) is None
    assert resume_training_state(tmp_path, KIND, run, saved_parts, "toy") is None
    random.seed(7)
    path = save_training_state(tmp_path, KIND, run, saved_parts, position={"step": 2})
    assert path == tmp_path / LAST == last_checkpoint(tmp_path)
    draws = (random.random(), float(np.random.rand()), float(torch.rand(())))
    assert list(tmp_path.iterdir()) == [path]  # written through a temporary file, renamed

    fresh = parts()
    with torch.no_grad():
        fresh["model"].weight.zero_()
    state = resume_training_state(tmp_path, KIND, run, fresh, "toy", total_steps=5)
    assert state is not None and state["position"] == {"step": 2}
    assert f"[toy] resuming from {path} at step 2 of 5" in capsys.readouterr().out
    assert torch.equal(fresh["model"].weight, saved_parts["model"].weight)
    assert fresh["optimizer"].state_dict()["state"][0]["step"] == 1
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == draws


def test_only_evaluation_settings_may_change(tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    save_training_state(tmp_path, KIND, run_of(), parts(), position={"step": 1})
    again = run_of("train.eval_every=7", "train.checkpoint_every=3", "train.eval_utterances=2",
                   "decoding.tau=3")  # cadence, and a section the run does not train with
    assert resume_training_state(tmp_path, KIND, again, parts(), "toy") is not None
    capsys.readouterr()

    other = run_of("train.lr=0.5", "seed=9", meta={"family": "other"})
    assert resume_training_state(tmp_path, KIND, other, parts(), "toy") is None
    said = capsys.readouterr().out
    assert "belongs to another run (3 differ" in said and "starting over" in said
    assert "train.lr: 0.001 -> 0.5" in said and "seed: 1234 -> 9" in said
    assert "family ('toy' -> 'other')" in said
    assert not (tmp_path / LAST).exists()
    assert load_checkpoint(tmp_path / STALE, KIND)["state"]["position"] == {"step": 1}


def test_the_steps_are_a_setting(tmp_path: Path) -> None:
    """The learning-rate schedule follows ``steps``: more steps are another run."""
    save_training_state(tmp_path, KIND, run_of("train.steps=10"), parts(), position={"step": 10})
    assert resume_training_state(tmp_path, KIND, run_of("train.steps=20"), parts(),
                                 "toy") is None


def test_inputs_may_hold_tensors(tmp_path: Path) -> None:
    meta = {"family": "toy", "durations": {"aligner": "abc", "state": {"w": torch.ones(2)}}}
    run = RunIdentity({"seed": 1}, ("seed",), meta, ("family", "durations"))
    save_training_state(tmp_path, KIND, run, parts(), step=0)
    assert resume_training_state(tmp_path, KIND, run, parts(), "toy") is not None
    changed = {"family": "toy", "durations": {"aligner": "abc", "state": {"w": torch.zeros(2)}}}
    assert RunIdentity({"seed": 1}, ("seed",), changed, ("family", "durations")).differences(
        load_checkpoint(tmp_path / LAST)) == ["durations"]


def test_an_unreadable_state_is_refused_not_guessed(tmp_path: Path) -> None:
    (tmp_path / LAST).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"\[toy\] cannot resume.*Delete"):
        resume_training_state(tmp_path, KIND, run_of(), parts(), "toy")
    assert (tmp_path / LAST).exists()  # left for the user to look at
    save_training_state(tmp_path, "other-train", run_of(), parts(), step=0)
    with pytest.raises(CheckpointError, match="expected 'toy-train'"):
        resume_training_state(tmp_path, KIND, run_of(), parts(), "toy")


def test_heads_resume_on_the_keys_the_workflow_retrains_for() -> None:
    """Heads training: the seed and HeadsConfig.training_keys() must match, except for the
    evaluation-only keys among them; what only the later measurements read may change."""
    keys = ("seed", *HeadsConfig.training_keys())

    def heads_run(*overrides: str) -> RunIdentity:
        cfg = load_config(overrides=["tracking.backend=none", *overrides])
        return RunIdentity(cfg.to_dict(), keys, {})

    blob = {"config": heads_run().config, "meta": {}}
    assert heads_run("measure.open_taus=[1]", "measure.bench_utterances=3",
                     "heads.checkpoint_every=7", "heads.top_ranks=3").differences(blob) == []
    assert heads_run("heads.lr=0.5").differences(blob) == ["heads.lr: 0.002 -> 0.5"]
    assert heads_run("heads.count=2", "seed=1").differences(blob) == [
        "seed: 1234 -> 1", "heads.count: 4 -> 2"]
