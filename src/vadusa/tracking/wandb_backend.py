"""Weights & Biases backend: offline by default, never blocking a run."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vadusa.config import Config
from vadusa.tracking.base import Tracker


class WandbTracker(Tracker):
    def __init__(self, cfg: Config, stage: str, name: str | None = None,
                 tags: Sequence[str] = ()) -> None:
        import wandb  # noqa: PLC0415  (only this backend needs it)

        self._wandb = wandb
        mode = os.environ.get("WANDB_MODE", cfg.tracking.mode)
        run_root = cfg.experiment_dir / "wandb"
        run_root.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=cfg.tracking.project,
            entity=cfg.tracking.entity or None,
            group=cfg.experiment,
            job_type=stage,
            name=name or f"{cfg.experiment}-{stage}",
            tags=list(tags),
            config=cfg.to_dict(),
            dir=str(run_root),
            mode=mode,
            settings=wandb.Settings(silent=True, init_timeout=60),
            reinit="finish_previous",
        )

    def log(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.run.log(dict(metrics), step=step)

    def log_summary(self, metrics: Mapping[str, Any]) -> None:
        for key, value in metrics.items():
            self.run.summary[key] = value

    def log_table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.run.log({name: self._wandb.Table(columns=list(columns),
                                              data=[list(r) for r in rows])})

    def log_figure(self, name: str, path: str | Path) -> None:
        self.run.log({name: self._wandb.Image(str(path))})

    def log_artifact(self, path: str | Path, name: str, kind: str) -> None:
        artifact = self._wandb.Artifact(name=name, type=kind)
        path = Path(path)
        if path.is_dir():
            artifact.add_dir(str(path))
        else:
            artifact.add_file(str(path))
        self.run.log_artifact(artifact)

    def finish(self) -> None:
        self.run.finish()
