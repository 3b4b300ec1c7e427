"""Weights & Biases backend: offline by default, never blocking a run.

Lineage offline: wandb 0.31's ``run.use_artifact`` refuses offline runs ("Cannot use artifact
when in offline mode"). What it does online for an artifact object not logged yet is to log it
with ``use_after_commit`` and wait; the same record can be written offline, and ``wandb sync``
replays it: the server matches the content digest to the version the producing stage logged
(same name, same files) and records this run as its user, not a new version. So a consumer
builds the artifact from the very file it reads, under the producer's name, and logs it that
way. That needs the producer's run synced first; ``wandb sync`` over the run directories does
them oldest first. (A file changed in between becomes a new version the consumer owns.)
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from vadusa.config import Config
from vadusa.tracking.base import Tracker

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., None])


def _guarded(method: F) -> F:
    """A W&B call that fails (service gone, disk full, a type clash on the server) is a
    warning, once per method, never the stage's failure."""

    @functools.wraps(method)
    def run(self: WandbTracker, *args: Any, **kwargs: Any) -> None:
        try:
            method(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            if method.__name__ not in self._warned:
                self._warned.add(method.__name__)
                log.warning("W&B %s failed (the stage goes on; later failures of it are not "
                            "reported): %s: %s", method.__name__, type(exc).__name__, exc)

    return run  # type: ignore[return-value]


class WandbTracker(Tracker):
    def __init__(self, cfg: Config, stage: str, name: str, tags: Sequence[str] = (),
                 config: Mapping[str, Any] | None = None) -> None:
        import wandb  # noqa: PLC0415  (only this backend needs it)

        self._wandb = wandb
        self._warned: set[str] = set()
        self._used: set[str] = set()
        self.mode = os.environ.get("WANDB_MODE", cfg.tracking.mode)
        run_root = cfg.experiment_dir / "wandb"
        run_root.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=cfg.tracking.project,
            entity=cfg.tracking.entity or None,
            group=cfg.experiment,
            job_type=stage,
            name=name,
            tags=list(tags),
            config=dict(config) if config is not None else cfg.to_dict(),
            dir=str(run_root),
            mode=self.mode,
            settings=wandb.Settings(silent=True, init_timeout=60),
            reinit="finish_previous",
        )

    @_guarded
    def log(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.run.log(dict(metrics), step=step)

    @_guarded
    def log_summary(self, metrics: Mapping[str, Any]) -> None:
        for key, value in metrics.items():
            self.run.summary[key] = value

    @_guarded
    def log_table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.run.log({name: self._wandb.Table(columns=list(columns),
                                              data=[list(r) for r in rows])})

    @_guarded
    def log_figure(self, name: str, path: str | Path) -> None:
        self.run.log({name: self._wandb.Image(str(path))})

    def _artifact(self, path: str | Path, name: str, kind: str,
                  policy: Literal["mutable", "immutable"]) -> Any:
        artifact = self._wandb.Artifact(name=name, type=kind)
        path = Path(path)
        if path.is_dir():
            artifact.add_dir(str(path), policy=policy)
        else:  # under its file name, as producer and consumer both add it
            artifact.add_file(str(path), policy=policy)
        return artifact

    @_guarded
    def log_artifact(self, path: str | Path, name: str, kind: str) -> None:
        if self.run.disabled:
            return
        # "mutable": wandb copies the files to its staging directory, so what `wandb sync`
        # uploads later is what the stage wrote, even if a rerun rewrites the file meanwhile
        self.run.log_artifact(self._artifact(path, name, kind, "mutable"))

    @_guarded
    def use_artifact(self, path: str | Path, name: str, kind: str) -> None:
        if self.run.disabled or name in self._used:
            return
        self._used.add(name)
        # "immutable": no staging copy of a checkpoint that is only read; its digest is what
        # matches the producer's version
        artifact = self._artifact(path, name, kind, "immutable")
        if self.run.offline:
            self.run._log_artifact(artifact, is_user_created=True, use_after_commit=True)
        else:
            self.run.use_artifact(artifact)

    def finish(self) -> None:
        try:
            self.run.finish()
        except Exception as exc:  # noqa: BLE001
            log.warning("W&B run.finish failed: %s: %s", type(exc).__name__, exc)
