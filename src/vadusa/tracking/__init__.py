"""Experiment tracking behind one small interface: ``none``, local ``files``, or ``wandb``.

Stages call ``open_tracker(cfg, stage=..., out_dir=...)`` and log through the returned object;
only the W&B backend imports wandb. W&B runs are offline by default (``tracking.mode``; the
``WANDB_MODE`` environment variable wins, so tests set it to ``disabled``), grouped by
experiment, with ``job_type`` = stage, and written under ``results/<experiment>/wandb/`` for a
later ``wandb sync``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from vadusa.config import Config
from vadusa.tracking.base import NullTracker, Tracker
from vadusa.tracking.files import FileTracker

__all__ = ["Tracker", "NullTracker", "FileTracker", "open_tracker"]


@contextlib.contextmanager
def open_tracker(
    cfg: Config, stage: str, out_dir: str | Path, name: str | None = None,
    tags: tuple[str, ...] = (),
) -> Iterator[Tracker]:
    backend = cfg.tracking.backend
    if backend == "none":
        tracker: Tracker = NullTracker()
    elif backend == "files":
        tracker = FileTracker(Path(out_dir) / "tracking" / stage, cfg.to_dict())
    elif backend == "wandb":
        from vadusa.tracking.wandb_backend import WandbTracker  # noqa: PLC0415

        tracker = WandbTracker(cfg, stage=stage, name=name, tags=tags)
    else:
        raise ValueError(f"unknown tracking backend {backend!r}")
    try:
        yield tracker
    finally:
        tracker.finish()
