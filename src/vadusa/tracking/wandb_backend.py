"""Weights & Biases backend: offline by default, never blocking a run. The one module that
imports ``wandb`` (and ``wandb_workspaces``), each when first needed: the tracker of a stage's
run (``WandbTracker``), and the publishing of a W&B Report (``publish_report``, for
``vadusa wandb-report --online``; ``vadusa.tracking.report`` decides what it shows).

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

import dataclasses
import functools
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from vadusa.config import Config
from vadusa.plan import Plan
from vadusa.tracking.base import Tracker

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., None])


def uniform_columns(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """The rows with every column of one type, as a W&B Table requires: a column that mixes
    text with numbers (the main table's heads: 4, or "all" in a tree race row) becomes text;
    None stays None (an empty cell)."""
    data = [list(r) for r in rows]
    for j in range(len(data[0]) if data else 0):
        kinds = {type(r[j]) is str for r in data if r[j] is not None}
        if kinds == {True, False}:  # text and numbers side by side
            for r in data:
                r[j] = None if r[j] is None else str(r[j])
    return data


def wandb_mode(cfg: Config) -> str:
    """The mode W&B runs in: ``WANDB_MODE`` if set, else ``tracking.mode``."""
    return os.environ.get("WANDB_MODE", cfg.tracking.mode)


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
        self.mode = wandb_mode(cfg)
        run_root = Path(Plan(cfg).wandb_runs())
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
                                              data=uniform_columns(rows))})

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


# --- a W&B Report (online) ------------------------------------------------------------------

TableData = tuple[Sequence[str], Sequence[Sequence[Any]]]  # columns, rows


class WandbReportError(RuntimeError):
    """The online W&B Report cannot be built (package missing, no login, no network)."""


@dataclasses.dataclass
class ReportSection:
    """One heading of a W&B Report and the panel grid under it. ``images`` (key -> (PNG,
    caption)) and ``tables`` (key -> columns and rows) are logged to the report's run; a
    table of data None is not logged but still gets its panel."""

    heading: str
    images: dict[str, tuple[Path, str]] = dataclasses.field(default_factory=dict)
    tables: dict[str, TableData | None] = dataclasses.field(default_factory=dict)


def publish_report(cfg: Config, out: Path, name: str, title: str, description: str,
                   intro: str, sections: Sequence[ReportSection],
                   missing: Sequence[str] = ()) -> str:
    """Log the sections' images and tables to an online run ``name`` (``job_type=report``,
    in the experiment's group, written under ``out``), then save a W&B Report that shows that
    run: a table of contents, ``intro``, each section's heading and panels, and ``missing``.
    Needs the ``wandb-workspaces`` package and a W&B login. Returns the report's URL."""
    try:
        import wandb_workspaces.reports.v2 as wr  # noqa: PLC0415
    except ImportError as exc:
        raise WandbReportError("an online W&B Report needs the wandb-workspaces package, "
                               "which is not installed: `pip install wandb-workspaces`") from exc
    import wandb  # noqa: PLC0415

    try:
        run = wandb.init(project=cfg.tracking.project, entity=cfg.tracking.entity or None,
                         group=cfg.experiment, job_type="report", name=name, mode="online",
                         dir=str(out), config={"experiment": cfg.experiment},
                         settings=wandb.Settings(silent=True), reinit="finish_previous")
    except Exception as exc:  # noqa: BLE001  (no login, no network: say so)
        raise WandbReportError(f"could not start an online W&B run ({exc}): `wandb login` "
                               f"first") from exc
    for section in sections:
        for key, (path, caption) in section.images.items():
            run.log({key: wandb.Image(str(path), caption=caption)})
        for key, table in section.tables.items():
            if table is not None:
                columns, rows = table
                run.log({key: wandb.Table(columns=list(columns),
                                          data=[list(r) for r in rows])})
    entity, project = run.entity, run.project
    run.finish()

    def grid(media: list[str], tables: list[str]) -> Any:
        runset = wr.Runset(entity=entity, project=project, name=name, query=name)
        return wr.PanelGrid(runsets=[runset], panels=(
            [wr.MediaBrowser(media_keys=media)] if media else [])
            + [wr.WeavePanelSummaryTable(table_name=t) for t in tables])

    blocks = [wr.TableOfContents(), wr.P(intro)]
    for section in sections:
        blocks += [wr.H2(section.heading), grid(list(section.images), list(section.tables))]
    if missing:
        blocks += [wr.H2("missing inputs"), wr.P("; ".join(missing))]
    web = wr.Report(entity=entity, project=project, title=title, description=description)
    web.blocks = blocks
    web.save()
    return str(web.url)
