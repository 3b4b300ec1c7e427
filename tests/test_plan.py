"""The experiment's plan (vadusa.plan): paths as patterns and as files, the measured grids from
the `measure` section, and the config keys each stage's rerun digest covers. The workflow
builds on it: every rule's digest is its stage's, and no results path is built elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vadusa.config import ConfigError, HeadsConfig, load_config
from vadusa.plan import AR, OPEN_AR, READS, Plan, in_shell, mode_kind

REPO = Path(__file__).resolve().parents[1]


def plan_of(*overrides: str, files: tuple[Path, ...] = ()) -> Plan:
    return Plan(load_config(list(files), ["experiment=x", *overrides]))


def test_paths_are_wildcard_patterns_or_files() -> None:
    plan = plan_of()
    assert plan.root == "results/x"
    assert plan.heads() == "results/x/models/{family}/{mode}/heads.pt"
    assert plan.heads("whisper", "frozen") == "results/x/models/whisper/frozen/heads.pt"
    assert in_shell(plan.heads()) == "results/x/models/{wildcards.family}/{wildcards.mode}/heads.pt"
    assert plan.eval_metrics("whisper", plan.vadusa_system("joint", 3)) == \
        "results/x/eval/whisper/vadusa-joint-tau3/test/metrics.json"
    assert plan.evaluation("hubert", AR) == "results/x/eval/hubert/ar/test"
    assert plan.eval_metrics("whisper", plan.open_system(plan.open_setting(2, 4))) == \
        "results/x/eval/whisper/open/tau2-h4/test/metrics.json"
    assert plan.acceptance("whisper", "frozen", 3) == \
        "results/x/trees/whisper/frozen/tau3/acceptance.json"
    assert plan.table(plan.open_table_name("encodec"), "png") == "results/x/tables/open_encodec.png"
    assert plan.corpus() == "results/x/corpus"
    assert plan.tokens("whisper") == "results/x/tokens/whisper"
    # a Hydra mode races beside its MEDUSA twin (the twin's twins race), under its own name
    assert plan.race("whisper", "hydra-joint") == ("results/x/bench/whisper/twins-joint.json",
                                                   "hydra-joint")
    assert plan.bench_twins("whisper", "frozen") == "results/x/bench/whisper/twins-frozen.json"
    assert plan.race("whisper", "frozen") == ("results/x/bench/whisper/vadusa-frozen.json", "")
    # shared heads race in the frozen heads' races, tree race included
    assert plan.race("whisper", "shared", trees=True) == (
        "results/x/bench/whisper/trees-frozen.json", "shared")
    assert [mode_kind(m) for m in ("frozen", "joint", "hydra-joint", "shared", "frozen-k6")] == [
        "medusa", "medusa", "hydra", "shared", "medusa"]
    absolute = plan_of("results_dir=/data/runs")
    assert absolute.base("whisper") == "/data/runs/x/models/whisper/base/base.pt"


def test_the_measured_grids_come_from_the_measure_section() -> None:
    tiny = plan_of(files=(REPO / "config" / "tiny.yaml",))  # 2 heads; open: tau 1, 3; heads 1, 3
    assert tiny.vadusa_evaluations(["whisper"]) == [
        ("whisper", mode, 3) for mode in ("frozen", "joint", "hydra", "hydra-joint", "shared")]
    assert tiny.twins_of() == {"frozen": ["hydra", "shared"], "joint": ["hydra-joint"]}
    # Hydra and shared heads: the default family's only, unless measure.hydra_shared_families
    assert tiny.twins_of("whisper") == tiny.twins_of() and tiny.twins_of("hubert") == {}
    assert tiny.head_modes("hubert") == ["frozen", "joint"]
    assert tiny.swept_modes("hubert") == ["frozen"] and tiny.swept_modes() == ["frozen", "hydra"]
    assert [m for _, m, _ in tiny.vadusa_evaluations(["whisper", "melrvq"])] == [
        "frozen", "joint", "hydra", "hydra-joint", "shared", "frozen", "joint"]
    every = plan_of("measure.hydra_shared_families=all", files=(REPO / "config" / "tiny.yaml",))
    assert every.head_modes("hubert") == tiny.head_modes("whisper")
    with pytest.raises(ConfigError, match="hydra_shared_families"):
        plan_of("measure.hydra_shared_families=some")
    assert tiny.calibrations(["whisper", "hubert"]) == [("whisper", "frozen", 3),
                                                        ("hubert", "frozen", 3)]
    assert tiny.open_questions() == [("tau", 1, 2), ("tau", 3, 2), ("heads", 3, 1),
                                     ("heads", 3, 3)]
    assert tiny.open_settings() == {"tau1-h2": (1, 2), "tau3-h1": (3, 1), "tau3-h2": (3, 2),
                                    "tau3-h3": (3, 3)}
    assert OPEN_AR not in tiny.open_settings()
    assert all(tiny.open_setting_values(name) == values
               for name, values in tiny.open_settings().items())
    with pytest.raises(ValueError, match="no open-question setting"):
        tiny.open_setting_values(OPEN_AR)
    # 3 heads asked about, 2 trained: one frozen model with 3 heads answers
    assert tiny.open_model("whisper") == "results/x/models/whisper/frozen-k3/heads.pt"
    assert plan_of("measure.open_heads=[2, 4]").open_model("whisper") == \
        "results/x/models/whisper/frozen/heads.pt"
    no_hydra = plan_of("measure.hydra=false", "measure.shared=false", "measure.eval_taus=[2, 3]")
    assert no_hydra.head_modes() == ["frozen", "joint"] and no_hydra.hydra_of() == {}
    assert no_hydra.twins_of() == {}
    assert plan_of("measure.hydra=false").twins_of() == {"frozen": ["shared"]}
    assert no_hydra.swept_modes() == ["frozen"] and no_hydra.first_tau() == 2
    assert no_hydra.vadusa_evaluations(["whisper"]) == [
        ("whisper", "frozen", 2), ("whisper", "frozen", 3), ("whisper", "joint", 2),
        ("whisper", "joint", 3)]


def test_each_digest_tracks_what_its_stage_reads() -> None:
    base = plan_of()

    def moved(stage: str, *overrides: str) -> bool:
        return plan_of(*overrides).digest(stage) != base.digest(stage)

    # an evaluation's tau and method come from its wildcards, not from the config
    assert not moved("evaluate_vadusa", "decoding.tau=3", "decoding.method=vadusa")
    assert moved("evaluate_vadusa", "decoding.temperature=1.0")
    assert not moved("calibrate", "decoding.tau=4")
    assert not moved("bench_vadusa", "decoding.tau=2", "decoding.heads=1")
    assert moved("bench_vadusa", "measure.bench_taus=[1]")
    # heads are trained on the heads section: measuring other settings retrains nothing
    assert not moved("train_heads", "measure.bench_taus=[1]", "measure.open_heads=[2]",
                     "measure.eval_taus=[2]", "measure.hydra=false", "measure.shared=false")
    assert moved("train_heads", "heads.lr=0.5") and moved("train_heads", "seed=3")
    assert not moved("train_draft", "measure.bench_draft_tokens=[3]")
    assert moved("bench_draft", "measure.bench_draft_tokens=[3]")
    assert base.reads("fit_kmeans", "hubert")[0][0] == "tokens.hubert"
    assert set(HeadsConfig.training_keys()) <= set(READS["train_heads"][0])
    for stage in READS:  # every key named exists
        assert len(base.digest(stage, "hubert")) == 12, stage


def _rules() -> dict[str, str]:
    """Rule name -> its body, from workflow/rules/*.smk."""
    rules = {}
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        parts = re.split(r"^rule (\w+):\n", path.read_text(), flags=re.M)
        rules |= dict(zip(parts[1::2], parts[2::2], strict=True))
    return rules


def test_every_rule_digest_is_its_stages_from_the_plan() -> None:
    rules = _rules()
    digested = {name: body for name, body in rules.items() if "config_digest=" in body}
    for name, body in digested.items():
        stage = re.search(r"config_digest=(?:lambda \w+: )?PLAN\.digest\(\"(\w+)\"", body)
        assert stage is not None and stage.group(1) == name, name
    assert set(digested) == set(READS)


@pytest.mark.parametrize("pattern", [r"\{RESULTS\}", r"experiment_dir\s*/", r"f\"results/"])
def test_no_results_path_is_built_outside_the_plan(pattern: str) -> None:
    files = [*(REPO / "src" / "vadusa").rglob("*.py"), *(REPO / "workflow").rglob("*.smk"),
             REPO / "Snakefile", *(REPO / "scripts").glob("*.py")]
    offenders = [str(f.relative_to(REPO)) for f in files
                 if f.name != "plan.py" and re.search(pattern, f.read_text())]
    assert offenders == []
