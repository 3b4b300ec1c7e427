from __future__ import annotations

import json
from pathlib import Path

from vadusa.config import load_config
from vadusa.tracking import FileTracker, NullTracker, open_tracker


def test_null_tracker(tmp_path: Path) -> None:
    cfg = load_config(overrides=["tracking.backend=none", f"results_dir={tmp_path}"])
    with open_tracker(cfg, stage="x", out_dir=tmp_path) as tracker:
        assert isinstance(tracker, NullTracker)
        tracker.log({"loss": 1.0}, step=1)
    assert list(tmp_path.iterdir()) == []


def test_file_tracker_writes_history_summary_tables(tmp_path: Path) -> None:
    cfg = load_config(overrides=["tracking.backend=files", f"results_dir={tmp_path}"])
    with open_tracker(cfg, stage="train", out_dir=tmp_path / "stage") as tracker:
        assert isinstance(tracker, FileTracker)
        tracker.log({"loss": 2.0}, step=1)
        tracker.log({"loss": 1.5}, step=2)
        tracker.log_summary({"final_loss": 1.5})
        tracker.log_table("per_voice", ["voice", "wer"], [["a", 0.1], ["b", 0.2]])
        tracker.log_artifact(tmp_path / "stage", "corpus", "dataset")
        (tmp_path / "fig.png").write_bytes(b"png")
        tracker.log_figure("corpus/hours", tmp_path / "fig.png")
    run = tmp_path / "stage" / "tracking" / "train"
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert history == [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}]
    assert json.loads((run / "summary.json").read_text()) == {"final_loss": 1.5}
    assert (run / "per_voice.csv").read_text().splitlines() == ["voice,wer", "a,0.1", "b,0.2"]
    assert "tracking:" in (run / "config.yaml").read_text()
    assert json.loads((run / "artifacts.json").read_text())[0]["type"] == "dataset"
    assert (run / "corpus" / "hours.png").read_bytes() == b"png"


def test_wandb_disabled_writes_nothing(tmp_path: Path) -> None:
    # conftest sets WANDB_MODE=disabled, which wins over tracking.mode
    cfg = load_config(overrides=["tracking.backend=wandb", f"results_dir={tmp_path}"])
    with open_tracker(cfg, stage="prepare", out_dir=tmp_path) as tracker:
        tracker.log({"loss": 1.0}, step=0)
        tracker.log_summary({"hours": 1.0})
        tracker.log_table("t", ["a"], [[1]])
    assert not list((tmp_path / "default" / "wandb").glob("*run-*"))


def test_a_wandb_table_takes_a_column_of_numbers_and_text() -> None:
    """The main table's heads column holds numbers and, in tree race rows, "all": W&B refuses
    a column of mixed types, so such a column goes as text (empty cells stay empty)."""
    import pytest  # noqa: PLC0415
    import wandb  # noqa: PLC0415

    from vadusa.tracking.wandb_backend import uniform_columns  # noqa: PLC0415

    rows = [["AR", None, 0.177], ["VADUSA", 4, 0.183], ["VADUSA, tree race", "all", None]]
    with pytest.raises(TypeError, match="incompatible types"):
        wandb.Table(columns=["method", "heads", "wer"], data=rows)
    fixed = uniform_columns(rows)
    assert [r[1] for r in fixed] == [None, "4", "all"]
    assert [r[2] for r in fixed] == [0.177, 0.183, None]  # numbers and gaps: left alone
    assert wandb.Table(columns=["method", "heads", "wer"], data=fixed).data == fixed
    assert uniform_columns([]) == []
