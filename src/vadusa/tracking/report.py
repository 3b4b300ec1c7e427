"""``vadusa wandb-report``: the methods of an experiment compared, per token family.

Per family: WER against speedup (the main table's methods, the open questions' settings and
the sweep's trials), mean accepted length against the tolerance tau (the races), and time per
decoding step against tree size (the tree race); then the main table. Everything is read from
the pipeline's result files, where the experiment's plan (``vadusa.plan``) puts them, not from
W&B, so the report is the same whether the runs were synced or not:

    Plan.race (bench_vadusa, _twins)   speed and accepted length of every setting
    Plan.bench_trees                   the tree race: wall time, forwards, accepted length
    Plan.bench_open                    the open questions' race
    Plan.eval_metrics                  WER (via ``eval.table``, which pairs them up)
    Plan.sweep(..., "trials.csv")      every sweep trial's speedup and WER
    Plan.table("main"/"all", "csv")    the main table as ``vadusa table`` wrote it

``write_page`` always writes a local page (index.html with the plots embedded, the PNGs and
data.json); ``publish`` also builds a W&B Report from the same content when asked to go online
(through the W&B backend, ``vadusa.tracking.wandb_backend``: this module never imports wandb).
What is missing is listed on the page, with the target that makes it.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import datetime
import html
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vadusa.config import Config
from vadusa.eval.table import (
    COLUMNS,
    HEADER,
    MODES,
    TableError,
    family_rows,
    format_cell,
    open_rows,
    race_rows,
)
from vadusa.plan import Plan
from vadusa.tracking.provenance import provenance
from vadusa.tracking.wandb_backend import (
    ReportSection,
    TableData,
    WandbReportError,
    publish_report,
    wandb_mode,
)

TABLES = ("main", "all")  # `vadusa table` names: the default family's, and every family's
RUN_DAG = "`snakemake vadusa`"


class ReportError(RuntimeError):
    """Nothing to report on, or the online report cannot be built."""


@dataclasses.dataclass
class FamilyReport:
    family: str
    # series name -> points {speedup, wer, label}
    speed_wer: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    # curve name -> [(tau, mean accepted length)]
    accepted_tau: dict[str, list[tuple[int, float]]] = dataclasses.field(default_factory=dict)
    # series name -> points {tree, nodes, chain, ms_per_step, accepted, speedup}
    tree_time: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    # series name -> AR's ms per step in the same race
    tree_baselines: dict[str, float] = dataclasses.field(default_factory=dict)
    missing: list[str] = dataclasses.field(default_factory=list)
    # what the reader should know about where the family's tokens come from
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.speed_wer or self.accepted_tau or self.tree_time)


@dataclasses.dataclass
class Report:
    experiment: str
    root: Path
    families: list[FamilyReport]
    tables: dict[str, list[dict[str, Any]]]  # "main"/"all" -> rows as format_cell reads them
    missing: list[str]  # experiment-wide
    sources: list[str]  # the files read, relative to root

    def to_json(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "root": str(self.root),
                "families": [dataclasses.asdict(f) for f in self.families],
                "tables": self.tables, "missing": self.missing, "sources": self.sources}


def _source(path: str | Path, root: Path) -> str:
    """A file read, as the page lists it: relative to the experiment's directory."""
    return Path(path).relative_to(root).as_posix()


def _read_json(path: str | Path, sources: list[str], root: Path) -> Any:
    path = Path(path)
    if not path.is_file():
        return None
    if _source(path, root) not in sources:
        sources.append(_source(path, root))
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:  # a job killed while writing it, say
        raise ReportError(f"{path} is not JSON ({exc}): rerun the job that writes it") from exc


def _number(text: str) -> float | str | None:
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def read_table_csv(path: Path) -> list[dict[str, Any]]:
    """A ``vadusa table`` CSV back as rows ``format_cell`` prints (numbers, the WER interval)."""
    with open(path, newline="") as f:
        rows = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]
    for row in rows:
        # every interval the CSV holds (WER, the paired difference to AR, SIM) as <column>_ci
        for column in [k[:-len("_low")] for k in list(row) if k.endswith("_low")]:
            low, high = row.pop(f"{column}_low", None), row.pop(f"{column}_high", None)
            row[f"{column}_ci"] = ([low, high] if isinstance(low, float)
                                   and isinstance(high, float) else None)
        for key in ("tau", "heads"):  # integers in the CSV, floats after _number
            if isinstance(row.get(key), float) and row[key].is_integer():
                row[key] = int(row[key])
        if isinstance(row.get("tree"), float):
            row["tree"] = f"{row['tree']:g}"
    return rows


def _tree_nodes(tree: str) -> tuple[int, bool] | None:
    """(node count, is a chain) of a bench setting's tree: a count, ``chain:N`` (N nodes in
    one path), or a tree file (its ``nodes``; a relative path is the bench's, from the
    repository root, where Snakemake runs)."""
    if tree.isdigit():
        return int(tree), False
    if tree.startswith("chain:") and tree[6:].isdigit():
        return int(tree[6:]), True
    path = Path(tree)
    if path.is_file():
        blob = json.loads(path.read_text())
        return (int(blob["nodes"]), False) if "nodes" in blob else None
    return None


def _ms_per_step(row: dict[str, Any]) -> float:
    return 1000 * row["wall_seconds"] / (row["forwards_per_utterance"] * row["utterances"])


def _family_report(plan: Plan, family: str, sources: list[str]) -> FamilyReport:
    rep = FamilyReport(family, notes=provenance(plan.cfg, family))
    root = Path(plan.root)
    # speed against WER: the main table's rows that have both (eval.table pairs bench and eval)
    try:
        rows = family_rows(plan, family)
    except (KeyError, TypeError, ValueError) as exc:  # a malformed result file: say which
        rows = []
        rep.missing.append(f"the main table's rows of {family} could not be read: {exc}")
    table_points: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("speedup") is not None and r.get("wer") is not None:
            label = f"tau {r['tau']}" if r.get("tau") not in ("", None) else ""
            table_points[r["method"]].append({"speedup": r["speedup"], "wer": r["wer"],
                                              "label": label})
    rep.speed_wer.update(table_points)
    # what eval.table read for those rows and the open questions' (it reads them itself)
    sources += sorted(_source(path, root) for path in plan.family_results(family)
                      if Path(path).is_file())
    for mode in MODES:
        trials = Path(plan.sweep(family, mode, "trials.csv"))
        if trials.is_file():
            sources.append(_source(trials, root))
            with open(trials, newline="") as f:
                done = [t for t in csv.DictReader(f) if t.get("state") == "COMPLETE"
                        and t.get("speedup") and t.get("wer")]
            if done:
                rep.speed_wer[f"sweep trials ({MODES[mode]})"] = [
                    {"speedup": float(t["speedup"]), "wer": float(t["wer"]),
                     "label": f"tau {t['tau']}"} for t in done]
    try:
        open_table = open_rows(plan, family)
    except TableError:
        open_table = []
    open_points = [{"speedup": r["speedup"], "wer": r["wer"],
                    "label": f"tau {r['tau']}, {r['heads']} heads"}
                   for r in open_table if r["question"] != "AR"
                   and r.get("speedup") is not None and r.get("wer") is not None]
    if open_points:
        rep.speed_wer["open questions (frozen)"] = open_points

    # accepted length against tau: every tolerance setting of the races
    races = {}
    for mode, label in MODES.items():  # Hydra modes read the race of their MEDUSA twin
        if _read_json(plan.race(family, mode)[0], sources, root) is not None:
            races[label] = race_rows(plan, family, mode)
    races["open questions (frozen)"] = _read_json(plan.bench_open(family), sources, root)
    for name, race in races.items():
        curves: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for r in race or []:
            if r["method"] == "vadusa" and r["acceptance"] == "tolerance":
                heads = f"{r['heads']} heads" if r["heads"] else "all heads"
                curves[f"{name}, {heads}, tree {r['tree']}"].append((r["tau"],
                                                                     r["mean_accepted"]))
        rep.accepted_tau.update({k: sorted(v) for k, v in curves.items()})

    # time per step against tree size: the tree race of each mode (its twins' in their
    # MEDUSA mode's race)
    for mode, label in MODES.items():
        if _read_json(plan.race(family, mode, trees=True)[0], sources, root) is None:
            continue
        race = race_rows(plan, family, mode, trees=True)
        points = []
        for r in race:
            if r["method"] != "vadusa":
                continue
            nodes = _tree_nodes(str(r["tree"]))
            if nodes is not None:
                points.append({"tree": r["tree"], "nodes": nodes[0], "chain": nodes[1],
                               "ms_per_step": _ms_per_step(r), "accepted": r["mean_accepted"],
                               "speedup": r["speedup"]})
        if points:
            rep.tree_time[label] = points
            baseline = next((r for r in race if r["setting"] == r.get("baseline")), None)
            if baseline is not None:
                rep.tree_baselines[label] = _ms_per_step(baseline)

    # what is missing, with what makes it
    def where(path: str) -> str:
        return _source(path, root)

    if not table_points:
        rep.missing.append(f"{family}: no method with both speed and WER "
                           f"({where(plan.bench_vadusa(family, '<mode>'))} and "
                           f"{where(plan.eval_metrics(family, '*'))}): run {RUN_DAG}")
    if not rep.accepted_tau:
        rep.missing.append(f"{family}: no VADUSA race ({where(plan.bench_vadusa(family, 'frozen'))}"
                           f"): run {RUN_DAG}")
    if not rep.tree_time:
        rep.missing.append(f"{family}: no tree race ({where(plan.bench_trees(family, 'frozen'))}"
                           f"): run {RUN_DAG}")
    if not any(k.startswith("sweep") for k in rep.speed_wer):
        rep.missing.append(f"{family}: no sweep trials "
                           f"({where(plan.sweep(family, '<mode>', 'trials.csv'))}): run {RUN_DAG}")
    return rep


def _has_results(plan: Plan, family: str) -> bool:
    return any(Path(d).is_dir() for d in plan.family_dirs(family))


def collect(cfg: Config, families: Sequence[str] | None = None) -> Report:
    """Everything the report shows, from the experiment's result files. ``families``: the
    configured ones (default) that have results; those without are listed as missing. No
    results at all is a ReportError naming what to run."""
    plan = Plan(cfg)
    root = Path(plan.root)
    wanted = list(families or cfg.tokens.families)
    sources: list[str] = []
    present = [f for f in wanted if _has_results(plan, f)]
    missing = []
    absent = [f for f in wanted if f not in present]
    if absent:
        missing.append(f"no results for {', '.join(absent)} (`snakemake reproduce_all` runs "
                       f"every family)")
    tables: dict[str, list[dict[str, Any]]] = {}
    for name in TABLES:
        path = Path(plan.table(name, "csv"))
        if path.is_file():
            sources.append(_source(path, root))
            tables[name] = read_table_csv(path)
    main_csv = _source(plan.table("main", "csv"), root)
    if "main" not in tables:
        missing.append(f"no {main_csv} (the main table): run {RUN_DAG} first")
    reports = [_family_report(plan, f, sources) for f in present]
    if not tables and all(r.empty for r in reports):
        raise ReportError(f"nothing to report under {root}: no {main_csv} and no bench, "
                          f"eval or sweep results for {', '.join(wanted)}: run {RUN_DAG} "
                          f"first")
    return Report(cfg.experiment, root, reports, tables, missing, sources)


# --- the local page -------------------------------------------------------------------------

def _plots(rep: FamilyReport, out: Path) -> dict[str, Path]:
    from vadusa.eval import figures  # noqa: PLC0415  (matplotlib only when drawing)

    f = rep.family
    plots = {}
    if rep.speed_wer:
        plots["speedup vs WER"] = figures.speed_vs_wer(
            rep.speed_wer, out / f"{f}_speed_wer.png", f"{f}: WER against speedup")
    if rep.accepted_tau:
        plots["accepted length vs tau"] = figures.accepted_vs_tau(
            rep.accepted_tau, out / f"{f}_accepted_tau.png",
            f"{f}: accepted length against tolerance")
    if rep.tree_time:
        plots["tree size vs time per step"] = figures.tree_vs_time(
            rep.tree_time, rep.tree_baselines, out / f"{f}_tree_time.png",
            f"{f}: time per step against tree size")
    return plots


def _family_rows(report: Report, family: str) -> list[dict[str, Any]]:
    """The family's rows of the main table (of every family's, if written)."""
    return [r for r in report.tables.get("all", report.tables.get("main", []))
            if r.get("family") == family]


def _html_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    head = "".join(f"<th>{html.escape(HEADER.get(c, c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(format_cell(dict(r), c))}</td>"
                                    for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(path: Path, title: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return (f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(title)} ({html.escape(path.name)})</figcaption></figure>")


STYLE = """body{font-family:sans-serif;margin:2em;max-width:1400px}
figure{display:inline-block;margin:0 1em 1em 0;vertical-align:top}
img{max-width:440px;border:1px solid #ddd}
table{border-collapse:collapse;font-size:0.85em;margin-bottom:1.5em}
th,td{border:1px solid #ccc;padding:0.2em 0.5em;text-align:right}
td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}
.missing{background:#fff4e5;border:1px solid #f0b060;padding:0.5em 1em}"""


def write_page(report: Report, out: Path) -> Path:
    """``out/index.html`` (plots embedded, so the file stands alone), the plots as PNGs, and
    ``out/data.json`` (every number plotted)."""
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    parts = [f"<h1>VADUSA: experiment {html.escape(report.experiment)}</h1>",
             f"<p>From the result files under <code>{html.escape(str(report.root))}</code>, "
             f"{html.escape(now)}; the same content as <code>vadusa wandb-report --online"
             f"</code> puts in a W&amp;B Report.</p>"]
    missing = report.missing + [m for f in report.families for m in f.missing]
    if missing:
        parts.append('<div class="missing"><h2>Missing inputs</h2><ul>'
                     + "".join(f"<li>{html.escape(m)}</li>" for m in missing) + "</ul></div>")
    for rep in report.families:
        parts.append(f'<h2 id="{html.escape(rep.family)}">{html.escape(rep.family)}</h2>')
        parts += [f'<p class="note">{html.escape(note)}</p>' for note in rep.notes]
        plots = _plots(rep, out)
        parts += [_image(path, title) for title, path in plots.items()]
        rows = _family_rows(report, rep.family)
        if rows:
            parts.append(f"<h3>{html.escape(rep.family)} in the main table</h3>"
                         + _html_table(rows))
    for name, rows in report.tables.items():
        parts.append(f"<h2>tables/{html.escape(name)}.csv</h2>" + _html_table(rows))
    parts.append("<h2>Sources</h2><ul>" + "".join(
        f"<li><code>{html.escape(s)}</code></li>" for s in sorted(set(report.sources)))
        + "</ul>")
    page = out / "index.html"
    page.write_text("<!doctype html><html><head><meta charset=\"utf-8\"><title>VADUSA "
                    f"{html.escape(report.experiment)}</title><style>{STYLE}</style></head>"
                    f"<body>{''.join(parts)}</body></html>\n")
    (out / "data.json").write_text(json.dumps(report.to_json(), indent=1, default=str))
    return page


# --- the W&B Report (online) ----------------------------------------------------------------

def online_by_default(cfg: Config) -> bool:
    """Whether the tracking settings say online (``WANDB_MODE`` wins over tracking.mode)."""
    return cfg.tracking.backend == "wandb" and wandb_mode(cfg) == "online"


def _table_data(rows: Sequence[dict[str, Any]]) -> TableData:
    """The main table's rows as W&B table columns and rows (the WER interval split in two)."""
    return ([*COLUMNS, "wer_low", "wer_high"],
            [[r.get(c) for c in COLUMNS] + list(r.get("wer_ci") or [None, None]) for r in rows])


def publish(report: Report, cfg: Config, out: Path) -> str:
    """Log the report's plots and tables to a ``job_type=report`` run of the project, then
    save a W&B Report (per family: its plots and table; then the main table) that shows that
    run (``vadusa.tracking.wandb_backend.publish_report``). Needs the ``wandb-workspaces``
    package and a W&B login. Returns the report's URL."""
    name = f"report-{cfg.experiment}"
    sections = []
    for rep in report.families:
        images = {f"{rep.family}/{path.stem.removeprefix(rep.family + '_')}": (path, title)
                  for title, path in _plots(rep, out).items()}
        rows = _family_rows(report, rep.family)
        sections.append(ReportSection(rep.family, images, {
            f"{rep.family}/table": _table_data(rows) if rows else None}))
    if report.tables:
        sections.append(ReportSection("main table", tables={
            f"tables/{table}": _table_data(rows) for table, rows in report.tables.items()}))
    try:
        return publish_report(
            cfg, out, name=name, title=f"VADUSA: {cfg.experiment}",
            description="speedup vs WER, accepted length vs tau, tree size vs time, the main "
                        "table",
            intro=f"Methods compared per token family for experiment {cfg.experiment}, from "
                  f"the pipeline's result files (the run {name}).",
            sections=sections,
            missing=report.missing + [m for f in report.families for m in f.missing])
    except WandbReportError as exc:  # keep the page: say where it is
        raise ReportError(f"{exc}; the local page is {out / 'index.html'}") from exc
