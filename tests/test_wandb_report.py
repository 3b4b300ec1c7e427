"""W&B tracking read back, and ``vadusa wandb-report`` on small result files.

The W&B tests run offline (conftest disables W&B; they switch it back on for themselves, with
W&B's own directories in the test's tmp dir) and read the runs back with
``wandb leet inspect --json``, the record-by-record dump of a run's ``.wandb`` log that wandb
0.31 ships.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vadusa.cli import main
from vadusa.config import Config, load_config
from vadusa.tracking import NullTracker, artifact_name, open_tracker, run_name


def _wandb_cli() -> str:
    beside = Path(sys.executable).with_name("wandb")  # the venv's, like the package
    found = str(beside) if beside.is_file() else shutil.which("wandb")
    assert found, "the wandb CLI (pinned in requirements.txt) is not installed"
    return found


def inspect(run_dir: Path) -> list[dict[str, Any]]:
    """Every record of an offline run, as `wandb leet inspect --json` prints them."""
    out = subprocess.run([_wandb_cli(), "leet", "inspect", "--json", str(run_dir)],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    for var, sub in (("WANDB_DATA_DIR", "data"), ("WANDB_CACHE_DIR", "cache"),
                     ("WANDB_CONFIG_DIR", "config"), ("WANDB_ARTIFACT_DIR", "artifacts")):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home" / sub))
    monkeypatch.setenv("WANDB_MODE", "offline")
    return load_config(overrides=[f"results_dir={tmp_path / 'results'}", "experiment=exp",
                                  "tracking.backend=wandb"])


def _runs(cfg: Config) -> dict[str, list[dict[str, Any]]]:
    """The experiment's offline runs, by run name."""
    runs = {}
    for run_dir in sorted((cfg.experiment_dir / "wandb" / "wandb").glob("offline-run-*")):
        records = inspect(run_dir)
        [run] = [r["run"] for r in records if r["type"] == "run"]
        runs[run["display_name"]] = records
    return runs


def test_offline_runs_read_back_with_grouping_history_and_lineage(offline_wandb: Config) -> None:
    cfg = offline_wandb
    model = cfg.experiment_dir / "models" / "whisper" / "base" / "base.pt"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"weights" * 100)
    with open_tracker(cfg, stage="train-base", out_dir=model.parent, family="whisper") as tr:
        for step, loss in ((10, 3.0), (20, 2.5), (30, 2.0)):
            tr.log({"train/loss": loss}, step=step)
        tr.log_summary({"dev/loss": 1.9})
        tr.log_artifact(model, artifact_name(cfg, model), "model")
    heads = cfg.experiment_dir / "models" / "whisper" / "frozen"
    with open_tracker(cfg, stage="train-heads", out_dir=heads, family="whisper",
                      setting="k4", tags=("frozen",)) as tr:
        tr.use_artifact(model, artifact_name(cfg, model), "model")
        tr.use_artifact(model, artifact_name(cfg, model), "model")  # declared once
        tr.log({"train/heads_loss": 5.0}, step=10)

    runs = _runs(cfg)
    assert set(runs) == {"train-base-whisper", "train-heads-whisper-k4"}
    base = runs["train-base-whisper"]
    [run] = [r["run"] for r in base if r["type"] == "run"]
    assert (run["job_type"], run["run_group"], run["project"], run["tags"]) == (
        "train-base", "exp", "vadusa", ["whisper"])
    config = run["config"]["update"]
    assert (config["family"], config["stage"], config["setting"]) == ("whisper", "train-base",
                                                                      None)
    assert config["experiment"] == "exp" and config["tracking"]["mode"] == "offline"
    history = [r["history"]["item"] for r in base if r["type"] == "history"]
    assert [(h["_step"], h["train/loss"]) for h in history] == [(10, 3.0), (20, 2.5),
                                                                (30, 2.0)]
    summary = {k: v for r in base if r["type"] == "summary" for k, v in r["summary"]
               ["update"].items()}
    assert summary["dev/loss"] == 1.9

    # lineage: the consumer logged the same content under the producer's name, to be used
    [produced] = [r["artifact"] for r in base if r["type"] == "artifact"]
    assert (produced["name"], produced["type"]) == ("exp-models-whisper-base-base.pt", "model")
    assert not produced.get("use_after_commit")
    [tags] = [r["run"]["tags"] for r in runs["train-heads-whisper-k4"] if r["type"] == "run"]
    assert tags == ["whisper", "frozen"]
    [used] = [r["artifact"] for r in runs["train-heads-whisper-k4"] if r["type"] == "artifact"]
    assert (used["name"], used["type"], used["use_after_commit"]) == (produced["name"],
                                                                       "model", True)
    assert used["digest"] == produced["digest"]  # what `wandb sync` matches the version by
    assert [e["path"] for e in used["manifest"]["contents"]] == ["base.pt"]


def test_a_tracker_that_fails_never_stops_the_stage(
        offline_wandb: Config, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    import wandb

    with open_tracker(offline_wandb, stage="prepare", out_dir=offline_wandb.experiment_dir) \
            as tracker:
        def broken(*args: Any, **kwargs: Any) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(tracker.run, "log", broken)
        tracker.log({"a": 1.0}, step=0)
        tracker.log({"a": 2.0}, step=1)  # warned once
        tracker.log_artifact(offline_wandb.experiment_dir / "nowhere.pt", "x", "model")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert sum("W&B log failed" in w and "disk full" in w for w in warnings) == 1
    assert any("W&B log_artifact failed" in w for w in warnings)

    def no_init(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("no service")

    monkeypatch.setattr(wandb, "init", no_init)
    with open_tracker(offline_wandb, stage="prepare", out_dir=offline_wandb.experiment_dir) \
            as tracker:
        assert isinstance(tracker, NullTracker)
    assert "wandb.init failed: no service" in caplog.text


def test_files_backend_records_inputs_and_outputs(tmp_path: Path) -> None:
    cfg = load_config(overrides=[f"results_dir={tmp_path}", "tracking.backend=files"])
    model = cfg.experiment_dir / "models" / "whisper" / "frozen" / "heads.pt"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"x")
    trees = cfg.experiment_dir / "trees" / "whisper" / "frozen" / "tau3"
    with open_tracker(cfg, stage="calibrate", out_dir=trees, family="whisper",
                      setting="frozen-tau3") as tracker:
        tracker.use_artifact(model, artifact_name(cfg, model), "model")
        tracker.log_artifact(trees, artifact_name(cfg, trees), "trees")
    run = trees / "tracking" / "calibrate"
    assert json.loads((run / "artifacts.json").read_text()) == [
        {"path": str(model.resolve()), "name": "default-models-whisper-frozen-heads.pt",
         "type": "model", "role": "input"},
        {"path": str(trees.resolve()), "name": "default-trees-whisper-frozen-tau3",
         "type": "trees", "role": "output"}]
    config = (run / "config.yaml").read_text()
    assert "family: whisper" in config and "setting: frozen-tau3" in config


def test_stage_inputs_are_the_experiments_own_files_once(tmp_path: Path) -> None:
    from vadusa.cli import _use_inputs

    cfg = load_config(overrides=[f"results_dir={tmp_path}", "tracking.backend=files"])
    codec = cfg.experiment_dir / "tokens" / "encodec" / "codec" / "codec.pt"
    trees = cfg.experiment_dir / "trees" / "encodec" / "frozen" / "tau3"
    published = tmp_path / "published.pt"  # not the experiment's: no stage made it
    for path in (codec, trees / "acceptance.json", trees / "tree-16.json", published):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    with open_tracker(cfg, stage="evaluate", out_dir=tmp_path / "eval") as tracker:
        _use_inputs(cfg, tracker, models=[codec, codec, published, tmp_path / "gone.pt"],
                    trees=["16", str(trees / "tree-16.json")])
    records = json.loads((tmp_path / "eval" / "tracking" / "evaluate" / "artifacts.json")
                         .read_text())
    assert [(r["name"], r["type"], r["role"]) for r in records] == [
        ("default-tokens-encodec-codec-codec.pt", "model", "input"),
        ("default-trees-encodec-frozen-tau3", "trees", "input")]


def test_names() -> None:
    cfg = load_config(overrides=["results_dir=/r", "experiment=exp.1"])
    assert run_name("evaluate", "whisper", "ar-b1-test") == "evaluate-whisper-ar-b1-test"
    assert run_name("table", None, "main") == "table-main"
    assert artifact_name(cfg, "/r/exp.1/vocoder/whisper/unit2mel.pt") == \
        "exp.1-vocoder-whisper-unit2mel.pt"
    outside = artifact_name(cfg, "/elsewhere/my base.pt")
    assert outside.startswith("exp.1-ext-") and outside.endswith("-my-base.pt")
    assert outside == artifact_name(cfg, "/elsewhere/./my base.pt")  # one file, one name
    long = artifact_name(cfg, "/r/exp.1/" + "d" * 200 + "/x.pt")
    assert len(long) == 128 and long != artifact_name(cfg, "/r/exp.1/" + "d" * 200 + "/y.pt")


# --- vadusa wandb-report ---------------------------------------------------------------------

def _bench_row(setting: str, method: str, wall: float, forwards: float, accepted: float,
               tau: int = 1, heads: int = 0, tree: str = "16", acceptance: str = "tolerance",
               gamma: int | None = None) -> dict[str, Any]:
    """A record as `vadusa bench` writes it (decoding/bench.py), speedup against ar-b1 at
    40 s."""
    return {"setting": setting, "method": method, "batch_size": 1, "tau": tau, "heads": heads,
            "tree": tree, "acceptance": acceptance, "gamma": gamma, "utterances": 40,
            "tokens": 7200, "wall_seconds": wall, "tokens_per_second": 7200 / wall,
            "real_time_factor": wall / 144.0, "forwards_per_utterance": forwards,
            "mean_accepted": accepted, "accept_length_histogram": {"1": 7200},
            "audio_seconds": 144.0, "precision": "float32", "baseline": "ar-b1",
            "speedup": 40.0 / wall, "rate_speedup": 40.0 / wall}


def _metrics(wer: float, method: str, tau: int = 1, tree: str = "16",
             draft_tokens: int = 4) -> dict[str, Any]:
    """The part of eval/<family>/<method>/test/metrics.json the tables read."""
    return {"family": "whisper", "method": method, "wer": wer, "cer": wer / 2, "sim": 0.85,
            "ci": {"wer": {"low": wer - 0.02, "high": wer + 0.02}},
            "decoding": {"method": method, "tau": tau, "tree": tree,
                         "draft_tokens": draft_tokens}}


def write_results(root: Path) -> None:
    """A small experiment in the pipeline's layout: races, evaluations, a tree race, sweep
    trials and the main table (as `vadusa table` writes it)."""
    bench, evals = root / "bench" / "whisper", root / "eval" / "whisper"
    bench.mkdir(parents=True)
    ar = _bench_row("ar-b1", "ar", 40.0, 180.0, 1.0)
    frozen = [ar] + [_bench_row(f"vadusa-hall-n16-t{t}", "vadusa", 30.0 - 2 * t, 70.0 - 5 * t,
                                2.4 + 0.3 * t, tau=t) for t in (1, 2, 3)]
    (bench / "vadusa-frozen.json").write_text(json.dumps(frozen))
    (bench / "ar.json").write_text(json.dumps([ar]))
    trees = [ar] + [_bench_row(f"vadusa-hall-n{n}-t3", "vadusa", 30.0 + n / 4, 80.0 - 2 * n,
                               2.0 + n / 10, tau=3, tree=str(n)) for n in (4, 8, 16)]
    trees.append(_bench_row("vadusa-hall-chain4-t3", "vadusa", 28.0, 66.0, 2.7, tau=3,
                            tree="chain:4"))
    (bench / "trees-frozen.json").write_text(json.dumps(trees))
    (bench / "draft.json").write_text(json.dumps(
        [ar, _bench_row("draft-g4", "draft", 41.0, 60.0, 3.0, gamma=4)]))
    for name, metrics in (("ar", _metrics(0.30, "ar")),
                          ("vadusa-frozen-tau3", _metrics(0.32, "vadusa", tau=3)),
                          ("draft", _metrics(0.31, "draft"))):
        (evals / name / "test").mkdir(parents=True)
        (evals / name / "test" / "metrics.json").write_text(json.dumps(metrics))
    sweep = root / "sweep" / "whisper" / "frozen"
    sweep.mkdir(parents=True)
    (sweep / "trials.csv").write_text(
        "number,state,tau,heads,tree,temperature,top_k,speedup,wer,worker\n"
        "0,COMPLETE,1,2,4,1.0,0,1.20,0.31,vm:1\n"
        "1,COMPLETE,3,2,16,1.0,0,1.50,0.34,vm:1\n"
        "2,FAIL,2,2,8,1.0,0,,,vm:1\n")
    tables = root / "tables"
    tables.mkdir()
    (tables / "main.csv").write_text(
        "family,method,tau,heads,tree,wer,cer,sim,accepted,speedup,rtf,wer_low,wer_high\n"
        "whisper,AR,,,,0.3,0.15,0.85,1.0,1.0,0.27,0.28,0.32\n"
        "whisper,VADUSA,3,4,16,0.32,0.16,0.85,3.3,1.67,0.16,0.3,0.34\n")


def _report_args(root: Path, *extra: str) -> list[str]:
    return ["wandb-report", "--set", f"results_dir={root.parent}", "--set",
            f"experiment={root.name}", "--set", "tokens.families=[whisper, hubert]", *extra]


def test_wandb_report_offline_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "results" / "exp"
    write_results(root)
    out = tmp_path / "page"
    assert main(_report_args(root, "--out", str(out), "--offline")) == 0
    printed = capsys.readouterr().out
    assert f"{out / 'index.html'}: whisper, tables main" in printed
    assert "missing: no results for hubert" in printed

    assert sorted(p.name for p in out.glob("*.png")) == [
        "whisper_accepted_tau.png", "whisper_speed_wer.png", "whisper_tree_time.png"]
    page = (out / "index.html").read_text()
    assert page.count('<img alt="') == 3 and page.count("data:image/png;base64,") == 3
    # the main table as `vadusa table` prints it: WER in % with its interval, speedup in x
    assert "<td>32.0 [30.0, 34.0]</td>" in page and "<td>1.67x</td>" in page
    assert "no results for hubert" in page
    assert "tables/all.csv" not in page  # not written: nothing claimed

    data = json.loads((out / "data.json").read_text())
    [whisper] = data["families"]
    speed = whisper["speed_wer"]
    assert {p["wer"] for p in speed["AR"]} == {0.30}
    assert [(round(p["speedup"], 3), p["wer"], p["label"]) for p in speed["VADUSA"]] == [
        (round(40 / 24, 3), 0.32, "tau 3")]  # the evaluated tau only
    assert [p["speedup"] for p in speed["draft model, gamma 4"]] == [40 / 41]
    assert [(p["speedup"], p["wer"]) for p in speed["sweep trials (VADUSA)"]] == [
        (1.2, 0.31), (1.5, 0.34)]  # the failed trial left out
    assert whisper["accepted_tau"] == {"VADUSA, all heads, tree 16": [
        [1, pytest.approx(2.7)], [2, pytest.approx(3.0)], [3, pytest.approx(3.3)]]}
    tree_points = whisper["tree_time"]["VADUSA"]
    assert [(p["nodes"], p["chain"]) for p in tree_points] == [(4, False), (8, False),
                                                               (16, False), (4, True)]
    assert tree_points[0]["ms_per_step"] == pytest.approx(1000 * 31.0 / (72.0 * 40))
    assert whisper["tree_baselines"] == {"VADUSA": pytest.approx(1000 * 40.0 / (180.0 * 40))}
    assert whisper["missing"] == [] and whisper["notes"] == []  # whisper: published weights
    assert {"bench/whisper/trees-frozen.json", "eval/whisper/ar/test/metrics.json",
            "sweep/whisper/frozen/trials.csv", "tables/main.csv"} <= set(data["sources"])


def test_wandb_report_partial_results_list_what_is_missing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "results" / "exp"
    write_results(root)
    for gone in ("tables/main.csv", "bench/whisper/trees-frozen.json"):
        (root / gone).unlink()
    shutil.rmtree(root / "sweep")
    assert main(_report_args(root, "--offline")) == 0
    printed = capsys.readouterr().out
    assert "missing: no tables/main.csv (the main table): run `snakemake vadusa` first" \
        in printed
    assert "missing: whisper: no tree race (bench/whisper/trees-frozen.json)" in printed
    assert "missing: whisper: no sweep trials" in printed
    out = root / "wandb_report"  # the default
    assert sorted(p.name for p in out.glob("*.png")) == ["whisper_accepted_tau.png",
                                                         "whisper_speed_wer.png"]
    assert "Missing inputs" in (out / "index.html").read_text()


def test_wandb_report_without_results_is_a_clear_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "results" / "exp"
    root.mkdir(parents=True)
    assert main(_report_args(root, "--offline")) == 2
    err = capsys.readouterr().err
    assert "vadusa wandb-report: error: nothing to report under" in err
    assert "run `snakemake vadusa` first" in err


def test_wandb_report_online_names_the_missing_package(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb_workspaces", None)  # not installed, whatever is
    root = tmp_path / "results" / "exp"
    write_results(root)
    assert main(_report_args(root, "--online")) == 2
    err = capsys.readouterr().err
    assert "pip install wandb-workspaces" in err
    assert (root / "wandb_report" / "index.html").is_file()  # the page is there anyway


def test_wandb_report_names_a_corrupt_result_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "results" / "exp"
    write_results(root)
    (root / "bench" / "whisper" / "trees-frozen.json").write_text('[{"setting": ')
    assert main(_report_args(root, "--offline")) == 2
    err = capsys.readouterr().err
    assert "trees-frozen.json is not JSON" in err and "rerun the job that writes it" in err


def test_only_the_wandb_backend_imports_wandb() -> None:
    import ast  # noqa: PLC0415

    import vadusa  # noqa: PLC0415

    src = Path(vadusa.__file__).parent
    importers = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] in ("wandb", "wandb_workspaces") for n in names):
                importers.add(path.relative_to(src).as_posix())
    assert importers == {"tracking/wandb_backend.py"}


def test_wandb_report_online_publishes_plots_and_tables(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The online Report against stand-ins for wandb.init and wandb_workspaces: what the run
    logs and which blocks the Report gets."""
    import types  # noqa: PLC0415

    import wandb  # noqa: PLC0415

    logged: dict[str, Any] = {}
    inits: list[dict[str, Any]] = []

    class Run:
        entity, project = "ent", "proj"

        def log(self, data: dict[str, Any]) -> None:
            logged.update(data)

        def finish(self) -> None:
            pass

    def init(**kwargs: Any) -> Run:
        inits.append(kwargs)
        return Run()

    class Block:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.args, self.kwargs = args, kwargs

    saved: list[Any] = []

    class Report(Block):
        url = "https://wandb.example/report"

        def save(self) -> None:
            saved.append(self)

    v2 = types.ModuleType("wandb_workspaces.reports.v2")
    for name in ("Runset", "PanelGrid", "MediaBrowser", "WeavePanelSummaryTable",
                 "TableOfContents", "P", "H2"):
        setattr(v2, name, type(name, (Block,), {}))
    v2.Report = Report  # type: ignore[attr-defined]
    reports = types.ModuleType("wandb_workspaces.reports")
    reports.v2 = v2  # type: ignore[attr-defined]
    workspaces = types.ModuleType("wandb_workspaces")
    workspaces.reports = reports  # type: ignore[attr-defined]
    for name, module in (("wandb_workspaces", workspaces),
                         ("wandb_workspaces.reports", reports),
                         ("wandb_workspaces.reports.v2", v2)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(wandb, "init", init)

    root = tmp_path / "results" / "exp"
    write_results(root)
    assert main(_report_args(root, "--online")) == 0
    assert "W&B Report: https://wandb.example/report" in capsys.readouterr().out
    [run] = inits
    assert (run["job_type"], run["name"], run["mode"]) == ("report", "report-exp", "online")
    assert sorted(logged) == ["tables/main", "whisper/accepted_tau", "whisper/speed_wer",
                              "whisper/table", "whisper/tree_time"]
    [report] = saved
    assert report.kwargs["title"] == "VADUSA: exp"
    headings = [b.args[0] for b in report.blocks if type(b).__name__ == "H2"]
    assert headings == ["whisper", "main table", "missing inputs"]


def test_families_trained_from_scratch_carry_a_note_that_they_are_recipes() -> None:
    """HuBERT, wav2vec2 and the codec trained here are recipes: the report says so and names
    the key that loads the published model; with that key set, or for whisper, no note."""
    from vadusa.tracking.provenance import provenance  # noqa: PLC0415

    cfg = load_config()
    [hubert] = provenance(cfg, "hubert")
    assert "trained here from scratch" in hubert and "tokens.hubert.weights: checkpoint" in hubert
    assert f"{cfg.tokens.hubert.scratch.steps} steps" in hubert
    [codec] = provenance(cfg, "encodec")
    assert "published 24 kHz EnCodec" in codec
    assert provenance(cfg, "whisper") == [] and provenance(cfg, "melrvq") == []
    published = load_config(overrides=["tokens.wav2vec2.weights=checkpoint",
                                        "tokens.wav2vec2.checkpoint=/w2v.pt"])
    assert provenance(published, "wav2vec2") == []
