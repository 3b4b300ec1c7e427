"""The one current-results page (``docs/results.md``) and the README's headline, generated from
the tables of a run.

``vadusa table --markdown-doc PATH`` reads what ``vadusa table`` wrote into a run's tables
directory (``results/<experiment>/tables/``: ``main.csv``, and where the run has them
``all.csv``, ``zero_shot.csv``, ``open_<family>.csv``, ``ablation_<family>.csv``) and writes one
markdown page: a stamp (the code's git commit, with "+dirty" when its tree has uncommitted
changes; the date; the experiment and its config), the judge named in the tables' ``judge``
column, a headline paragraph computed from the main table's rows (AR's WER against VADUSA's,
the paired difference to AR with its interval, whether "maintains or improves WER" holds, the
speedup per token), then the tables. With ``--readme README.md`` the README's block between
``HEADLINE_START`` and ``HEADLINE_END`` is rewritten with the same headline.

Why generated: several pages each held a hand-copied "current" table, and they disagreed (one
run's VADUSA outside AR's interval in the README, another run's inside it in the evaluation
page). Figures now live in the run's CSVs; the page and the README's headline are views of
them, and older figures are history (docs/history.md).

Without a main table the page is a placeholder that says no run has been recorded and names
the command that writes it: this module never writes a figure it did not read.
"""

from __future__ import annotations

import csv
import datetime
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vadusa.eval.table import TableError

HEADLINE_START = "<!-- results:headline -->"
HEADLINE_END = "<!-- /results:headline -->"
#: where older results live, relative to the working directory (linked from the page)
HISTORY = Path("docs/history.md")
#: the paper's two methods: the headline's claim is theirs; every other row is in the tables
HEADLINE_METHODS = ("VADUSA", "VADUSA-wt")
# CSV columns holding numbers (the tables' other columns are text, or counts shown as written)
NUMBER_COLUMNS = frozenset({"wer", "cer", "sim", "accepted", "speedup", "wall_speedup", "bound",
                            "bound_fraction", "rtf", "nar_rtf", "vs_ar", "paired", "ratio",
                            "dev_loss", "dev_acc", "minutes"})


class ResultsPageError(TableError):
    """A page or README that cannot be written as asked (a user's fix, not a bug)."""


@dataclass(frozen=True)
class Stamp:
    """What the page says it was made from."""

    commit: str  # short hash of the code's checkout, "+dirty" if it has uncommitted changes
    date: str  # ISO date the page was written
    experiment: str
    configs: tuple[str, ...]  # the --config files given ("defaults" when none)


def git_commit(repo: Path | None = None) -> str:
    """The short commit of ``repo`` (default: the checkout this package runs from, so a run's
    stamp names the code that made it, wherever Snakemake's working directory is), with
    "+dirty" when tracked files differ from it; "unknown" outside a git checkout."""
    repo = repo or Path(__file__).resolve().parents[3]

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        # untracked files do not count: results/ and scratch files are no change to the code
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}+dirty" if dirty else commit


def make_stamp(experiment: str, configs: Sequence[str] = (), today: datetime.date | None = None,
               repo: Path | None = None) -> Stamp:
    return Stamp(commit=git_commit(repo), date=(today or datetime.date.today()).isoformat(),
                 experiment=experiment, configs=tuple(configs) or ("defaults",))


def read_rows(path: str | Path) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """A table's CSV (``eval/table.to_csv``) back as the rows ``vadusa table`` formats: numbers
    as floats, "" as None, each ``<column>_low``/``_high`` pair as ``<column>_ci``. Returns the
    rows and the shown columns (the header without the interval bounds)."""
    with Path(path).open(newline="") as f:
        reader = csv.DictReader(f)
        header = tuple(reader.fieldnames or ())
        raw = list(reader)
    bounds = {c[: -len("_low")] for c in header if c.endswith("_low")
              and c[: -len("_low")] in header and f"{c[: -len('_low')]}_high" in header}
    columns = tuple(c for c in header
                    if not any(c in (f"{b}_low", f"{b}_high") for b in bounds))
    rows = []
    for r in raw:
        row: dict[str, Any] = {}
        for c in columns:
            value = r.get(c, "")
            row[c] = None if value == "" else float(value) if c in NUMBER_COLUMNS else value
        for b in bounds:
            low, high = r.get(f"{b}_low", ""), r.get(f"{b}_high", "")
            row[f"{b}_ci"] = [float(low), float(high)] if low != "" and high != "" else None
        rows.append(row)
    return rows, columns


def table_files(tables: Path) -> list[tuple[str, Path]]:
    """The tables a run has, each with its section title, in the page's order."""
    found = []
    for name, title in (("main", "Main table"), ("all", "Every family"),
                        ("zero_shot", "Zero-shot: unseen and seen speakers")):
        if (tables / f"{name}.csv").is_file():
            found.append((title, tables / f"{name}.csv"))
    for prefix, title in (("open_", "Open questions"), ("ablation_", "Alignment ablation")):
        for path in sorted(tables.glob(f"{prefix}*.csv")):
            found.append((f"{title}: {path.stem.removeprefix(prefix)}", path))
    return found


def judges(rows: list[dict[str, Any]]) -> list[str]:
    """The judges named in the rows' ``judge`` column, in order of appearance."""
    return list(dict.fromkeys(r["judge"] for r in rows if r.get("judge")))


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def _interval(ci: list[float] | None, points: bool = False) -> str:
    if not ci:
        return ""
    sign = "+" if points else ""
    return f" [{100 * ci[0]:{sign}.1f}, {100 * ci[1]:{sign}.1f}]"


def _setting(row: dict[str, Any]) -> str:
    parts = [f"tau {row['tau']}" if row.get("tau") else "",
             f"{row['heads']} heads" if row.get("heads") else "",
             (f"{row['tree']}-node tree" if str(row.get("tree", "")).isdigit()
              else f"tree {row['tree']}" if row.get("tree") else "")]
    return ", ".join(p for p in parts if p)


_HOLDS = {"yes": "\"maintains or improves WER\" holds (the interval includes zero)",
          "better": "\"maintains or improves WER\" holds: better than AR (the interval lies "
                    "below zero)",
          "no (worse)": "\"maintains or improves WER\" does not hold: worse than AR (the "
                        "interval lies above zero)"}


def _method_sentence(row: dict[str, Any]) -> str:
    text = f"{row['method']} ({_setting(row)}) {_percent(row['wer'])}{_interval(row.get('wer_ci'))}"
    if row.get("vs_ar") is not None:
        text += (f", {100 * row['vs_ar']:+.1f} points against AR on the same utterances"
                 f"{_interval(row.get('vs_ar_ci'), points=True)}")
    if row.get("holds"):
        text += ": " + _HOLDS.get(row["holds"], f"\"maintains or improves WER\": {row['holds']}")
    if row.get("speedup") is not None:
        text += f"; {row['speedup']:.2f}x AR's speed per token"
        if row.get("accepted") is not None:
            text += f" ({row['accepted']:.2f} tokens a pass)"
    return text


def _pick(rows: list[dict[str, Any]], method: str, tau: int | None) -> dict[str, Any] | None:
    """The judged row of ``method``: at ``tau`` when there is one (the first eval tau, the
    setting every page quotes), else the first judged one."""
    judged = [r for r in rows if r.get("method") == method and r.get("wer") is not None]
    at_tau = [r for r in judged if tau is not None and str(r.get("tau")) == str(tau)]
    return (at_tau or judged or [None])[0]


def headline(rows: list[dict[str, Any]], family: str | None = None, tau: int | None = None,
             where: str = "") -> str:
    """One paragraph from a main table's rows (of ``family``, default the first row's): AR's
    WER, then VADUSA's and VADUSA-wt's with the paired difference to AR, the verdict of
    "maintains or improves WER" and the speedup per token. Only what the rows hold is said."""
    if family is None and rows:
        family = rows[0].get("family")
    rows = [r for r in rows if family is None or r.get("family") in (family, None)]
    named = judges(rows)
    judged_by = f", judged by {' and '.join(named)}" if named else ""
    ar = next((r for r in rows if r.get("method") == "AR"), None)
    opening = f"On the test split{f' of {where}' if where else ''}"
    opening += f" (family {family}{judged_by})" if family else f"{judged_by}"
    if ar is not None and ar.get("wer") is not None:
        opening += f", AR decoding scores {_percent(ar['wer'])} WER{_interval(ar.get('wer_ci'))}"
    else:
        opening += ", AR has no WER in this table"
    floor = next((r for r in rows if r.get("method") == "recordings (judge floor)"
                  and r.get("wer") is not None), None)
    if floor is not None:
        opening += f" (the recordings themselves: {_percent(floor['wer'])})"
    sentences = [opening + "."]
    for method in HEADLINE_METHODS:
        row = _pick(rows, method, tau)
        if row is not None:
            sentences.append(_method_sentence(row) + ".")
    if len(sentences) == 1:
        sentences.append("No VADUSA setting was judged in this table.")
    return " ".join(sentences)


def _cell(row: dict[str, Any], column: str) -> str:
    from vadusa.eval.table import format_cell  # noqa: PLC0415

    try:
        return format_cell(row, column)
    except (KeyError, TypeError, ValueError):  # e.g. a difference without its interval
        value = row.get(column)
        return "-" if value is None else str(value)


def to_markdown(rows: list[dict[str, Any]], columns: tuple[str, ...],
                constant: tuple[str, ...] = ("family", "judge")) -> str:
    """A table as ``vadusa table`` formats it, without the columns no row fills and those of
    ``constant`` that hold one value (the page states it once)."""
    from vadusa.eval.table import HEADER, TEXT_COLUMNS  # noqa: PLC0415

    # a row without a value (a raced-only setting has no judge) does not make a column vary
    shown = [c for c in columns if any(r.get(c) is not None for r in rows)
             and not (c in constant and len({r.get(c) for r in rows} - {None}) <= 1)]
    lines = ["| " + " | ".join(HEADER.get(c, c) for c in shown) + " |",
             "|" + "|".join("---" if c in TEXT_COLUMNS else "---:" for c in shown) + "|"]
    lines += ["| " + " | ".join(_cell(r, c).replace("|", "\\|") for c in shown) + " |"
              for r in rows]
    return "\n".join(lines) + "\n"


def _link(target: Path, page: Path) -> str:
    """``target`` as a link from the directory of ``page``."""
    return Path(os.path.relpath(target.resolve(), page.resolve().parent)).as_posix()


def _stamp_lines(stamp: Stamp, tables: Path) -> list[str]:
    return [f"- code: commit `{stamp.commit}`",
            f"- written: {stamp.date}",
            f"- experiment: `{stamp.experiment}` (config: "
            + ", ".join(f"`{c}`" for c in stamp.configs) + ")",
            f"- tables: `{tables.as_posix()}/`"]


def _judge_line(named: list[str], of_record: str) -> str:
    if not named:
        return "- judge: none named in the table"
    if named == [of_record]:
        return f"- judge: {of_record} (the judge of record, `judge.model`)"
    return (f"- judge: {', '.join(named)}; the judge of record is {of_record} (`judge.model`): "
            "rows by another judge are not the results of record")


def render_page(tables: Path, page: Path, stamp: Stamp, judge_of_record: str,
                command: str, family: str | None = None, tau: int | None = None
                ) -> tuple[str, str]:
    """The page and its headline, from the tables in ``tables`` (``main.csv``, else
    ``all.csv``, gives the headline). Without either: the placeholder (no figures), whose
    headline says results are pending and ``command`` writes them."""
    found = table_files(tables)
    source = next((p for _, p in found if p.stem == "main"),
                  next((p for _, p in found if p.stem == "all"), None))
    history = _link(HISTORY, page)
    lines = ["# Current results", "",
             "<!-- Generated by `vadusa table --markdown-doc`: edit the run, not this page. -->",
             ""]
    if source is None:
        text = (f"Results are pending: no run judged by the judge of record ({judge_of_record},"
                f" `judge.model`) has been recorded yet.")
        lines += _stamp_lines(stamp, tables)
        lines += ["", "## Headline", "", text, "",
                  f"`{tables.as_posix()}/` holds no main table (`main.csv`), so this page has "
                  "no figures. This command writes it from a finished run:", "",
                  "```bash", command, "```", "",
                  f"Earlier results, judged by Whisper tiny.en (the judge before "
                  f"{judge_of_record}), are in [docs/history.md]({history}).", ""]
        return "\n".join(lines), text
    rows, _ = read_rows(source)
    named = judges(rows)
    text = headline(rows, family, tau, where=f"experiment `{stamp.experiment}`")
    lines += _stamp_lines(stamp, tables) + [_judge_line(named, judge_of_record)]
    lines += ["", "## Headline", "", text, ""]
    for title, path in found:
        table_rows, columns = read_rows(path)
        lines += [f"## {title} (`{path.name}`)", "", to_markdown(table_rows, columns)]
    lines += ["WER and CER in %, with 95 % bootstrap intervals over utterances; speed from races "
              "against KV-cached AR on the same utterances in one process (docs/evaluation.md). "
              f"Earlier results, by earlier judges and code, are in [docs/history.md]({history}).",
              ""]
    return "\n".join(lines), text


def readme_block(text: str, readme: Path, page: Path, stamp: Stamp, pending: bool) -> str:
    """The README's headline block: the page's headline with a link to the page."""
    link = _link(page, readme)
    if pending:
        return (f"{text} [{link}]({link}) names the command that writes them; earlier "
                f"figures, judged by Whisper tiny.en, are in "
                f"[docs/history.md]({_link(HISTORY, readme)}).")
    return f"{text} Every table: [{link}]({link}) (commit `{stamp.commit}`, {stamp.date})."


def replace_headline(readme_text: str, block: str, name: str = "README.md") -> str:
    """``readme_text`` with the text between HEADLINE_START and HEADLINE_END replaced."""
    start, end = readme_text.find(HEADLINE_START), readme_text.find(HEADLINE_END)
    if start < 0 or end < start:
        raise ResultsPageError(f"{name} has no {HEADLINE_START} ... {HEADLINE_END} block to "
                               "write the headline into")
    return (readme_text[: start + len(HEADLINE_START)] + "\n" + block + "\n"
            + readme_text[end:])


def write_results_page(tables: Path, page: Path, stamp: Stamp, judge_of_record: str,
                       command: str, readme: Path | None = None, family: str | None = None,
                       tau: int | None = None) -> str:
    """Write the page (and with ``readme`` its headline block); returns the headline."""
    from vadusa.atomic import write_text_atomic  # noqa: PLC0415

    text, head = render_page(tables, page, stamp, judge_of_record, command, family, tau)
    pending = not any(p.stem in ("main", "all") for _, p in table_files(tables))
    if readme is not None:  # checked first: a README without the block writes nothing
        updated = replace_headline(readme.read_text(), readme_block(head, readme, page, stamp,
                                                                      pending), readme.name)
    page.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(page, text)
    if readme is not None:
        write_text_atomic(readme, updated)
    return head
