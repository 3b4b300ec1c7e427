"""The main table from known result files: rows, where each figure comes from, formatting."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from vadusa.config import load_config
from vadusa.eval.figures import open_questions
from vadusa.eval.table import (
    ABLATION_COLUMNS,
    OPEN_COLUMNS,
    TableError,
    ablation_rows,
    main_table,
    open_rows,
    to_csv,
    to_html,
    to_markdown,
)
from vadusa.plan import Plan


def _bench_row(setting: str, method: str, tau: int, heads: int, acceptance: str,
               speedup: float, accepted: float, wall: float = 10.0) -> dict:
    row = {"setting": setting, "method": method, "batch_size": 1, "tau": tau, "heads": heads,
           "tree": "16", "acceptance": acceptance, "speedup": speedup,
           "mean_accepted": accepted, "real_time_factor": 0.2 / speedup,
           "wall_seconds": wall}
    if method == "vadusa":  # a 16-node tree on weak heads: never deeper than 4
        row |= {"tree_nodes": 16, "tree_depth": min(heads, 4)}
    return row


def _metrics(wer: float, cer: float, sim: float | None, tau: int = 1) -> dict:
    return {"wer": wer, "cer": cer, "sim": sim,
            "ci": {"wer": {"low": wer - 0.05, "high": wer + 0.05}},
            "decoding": {"tau": tau, "heads": 0, "tree": "16"}}


def _write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def plan_of(root: Path, *overrides: str) -> Plan:
    """The plan of the experiment whose results are in ``root`` (results_dir/experiment)."""
    return Plan(load_config(overrides=[f"results_dir={root.parent}", f"experiment={root.name}",
                                       *overrides]))


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results" / "x"
    _write(root / "bench/whisper/ar.json",
           [_bench_row("ar-b1", "ar", 1, 0, "tolerance", 1.0, 1.0, wall=10.0),
            _bench_row("ar-b1-float32", "ar", 1, 0, "tolerance", 0.9, 1.0, wall=11.0)])
    _write(root / "eval/whisper/ar/test/metrics.json", _metrics(0.40, 0.20, 0.81))
    for mode, speed in (("frozen", 2.0), ("joint", 2.5)):
        _write(root / f"bench/whisper/vadusa-{mode}.json", [
            _bench_row("ar-b1", "ar", 1, 0, "tolerance", 1.0, 1.0),
            _bench_row("typical-h4-n16", "vadusa", 1, 4, "typical", speed + 0.3, 4.0),
            _bench_row("vadusa-h4-n16-t3", "vadusa", 3, 4, "tolerance", speed, 3.5),
            _bench_row("vadusa-h2-n16-t3", "vadusa", 3, 2, "tolerance", speed - 0.2, 2.8),
            _bench_row("vadusa-h4-n16-t1", "vadusa", 1, 4, "tolerance", speed - 0.4, 2.6)])
    _write(root / "eval/whisper/vadusa-frozen-tau3/test/metrics.json",
           _metrics(0.38, 0.19, 0.80, tau=3))
    _write(root / "bench/whisper/draft.json", [
        _bench_row("ar-b1", "ar", 1, 0, "tolerance", 1.0, 1.0),
        _bench_row("draft-g2", "draft", 1, 0, "tolerance", 1.3, 2.2) | {"gamma": 2},
        _bench_row("draft-g4", "draft", 1, 0, "tolerance", 1.1, 2.9) | {"gamma": 4}])
    draft = _metrics(0.41, 0.21, 0.79)
    draft["decoding"]["draft_tokens"] = 4
    _write(root / "eval/whisper/draft/test/metrics.json", draft)
    return root


def test_rows_in_the_papers_order_with_figures_from_their_sources(results: Path) -> None:
    rows = main_table(plan_of(results), ["whisper", "hubert"])  # hubert has no results: no rows
    methods = [(r["method"], r["heads"], r["tau"]) for r in rows]
    assert methods == [
        ("AR", "", ""),
        ("VADUSA", 2, 3), ("VADUSA", 4, 1), ("VADUSA", 4, 3),
        ("typical acceptance (VADUSA heads)", 4, ""),
        ("VADUSA-wt", 2, 3), ("VADUSA-wt", 4, 1), ("VADUSA-wt", 4, 3),
        ("typical acceptance (VADUSA-wt heads)", 4, ""),
        ("draft model, gamma 2", "", ""), ("draft model, gamma 4", "", "")]
    ar = rows[0]
    assert ar["wer"] == 0.40 and ar["sim"] == 0.81 and ar["speedup"] == 1.0
    assert ar["rtf"] == pytest.approx(0.2)  # the faster AR row is the baseline
    frozen_t3 = rows[3]
    assert frozen_t3["speedup"] == 2.0 and frozen_t3["accepted"] == 3.5
    assert frozen_t3["wer"] == 0.38  # evaluated: all heads, tau 3, the same tree
    assert "wer" not in rows[1]  # 2 heads were benchmarked, not evaluated
    assert "wer" not in rows[7]  # no joint evaluation written
    assert rows[9]["speedup"] == 1.3 and "wer" not in rows[9]  # gamma 2: benched only
    assert rows[10]["accepted"] == 2.9 and rows[10]["wer"] == 0.41  # evaluated at gamma 4


def test_markdown_and_csv(results: Path) -> None:
    rows = main_table(plan_of(results), ["whisper"])
    markdown = to_markdown(rows)
    lines = markdown.splitlines()
    assert lines[0].startswith("| family | method | tau | heads | tree | WER % [95 % CI]")
    assert len(lines) == 2 + len(rows)
    assert ("| whisper | AR | - | - | - | 40.0 [35.0, 45.0] | 20.0 | - | - | 0 | - | 0.810 "
            "| 1.00 | 1.00x |") in markdown
    assert ("| whisper | VADUSA | 3 | 4 | 16 | 38.0 [33.0, 43.0] | 19.0 | - | - | 0 | - | 0.800 "
            "| 3.50 | 2.00x |") in markdown
    table = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert len(table) == len(rows) and float(table[0]["wer"]) == 0.40
    assert float(table[0]["wer_low"]) == pytest.approx(0.35) and table[1]["wer"] == ""


def _judged(wer_errors: list[int], failed: int = 0, no_eos: int = 0, tau: int = 1) -> dict:
    """An evaluation of 10-word utterances u0, u1, ... with these word errors; the last
    ``failed`` of them failed (all 10 words deleted)."""
    rows = [{"id": f"u{i}", "word_errors": e, "words": 10} for i, e in enumerate(wer_errors)]
    judged, lost = rows[:len(rows) - failed], rows[len(rows) - failed:]
    wer = sum(wer_errors) / (10 * len(rows))
    return _metrics(wer, wer / 2, 0.8, tau=tau) | {
        "judge": "whisper-base", "failed": failed, "no_eos": no_eos,
        "failures": [{"id": r["id"], "stage": "decode"} for r in lost],
        "per_utterance": judged, "failed_utterances": lost}


def test_vadusa_rows_carry_the_paired_difference_to_ar_failures_and_the_judge(
        results: Path) -> None:
    """Each evaluated VADUSA row: its WER minus AR's on the same utterances with a paired
    bootstrap interval, whether "maintains or improves WER" holds, the failures (counted as
    deletions), the utterances without EOS, and the judge of record."""
    _write(results / "eval/whisper/ar/test/metrics.json", _judged([1, 1, 1, 1, 1, 1]))
    # frozen: 2 more errors on every utterance, the last one failed: significantly worse
    _write(results / "eval/whisper/vadusa-frozen-tau3/test/metrics.json",
           _judged([3, 3, 3, 3, 3, 10], failed=1, no_eos=2, tau=3))
    # joint: the same errors as AR, shuffled: no difference
    _write(results / "eval/whisper/vadusa-joint-tau3/test/metrics.json",
           _judged([0, 2, 1, 1, 2, 0], tau=3))
    rows = main_table(plan_of(results), ["whisper"])
    by = {(r["method"], r["heads"], r["tau"]): r for r in rows}
    ar, frozen, joint = by[("AR", "", "")], by[("VADUSA", 4, 3)], by[("VADUSA-wt", 4, 3)]
    assert "vs_ar" not in ar and ar["judge"] == "whisper-base" and ar["failed"] == 0
    assert frozen["vs_ar"] == pytest.approx((2 * 5 + 9) / 60)
    assert frozen["vs_ar_ci"][0] > 0 and frozen["holds"] == "no (worse)"
    assert (frozen["failed"], frozen["no_eos"], frozen["judge"]) == (1, 2, "whisper-base")
    assert joint["vs_ar"] == pytest.approx(0.0) and joint["holds"] == "yes"
    assert joint["vs_ar_ci"][0] < 0 < joint["vs_ar_ci"][1]
    assert "vs_ar" not in by[("VADUSA", 4, 1)]  # raced, not evaluated
    markdown = to_markdown(rows)
    assert "WER - AR's, same utterances [95 % CI] | maintains WER? | failed" in markdown
    assert f"| {100 * frozen['vs_ar']:+.1f} [" in markdown and "| no (worse) | 1 | 2 |" in markdown
    table = list(csv.DictReader(io.StringIO(to_csv(rows))))
    frozen_csv = next(r for r in table if r["method"] == "VADUSA" and r["tau"] == "3"
                      and r["heads"] == "4")
    assert float(frozen_csv["vs_ar_low"]) > 0 and frozen_csv["judge"] == "whisper-base"


def test_the_floors_come_first_from_the_test_resynthesis(results: Path) -> None:
    _write(results / "resynth/whisper/test/metrics.json",
           {"wer": 0.31, "cer": 0.12, "input_wer": 0.05, "input_cer": 0.02,
            "ci": {"wer": {"low": 0.28, "high": 0.34},
                   "input_wer": {"low": 0.03, "high": 0.07}}})
    rows = main_table(plan_of(results), ["whisper"])
    assert [r["method"] for r in rows[:3]] == [
        "recordings (judge floor)", "resynthesis (tokens -> vocoder)", "AR"]
    recordings, resynthesis = rows[:2]
    assert (recordings["wer"], recordings["cer"], recordings["wer_ci"]) == (0.05, 0.02,
                                                                           [0.03, 0.07])
    assert (resynthesis["wer"], resynthesis["wer_ci"]) == (0.31, [0.28, 0.34])
    markdown = to_markdown(rows)
    # no speed for the floors: they decode nothing
    assert "| whisper | resynthesis (tokens -> vocoder) | - | - | - | 31.0 [28.0, 34.0] | " \
        "12.0 | - | - | 0 | - | - | - | - |" in markdown


class _Cells(HTMLParser):
    """The text of every cell, row by row, and each row's class."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.classes: list[str | None] = []
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
            self.classes.append(dict(attrs).get("class"))
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(self._cell)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell += data


def test_html_has_the_markdown_cells_for_the_report(results: Path) -> None:
    _write(results / "resynth/whisper/test/metrics.json",
           {"wer": 0.31, "cer": 0.12, "input_wer": 0.05, "input_cer": 0.02})
    rows = main_table(plan_of(results), ["whisper"])
    rows += [r | {"family": "hubert"} for r in rows[:3]]  # a second family, for the separator
    page = to_html(rows, title="main table")
    parsed = _Cells()
    parsed.feed(page)
    markdown = [[cell.strip() for cell in line.strip("|").split("|")]
                for i, line in enumerate(to_markdown(rows).splitlines()) if i != 1]
    assert parsed.rows == markdown  # header and every cell, formatted alike
    assert "resynthesis (tokens -&gt; vocoder)" in page  # escaped: read back as the text
    assert "resynthesis (tokens -> vocoder)" in parsed.rows[2]
    # a line above each further family's first row, nowhere else
    assert [i for i, c in enumerate(parsed.classes) if c] == [1 + len(rows) - 3]
    assert parsed.classes[1 + len(rows) - 3] == "next-family"


def test_no_results_is_an_error_that_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(TableError, match="run the DAG first"):
        main_table(plan_of(tmp_path / "results" / "x"), ["whisper"])


def test_open_questions_rows_pair_each_setting_with_its_speed_and_quality(tmp_path: Path
                                                                          ) -> None:
    root = tmp_path / "results" / "x"
    # tau 1 and 3 with 4 heads, 2, 4 and 6 heads at the first eval tau, 3
    plan = plan_of(root, "measure.open_taus=[1, 3]", "measure.open_heads=[2, 4, 6]",
                   "measure.eval_taus=[3]", "heads.count=4")
    with pytest.raises(TableError, match="snakemake open_questions"):
        open_rows(plan, "whisper")
    _write(root / "bench/whisper/open.json", [
        _bench_row("ar-b1", "ar", 1, 0, "tolerance", 1.0, 1.0, wall=10.0),
        _bench_row("vadusa-h4-n16-t1", "vadusa", 1, 4, "tolerance", 1.5, 2.0),
        _bench_row("vadusa-h4-n16-t3", "vadusa", 3, 4, "tolerance", 2.0, 3.0),
        _bench_row("vadusa-h2-n16-t3", "vadusa", 3, 2, "tolerance", 1.7, 2.4),
        _bench_row("vadusa-h6-n16-t3", "vadusa", 3, 6, "tolerance", 2.1, 3.2)])
    _write(root / "eval/whisper/open/ar/test/metrics.json", _metrics(0.40, 0.20, 0.81))
    _write(root / "eval/whisper/open/tau3-h2/test/metrics.json",
           _metrics(0.36, 0.18, 0.80, tau=3))
    rows = open_rows(plan, "whisper")
    assert [(r["question"], r["tau"], r["heads"]) for r in rows] == [
        ("AR", "", ""), ("tau", 1, 4), ("tau", 3, 4), ("heads", 3, 2), ("heads", 3, 4),
        ("heads", 3, 6)]
    assert rows[0]["wer"] == 0.40 and rows[0]["rtf"] == pytest.approx(0.2)
    assert rows[1]["speedup"] == 1.5 and "wer" not in rows[1]  # benched, not yet evaluated
    assert rows[3]["speedup"] == 1.7 and rows[3]["accepted"] == 2.4 and rows[3]["wer"] == 0.36
    assert rows[5]["speedup"] == 2.1
    # 6 heads on a tree that reaches only 4: the table says so
    assert [r.get("depth") for r in rows] == [None, 4, 4, 2, 4, 4]
    markdown = to_markdown(rows, OPEN_COLUMNS)
    assert markdown.splitlines()[0].startswith(
        "| family | varied | tau | heads | tree | heads the tree reaches |")
    assert ("| whisper | heads | 3 | 2 | 16 | 2 | 36.0 [31.0, 41.0] | 18.0 | 0.800 | 2.40 "
            "| 1.70x |") in markdown
    assert "| whisper | heads | 3 | 6 | 16 | 4 |" in markdown
    figure = open_questions(rows, tmp_path / "open.png", "whisper")
    assert figure.stat().st_size > 10_000  # two panels drawn


def test_the_ablation_table_reads_each_variant_beside_the_floor(tmp_path: Path) -> None:
    import torch  # noqa: PLC0415

    from vadusa.checkpoint import save_checkpoint  # noqa: PLC0415

    root = tmp_path / "results" / "x"
    # the ablation chooses defaults: judged on dev (ablation.split); test figures are ignored
    _write(root / "resynth/whisper/dev/metrics.json",
           {"wer": 0.40, "cer": 0.2, "input_wer": 0.1, "input_cer": 0.05,
            "ci": {"wer": {"low": 0.35, "high": 0.45}}})
    _write(root / "resynth/whisper/test/metrics.json",
           {"wer": 0.90, "cer": 0.9, "input_wer": 0.9, "input_cer": 0.9, "ci": {}})

    def model(path: Path, loss: float, seconds: float) -> None:
        save_checkpoint(path, kind="tts", config={"train": {"steps": 600}},
                        state={"w": torch.zeros(1)},
                        meta={"dev": {"dev/loss": loss, "dev/acc": 0.5},
                              "seconds_per_step": seconds})

    def judged(wer: float, errors: list[int]) -> dict:  # 10 words per utterance
        return _metrics(wer, 0.3, None) | {"per_utterance": [
            {"id": f"u{i}", "word_errors": e, "words": 10} for i, e in enumerate(errors)]}

    model(root / "models/whisper/base/base.pt", 1.2, 0.8)
    _write(root / "eval/whisper/ar/dev/metrics.json", judged(0.50, [5, 5, 5, 5]))
    _write(root / "eval/whisper/ar/test/metrics.json", judged(0.90, [9, 9, 9, 9]))
    model(root / "ablation/whisper/none/base.pt", 2.0, 1.0)
    _write(root / "ablation/whisper/none/dev/metrics.json", judged(1.0, [10, 10, 10, 10]))
    variants = ("ablation.variants={none: [model.alignment=none], "
                "noise: [train.token_noise=0.1]}")
    rows = ablation_rows(plan_of(root, variants), "whisper", "model.alignment=duration")
    assert [r["method"] for r in rows] == [
        "dev: recordings (judge floor)", "dev: resynthesis (tokens -> vocoder)",
        "AR, the configured model", "AR, none", "AR, noise"]
    assert {r["split"] for r in rows} == {"dev"}
    configured, none, missing = rows[2:]
    assert configured["settings"] == "model.alignment=duration"
    assert configured["ratio"] == pytest.approx(0.50 / 0.40)
    assert configured["minutes"] == pytest.approx(0.8 * 600 / 60)
    assert none["ratio"] == pytest.approx(2.5) and none["dev_loss"] == 2.0
    # paired on the same utterances: 5 more errors in each of 4 x 10 words, every resample
    assert none["paired"] == pytest.approx(0.5) and none["paired_ci"] == pytest.approx([0.5, 0.5])
    assert "paired" not in configured
    assert missing.get("wer") is None  # not run yet: "-" in the table
    markdown = to_markdown(rows, ABLATION_COLUMNS)
    assert "| AR, the configured model | model.alignment=duration | dev | 50.0 [45.0, 55.0] |" \
        in markdown and "1.25x" in markdown and "| 8.0 |" in markdown
    assert "+50.0 [+50.0, +50.0]" in markdown
    table = list(csv.DictReader(io.StringIO(to_csv(rows, ABLATION_COLUMNS))))
    assert table[3]["paired"] == "0.5" and table[3]["paired_low"] == "0.5"
    with pytest.raises(TableError, match="snakemake ablation"):
        ablation_rows(plan_of(tmp_path / "empty"), "whisper", "none")


def test_copy_synthesis_and_librivox_floors_sit_beside_the_test_floors(results: Path) -> None:
    _write(results / "resynth/whisper/test/metrics.json",
           {"wer": 0.31, "cer": 0.12, "input_wer": 0.05, "input_cer": 0.02, "ci": {}})
    _write(results / "resynth/copy/test/metrics.json",
           {"wer": 0.13, "cer": 0.06, "input_wer": 0.05, "input_cer": 0.02,
            "ci": {"wer": {"low": 0.10, "high": 0.16}}})
    _write(results / "resynth/whisper/librivox/metrics.json",
           {"wer": 0.10, "cer": 0.05, "input_wer": 0.08, "input_cer": 0.03,
            "ci": {"wer": {"low": 0.04, "high": 0.16}}})
    rows = main_table(plan_of(results), ["whisper"])
    assert [r["method"] for r in rows[:6]] == [
        "recordings (judge floor)", "copy synthesis (mel -> HiFi-GAN)",
        "resynthesis (tokens -> vocoder)", "LibriVox: recordings (judge floor)",
        "LibriVox: resynthesis (tokens -> vocoder)", "AR"]
    assert (rows[1]["wer"], rows[1]["wer_ci"]) == (0.13, [0.10, 0.16])
    assert (rows[3]["wer"], rows[3]["wer_ci"]) == (0.08, None)
    assert (rows[4]["wer"], rows[4]["cer"], rows[4]["wer_ci"]) == (0.10, 0.05, [0.04, 0.16])
    assert rows[2]["wer_ci"] is None  # no interval recorded: none shown


def test_job_times_come_from_snakemakes_records(tmp_path: Path) -> None:
    """``vadusa job-times``: one row per job (its outputs merged), in the order they started,
    only the experiment's, incomplete ones left out; the wall time from first start to last
    end."""
    import base64  # noqa: PLC0415

    from vadusa.eval.job_times import JobTimesError, job_table, read_jobs  # noqa: PLC0415

    metadata = tmp_path / ".snakemake" / "metadata"
    metadata.mkdir(parents=True)

    def record(output: str, rule: str, job: int, start: float, end: float,
               incomplete: bool = False) -> None:
        name = base64.b64encode(output.encode()).decode().rstrip("=")
        (metadata / name).write_text(json.dumps({
            "rule": rule, "job_hash": job, "starttime": start, "endtime": end,
            "incomplete": incomplete}))

    record("results/x/tokens/whisper/kmeans.npz", "fit_kmeans", 2, 130.0, 250.0)
    record("results/x/corpus/stats.json", "prepare_corpus", 1, 100.0, 130.0)
    record("results/x/corpus/manifests/train.jsonl.gz", "prepare_corpus", 1, 100.0, 131.0)
    record("results/x/models/whisper/base/base.pt", "train_base", 3, 250.0, 900.0, True)
    record("results/other/corpus/stats.json", "prepare_corpus", 4, 0.0, 5.0)
    (metadata / "not*base64").write_text("{}")
    jobs = read_jobs(tmp_path, "results/x")
    assert [(j["rule"], len(j["outputs"])) for j in jobs] == [("prepare_corpus", 2),
                                                              ("fit_kmeans", 1)]
    table = job_table(jobs)
    assert "| `prepare_corpus` | `results/x/corpus/stats.json` | 0 | 31 s |" in table
    assert "| `fit_kmeans` | `results/x/tokens/whisper/kmeans.npz` | 0 | 2 min 00 s |" in table
    assert table.endswith("2 jobs, 2 min 30 s from the first start to the last end.\n")
    with pytest.raises(JobTimesError, match="no finished jobs"):
        read_jobs(tmp_path, "results/y")
    with pytest.raises(JobTimesError, match="no Snakemake records"):
        read_jobs(tmp_path / "nowhere")


def _group(wer: float, sim: float, accepted: float, condition: str, failed: int = 0) -> dict:
    return {"utterances": 10, "failed": failed, "speakers": 2, "condition": condition,
            "wer": wer, "sim": sim, "mean_accepted": accepted,
            "ci": {"wer": {"low": wer - 0.05, "high": wer + 0.05},
                   "sim": {"low": sim - 0.02, "high": sim + 0.02}}}


def test_the_zero_shot_table_reads_each_speaker_group(tmp_path: Path) -> None:
    from vadusa.eval.table import ZERO_SHOT_COLUMNS, zero_shot_rows  # noqa: PLC0415

    root = tmp_path / "results" / "z"
    plan = plan_of(root)
    for system, offset in (("ar", 0.0), ("vadusa-frozen-tau3", 0.02), ("vadusa-joint-tau3", 0.01)):
        accepted = 1.0 if system == "ar" else 3.5
        groups = {"unseen": _group(0.30 + offset, 0.60, accepted, "unseen", failed=1),
                  "subset:test-clean": _group(0.25 + offset, 0.62, accepted, "unseen"),
                  "subset:test-other": _group(0.60 + offset, 0.40, accepted, "unseen", 1),
                  "subset:train-clean-100": _group(0.20 + offset, 0.80, accepted, "seen"),
                  "seen": _group(0.20 + offset, 0.80, accepted, "seen")}
        _write(Path(plan.eval_metrics("whisper", system)), {"groups": groups})
    for mode in ("frozen", "joint"):
        for group, speedup in (("unseen", 1.8), ("seen", 2.1)):
            _write(Path(plan.bench_zero_shot("whisper", mode, group)),
                   [_bench_row("ar-b1", "ar", 1, 0, "tolerance", 1.0, 1.0),
                    _bench_row("vadusa-hall-n16-t3", "vadusa", 3, 4, "tolerance", speedup,
                               3.5) | {"rate_speedup": speedup + 0.1}])
    embedded = tmp_path / "main.csv"
    embedded.write_text("family,method,tau,wer,sim,accepted,speedup,wer_low,wer_high\n"
                        "whisper,AR,,0.157,,1.0,1.0,0.115,0.201\n"
                        "whisper,VADUSA,1,0.3,,3.0,2.0,0.2,0.4\n"
                        "whisper,VADUSA,3,0.218,,3.72,2.18,0.168,0.275\n"
                        "whisper,VADUSA,3,,,3.1,1.9,,\n"  # raced (2 heads), not evaluated
                        "hubert,AR,,0.9,,1.0,1.0,0.8,1.0\n")
    rows = zero_shot_rows(plan, "whisper", embedded)
    labels = [(r["method"], r["speakers"]) for r in rows]
    # unseen first, its two subsets, then seen (its one subset would repeat it), per system;
    # then the embedded default's closed-set rows at the same tau
    per_system = ["unseen", "test-clean (unseen)", "test-other (unseen)", "seen"]
    assert labels[:12] == [(m, g) for m in ("AR", "VADUSA, tau 3", "VADUSA-wt, tau 3")
                           for g in per_system]
    assert [r["method"] for r in rows[12:]] == ["AR", "VADUSA, tau 3"]
    assert all("embedded default" in r["speakers"] for r in rows[12:])
    assert rows[12]["wer_ci"] == [0.115, 0.201] and rows[13]["wer"] == 0.218
    unseen = rows[4]  # VADUSA on unseen speakers: its group's quality, its group's race
    assert unseen["wer"] == pytest.approx(0.32) and unseen["failed"] == 1
    assert unseen["sim_ci"] == [pytest.approx(0.58), pytest.approx(0.62)]
    assert unseen["speedup"] == pytest.approx(1.9) and unseen["wall_speedup"] == 1.8
    assert rows[7]["speedup"] == pytest.approx(2.2)  # seen: the seen race
    assert rows[5].get("speedup") is None  # a subset has no race of its own
    assert rows[0].get("speedup") is None  # AR is the baseline
    markdown = to_markdown(rows, ZERO_SHOT_COLUMNS)
    assert "| VADUSA, tau 3 | unseen | 10 | 1 | 32.0 [27.0, 37.0] | 0.600 [0.580, 0.620] |" \
        in markdown
    assert "sim_low" in to_csv(rows, ZERO_SHOT_COLUMNS).splitlines()[0]
    with pytest.raises(TableError, match="reproduce_zero_shot"):
        zero_shot_rows(plan_of(tmp_path / "results" / "empty"), "whisper", None)
