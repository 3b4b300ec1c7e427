"""The current-results page (``vadusa table --markdown-doc``) from a tiny tables directory: its
stamp, its headline computed from the main table's rows, the README's headline block, and the
placeholder when no run has been recorded."""

from __future__ import annotations

import csv
import datetime
import re
import subprocess
from pathlib import Path

import pytest

from vadusa.eval.results_page import (
    HEADLINE_END,
    HEADLINE_START,
    ResultsPageError,
    Stamp,
    git_commit,
    headline,
    make_stamp,
    read_rows,
    render_page,
    write_results_page,
)

# the main table's CSV columns (eval/table.py, to_csv): the shown ones, then the intervals
COLUMNS = ["family", "method", "tau", "heads", "tree", "wer", "cer", "vs_ar", "holds", "failed",
           "no_eos", "sim", "accepted", "speedup", "wall_speedup", "bound", "bound_fraction",
           "rtf", "nar_rtf", "judge", "wer_low", "wer_high", "vs_ar_low", "vs_ar_high",
           "sim_low", "sim_high"]
STAMP = Stamp(commit="abc1234+dirty", date="2026-12-10", experiment="tinyexp",
              configs=("config/tiny.yaml",))
COMMAND = "vadusa table --markdown-doc docs/results.md"


def _row(method: str, **values: object) -> dict[str, object]:
    return {"family": "whisper", "method": method} | values


def write_main(tables: Path, judge: str = "whisper-base") -> Path:
    """A main.csv as ``vadusa table`` writes it: floors, AR, a raced-only setting, and the
    judged VADUSA and VADUSA-wt at tau 3."""
    rows = [
        _row("recordings (judge floor)", wer=0.114, cer=0.049, judge=judge, failed=0,
             wer_low=0.075, wer_high=0.153),
        _row("AR", wer=0.15, cer=0.07, failed=0, no_eos=0, sim=0.85, accepted=1.0, speedup=1.0,
             wall_speedup=1.0, rtf=0.25, judge=judge, wer_low=0.11, wer_high=0.19,
             sim_low=0.84, sim_high=0.86),
        _row("VADUSA", tau=1, heads=4, tree=16, accepted=2.7, speedup=1.5, wall_speedup=1.45,
             bound=2.0, bound_fraction=0.75, rtf=0.18),
        _row("VADUSA", tau=3, heads=4, tree=16, wer=0.16, cer=0.072, vs_ar=0.01, holds="yes",
             failed=0, no_eos=1, sim=0.84, accepted=3.7, speedup=2.2, wall_speedup=2.1,
             bound=2.6, bound_fraction=0.846, rtf=0.12, judge=judge, wer_low=0.12,
             wer_high=0.20, vs_ar_low=-0.02, vs_ar_high=0.04, sim_low=0.83, sim_high=0.85),
        _row("VADUSA-wt", tau=3, heads=4, tree=16, wer=0.12, cer=0.06, vs_ar=-0.03,
             holds="better", failed=0, no_eos=0, sim=0.86, accepted=3.6, speedup=2.3,
             wall_speedup=2.25, bound=2.7, bound_fraction=0.85, rtf=0.11, judge=judge,
             wer_low=0.09, wer_high=0.15, vs_ar_low=-0.05, vs_ar_high=-0.01, sim_low=0.85,
             sim_high=0.87),
    ]
    tables.mkdir(parents=True, exist_ok=True)
    path = tables / "main.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_rows_come_back_from_the_csv_with_numbers_and_intervals(tmp_path: Path) -> None:
    rows, columns = read_rows(write_main(tmp_path))
    assert columns == tuple(COLUMNS[:COLUMNS.index("judge") + 1])  # bounds folded into _ci
    ar, raced, vadusa = rows[1], rows[2], rows[3]
    assert ar["wer"] == 0.15 and ar["wer_ci"] == [0.11, 0.19] and ar["vs_ar_ci"] is None
    assert raced["wer"] is None and raced["tau"] == "1"  # raced, not judged
    assert vadusa["vs_ar"] == 0.01 and vadusa["vs_ar_ci"] == [-0.02, 0.04]
    assert vadusa["holds"] == "yes" and vadusa["nar_rtf"] is None


def test_the_round_trip_through_the_tables_own_csv(tmp_path: Path) -> None:
    from vadusa.eval.table import to_csv  # noqa: PLC0415

    rows = [{"family": "whisper", "method": "VADUSA", "tau": 3, "wer": 0.2, "wer_ci": [0.1, 0.3],
             "vs_ar": 0.01, "vs_ar_ci": [-0.01, 0.03], "holds": "yes", "judge": "whisper-base"}]
    columns = ("family", "method", "tau", "wer", "vs_ar", "holds", "judge")
    path = tmp_path / "main.csv"
    path.write_text(to_csv(rows, columns))
    back, shown = read_rows(path)
    assert shown == columns
    assert back[0]["wer_ci"] == [0.1, 0.3] and back[0]["vs_ar_ci"] == [-0.01, 0.03]


def test_the_headline_is_computed_from_the_rows(tmp_path: Path) -> None:
    rows, _ = read_rows(write_main(tmp_path))
    text = headline(rows, "whisper", tau=3)
    assert "judged by whisper-base" in text
    assert "AR decoding scores 15.0 % WER [11.0, 19.0]" in text
    assert "(the recordings themselves: 11.4 %)" in text
    assert ("VADUSA (tau 3, 4 heads, 16-node tree) 16.0 % [12.0, 20.0], +1.0 points against AR "
            "on the same utterances [-2.0, +4.0]: \"maintains or improves WER\" holds (the "
            "interval includes zero); 2.20x AR's speed per token (3.70 tokens a pass).") in text
    assert ("VADUSA-wt (tau 3, 4 heads, 16-node tree) 12.0 % [9.0, 15.0], -3.0 points against "
            "AR on the same utterances [-5.0, -1.0]: \"maintains or improves WER\" holds: "
            "better than AR") in text
    # the raced-only tau 1 row has no WER: never quoted
    assert "tau 1" not in text
    worse = [r | {"holds": "no (worse)"} if r["method"] == "VADUSA" else r for r in rows]
    assert "does not hold: worse than AR" in headline(worse, "whisper", tau=3)


def test_the_page_is_stamped_and_holds_every_table(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # docs/history.md is the working directory's
    tables = tmp_path / "results/tinyexp/tables"
    write_main(tables)
    (tables / "open_whisper.csv").write_text("family,question,tau,heads,wer,wer_low,wer_high\n"
                                             "whisper,tau,2,4,0.3,0.2,0.4\n")
    page, head = render_page(tables, tmp_path / "docs/results.md", STAMP, "whisper-base",
                             COMMAND, "whisper", 3)
    assert page.startswith("# Current results\n")
    assert "- code: commit `abc1234+dirty`" in page and "- written: 2026-12-10" in page
    assert "- experiment: `tinyexp` (config: `config/tiny.yaml`)" in page
    assert "- judge: whisper-base (the judge of record, `judge.model`)" in page
    assert f"## Headline\n\n{head}\n" in page
    assert "## Main table (`main.csv`)" in page and "## Open questions: whisper" in page
    assert "| VADUSA | 3 | 4 | 16 | 16.0 [12.0, 20.0] |" in page
    assert "+1.0 [-2.0, +4.0]" in page  # the paired difference, formatted as the tables do
    # one judge, one family: stated once, not a column; a column no row fills is dropped
    header = next(line for line in page.splitlines() if line.startswith("| method"))
    assert "judge" not in header and "family" not in header and "NAR RTF" not in header
    assert "[docs/history.md](history.md)" in page  # linked from the page's own directory
    run_page, _ = render_page(tables, tables / "results.md", STAMP, "whisper-base", COMMAND)
    assert "[docs/history.md](../../../docs/history.md)" in run_page


def test_another_judge_than_the_one_of_record_is_said(tmp_path: Path) -> None:
    write_main(tmp_path, judge="whisper-tiny.en")
    page, head = render_page(tmp_path, tmp_path / "results.md", STAMP, "whisper-base", COMMAND)
    assert "judged by whisper-tiny.en" in head
    assert "- judge: whisper-tiny.en; the judge of record is whisper-base" in page


def test_without_a_main_table_the_page_is_a_placeholder_without_figures(tmp_path: Path) -> None:
    page, head = render_page(tmp_path / "empty", tmp_path / "docs/results.md", STAMP,
                             "whisper-base", COMMAND)
    assert head.startswith("Results are pending: no run judged by the judge of record "
                           "(whisper-base")
    assert f"```bash\n{COMMAND}\n```" in page and "abc1234+dirty" in page
    assert not re.search(r"\d %|\dx\b", page)  # no figure at all


def test_the_readme_headline_block_is_rewritten_and_nothing_else(tmp_path: Path) -> None:
    tables = tmp_path / "tables"
    write_main(tables)
    readme = tmp_path / "README.md"
    before, after = "# x\n\nbash a\nbash b\n\n", "\n\n## Next\nkept\n"
    readme.write_text(f"{before}{HEADLINE_START}\nold numbers 21.8 %\n{HEADLINE_END}{after}")
    page = tmp_path / "docs/results.md"
    head = write_results_page(tables, page, STAMP, "whisper-base", COMMAND, readme=readme,
                              family="whisper", tau=3)
    text = readme.read_text()
    assert text.startswith(before + HEADLINE_START + "\n") and text.endswith(HEADLINE_END + after)
    assert "21.8" not in text and head in text
    assert "Every table: [docs/results.md](docs/results.md) (commit `abc1234+dirty`, " \
           "2026-12-10)." in text
    assert page.read_text().count(head) == 1
    # again: the same block, not a second one
    write_results_page(tables, page, STAMP, "whisper-base", COMMAND, readme=readme)
    assert readme.read_text().count(HEADLINE_START) == 1


def test_a_readme_without_the_block_is_refused_before_anything_is_written(tmp_path: Path
                                                                         ) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n")
    page = tmp_path / "results.md"
    with pytest.raises(ResultsPageError, match="results:headline"):
        write_results_page(tmp_path, page, STAMP, "whisper-base", COMMAND, readme=readme)
    assert not page.exists() and readme.read_text() == "# x\n"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                           *args], check=True, capture_output=True, text=True).stdout.strip()


def test_the_stamp_names_the_commit_and_whether_the_tree_is_dirty(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "code.py").write_text("x = 1\n")
    _git(repo, "add", "code.py")
    _git(repo, "commit", "-q", "-m", "one")
    short = _git(repo, "rev-parse", "--short", "HEAD")
    (repo / "untracked.txt").write_text("results are not code\n")
    assert git_commit(repo) == short
    (repo / "code.py").write_text("x = 2\n")
    stamp = make_stamp("exp", [], today=datetime.date(2026, 12, 10), repo=repo)
    assert stamp == Stamp(f"{short}+dirty", "2026-12-10", "exp", ("defaults",))
    assert git_commit(tmp_path / "not-a-repo") == "unknown"


def test_vadusa_table_markdown_doc_writes_the_page_and_the_readme(tmp_path: Path) -> None:
    from vadusa.cli import main  # noqa: PLC0415

    tables = tmp_path / "tables"
    write_main(tables)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{HEADLINE_START}\n{HEADLINE_END}\n")
    page = tmp_path / "docs/results.md"
    assert main(["table", "--set", f"results_dir={tmp_path}", "--out", str(tables),
                 "--markdown-doc", str(page), "--readme", str(readme)]) == 0
    text = page.read_text()
    assert "- experiment: `default` (config: `defaults`)" in text
    assert re.search(r"- code: commit `(unknown|[0-9a-f]{7,}(\+dirty)?)`", text)
    assert "VADUSA (tau 3, 4 heads, 16-node tree) 16.0 %" in readme.read_text()
    # --readme alone: the README's headline links to a page, so the page is needed
    assert main(["table", "--out", str(tables), "--readme", str(readme)]) == 2
