"""Experiment tracking behind one small interface: ``none``, local ``files``, or ``wandb``.

Stages call ``open_tracker(cfg, stage=..., out_dir=..., family=..., setting=...)`` and log
through the returned object; only the W&B backend imports wandb. Every run of an experiment
shares one W&B project (``tracking.project``) and group (the experiment); its ``job_type`` is
the stage, its config carries ``stage``, ``family`` and ``setting``, the family is also a
tag, and its name is ``<stage>-<family>-<setting>`` (the parts a stage has). W&B runs are
offline by default (``tracking.mode``; the ``WANDB_MODE`` environment variable wins, so tests
set it to ``disabled``) and written under ``results/<experiment>/wandb/`` for a later
``wandb sync``.

Checkpoints, trees and tables are artifacts named by ``artifact_name``: the experiment and the
file's path under ``results/<experiment>/``, so the stage that reads a file declares it
(``use_artifact``) under the name its producer logged it (``log_artifact``).

Tracking never stops a stage: a W&B run that cannot start, or a call that fails, is a
warning, and the stage goes on untracked.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from vadusa.config import Config
from vadusa.tracking.base import NullTracker, Tracker
from vadusa.tracking.files import FileTracker

__all__ = ["Tracker", "NullTracker", "FileTracker", "open_tracker", "run_name",
           "artifact_name"]

log = logging.getLogger(__name__)

# W&B artifact names: letters, digits, '-', '_' and '.', at most 128 characters
_NAME_MAX = 128


def run_name(stage: str, family: str | None = None, setting: str | None = None) -> str:
    """``<stage>-<family>-<setting>``, without the parts that are not given."""
    return "-".join(part for part in (stage, family, setting) if part)


def artifact_name(cfg: Config, path: str | Path) -> str:
    """The artifact name of a file or directory of the pipeline: ``<experiment>-`` and its
    path under ``results/<experiment>/`` with ``/`` as ``-`` (e.g.
    ``default-models-whisper-base-base.pt``), so it follows from experiment, family and stage
    and the producer and every consumer agree on it. A path outside the experiment gets
    ``ext-``, a digest of its absolute path, and its file name."""
    path = Path(path).resolve()
    try:
        rel = path.relative_to(cfg.experiment_dir.resolve()).as_posix()
    except ValueError:
        rel = f"ext-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}-{path.name}"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{cfg.experiment}-{rel.replace('/', '-')}")
    if len(name) > _NAME_MAX:  # keep it unique: the head, and a digest of the whole
        name = f"{name[:_NAME_MAX - 9]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return name


@contextlib.contextmanager
def open_tracker(
    cfg: Config, stage: str, out_dir: str | Path, family: str | None = None,
    setting: str | None = None, tags: Sequence[str] = (),
) -> Iterator[Tracker]:
    """The stage's tracker; ``family`` and ``setting`` name and group its run."""
    config = cfg.to_dict() | {"stage": stage, "family": family, "setting": setting}
    tags = tuple(dict.fromkeys([*([family] if family else []), *tags]))  # unique, in order
    backend = cfg.tracking.backend
    if backend == "none":
        tracker: Tracker = NullTracker()
    elif backend == "files":
        tracker = FileTracker(Path(out_dir) / "tracking" / stage, config)
    elif backend == "wandb":
        from vadusa.tracking.wandb_backend import WandbTracker  # noqa: PLC0415

        try:
            tracker = WandbTracker(cfg, stage=stage, name=run_name(stage, family, setting),
                                   tags=tags, config=config)
        except Exception as exc:  # noqa: BLE001  (a stage must not fail for its tracking)
            log.warning("W&B tracking for %s is off: wandb.init failed: %s", stage, exc)
            tracker = NullTracker()
    else:
        raise ValueError(f"unknown tracking backend {backend!r}")
    try:
        yield tracker
    finally:
        tracker.finish()
