"""Tracking to plain files: history as JSON lines, summary as JSON, tables as CSV, and the
artifacts the stage produced (``role: output``) and read (``role: input``) in artifacts.json."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from vadusa.atomic import write_text_atomic
from vadusa.tracking.base import Tracker


class FileTracker(Tracker):
    def __init__(self, run_dir: str | Path, config: Mapping[str, Any]) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.run_dir / "config.yaml", yaml.safe_dump(dict(config)))
        self._history = open(self.run_dir / "history.jsonl", "a")  # noqa: SIM115
        self._summary: dict[str, Any] = {}
        self._artifacts: list[dict[str, str]] = []

    def log(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._history.write(json.dumps({"step": step, **metrics}) + "\n")
        self._history.flush()

    def log_summary(self, metrics: Mapping[str, Any]) -> None:
        self._summary.update(metrics)
        write_text_atomic(self.run_dir / "summary.json", json.dumps(self._summary, indent=1))

    def log_table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        target = self.run_dir / f"{name}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            writer.writerows(rows)

    def log_figure(self, name: str, path: str | Path) -> None:
        target = self.run_dir / f"{name}{Path(path).suffix}"  # "a/b" names nest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)

    def log_artifact(self, path: str | Path, name: str, kind: str) -> None:
        self._record(path, name, kind, "output")

    def use_artifact(self, path: str | Path, name: str, kind: str) -> None:
        self._record(path, name, kind, "input")

    def _record(self, path: str | Path, name: str, kind: str, role: str) -> None:
        self._artifacts.append({"path": str(Path(path).resolve()), "name": name, "type": kind,
                                "role": role})
        write_text_atomic(self.run_dir / "artifacts.json", json.dumps(self._artifacts, indent=1))

    def finish(self) -> None:
        self._history.close()
