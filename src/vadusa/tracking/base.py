"""The tracker interface, and the tracker that records nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


class Tracker:
    """What a stage may log. Subclasses override what they store; the defaults do nothing."""

    def log(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """A point of a curve (loss, accuracy...), at a training step."""

    def log_summary(self, metrics: Mapping[str, Any]) -> None:
        """Final numbers of the stage."""

    def log_table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """A small table (per-voice WER, the main results table...)."""

    def log_figure(self, name: str, path: str | Path) -> None:
        """An image file the stage wrote (PNG)."""

    def log_artifact(self, path: str | Path, name: str, kind: str) -> None:
        """A file or directory the stage produced (checkpoint, trees, table), for lineage.
        ``name`` comes from ``vadusa.tracking.artifact_name``, so consumers find it."""

    def use_artifact(self, path: str | Path, name: str, kind: str) -> None:
        """A file or directory the stage reads that an earlier stage logged with
        ``log_artifact`` under the same ``name`` and ``kind``: the lineage edge."""

    def finish(self) -> None:
        """Flush and close."""


class NullTracker(Tracker):
    pass
