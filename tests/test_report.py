"""The Snakemake report's templates (workflow/report/): the front page and every caption render
for every shipped config the way `snakemake --report` renders them, without reStructuredText
warnings, with the configuration's values, the main table and the embedded figures. The report
of a real run is built at the end of the tiny DAG smoke test (test_workflow.py)."""

from __future__ import annotations

import base64
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from docutils.core import publish_parts
from jinja2 import Environment

from vadusa import snakemake_report
from vadusa.config import Config, load_config
from vadusa.eval.table import to_html
from vadusa.plan import Plan
from vadusa.tracking.provenance import provenance_notes

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "workflow" / "report"
CAPTIONS = sorted(p for p in TEMPLATES.glob("*.rst") if p.name != "workflow.rst")
CONFIGS = sorted((REPO / "config").glob("*.yaml"))
# a 1x1 PNG: the figure directive embeds the bytes without decoding them
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhg"
                       "GAWjR9awAAAABJRU5ErkJggg==")


@dataclass(frozen=True)
class Category:  # what Snakemake's report hands the templates: named, hashable
    name: str


def render(template: Path, cfg: Config, categories: dict | None = None, **job: Any) -> str:
    """As snakemake/report/__init__.py renders a caption or the front page: Jinja with
    trim_blocks and lstrip_blocks, then docutils to HTML. Here a docutils warning (which the
    report would print into the page) raises. The templates see the config as
    workflow/rules/report.smk sets it: the resolved configuration, the plan's files."""
    snakemake_report.register()
    config = {"resolved": cfg.to_dict(), "plan": Plan(cfg).front_page_files(),
              "notes": provenance_notes(cfg)}
    text = Environment(trim_blocks=True, lstrip_blocks=True).from_string(
        template.read_text()).render(
        snakemake=types.SimpleNamespace(config=config, **job),
        categories=categories or {}, files=[])
    return publish_parts(text, writer="html",
                         settings_overrides={"halt_level": 2})["html_body"]


@pytest.mark.parametrize("config_file", CONFIGS, ids=lambda p: p.name)
def test_every_caption_and_the_front_page_render_for_every_config(config_file: Path) -> None:
    config = load_config([config_file])
    cfg = config.to_dict()
    for caption in CAPTIONS:
        for family in cfg["tokens"]["families"]:
            for rule in ("table", "table_all"):
                text = render(caption, config, rule=rule,
                              wildcards=types.SimpleNamespace(family=family, mode="frozen"))
                assert len(text) > 200, caption.name
                if "snakemake.wildcards.family" in caption.read_text():
                    assert family in text, caption.name
    # before the run: no table, no figures, still the method and the setup
    page = render(TEMPLATES / "workflow.rst", config)
    assert "holds no main table" in page and "data:image" not in page
    assert f"{cfg['results_dir']}/{cfg['experiment']}/config.yaml" in page  # the plan's
    assert f"temperature {cfg['decoding']['temperature']}" in page
    assert f"K = {cfg['heads']['count']}" in page
    assert f"{cfg['sweep']['trials']} trials" in page


def test_front_page_shows_the_main_table_and_plots_of_the_run(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    config = load_config([REPO / "config" / "config.yaml"])
    cfg = config.to_dict()
    monkeypatch.chdir(tmp_path)  # Snakemake's report reads the files from the workdir
    root = Path("results/default")
    files = {"main": root / "tables/main.html",
             "pareto": root / "sweep/whisper/frozen/pareto.png",
             "open": root / "tables/open_whisper.png",
             "other family's pareto": root / "sweep/hubert/frozen/pareto.png"}
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    files["main"].write_text(to_html([{"family": "whisper", "method": "AR", "wer": 0.5,
                                       "speedup": 1.0}]))
    for name in ("pareto", "open", "other family's pareto"):
        files[name].write_bytes(PNG)
    categories = {Category("Main results"): {Category("whisper"): [
                      types.SimpleNamespace(path=files["main"])]},
                  Category("Sweep"): {Category("whisper, frozen heads"): [
                      types.SimpleNamespace(path=files["pareto"]),
                      types.SimpleNamespace(path=files["other family's pareto"])]},
                  Category("Open questions"): {Category("whisper"): [
                      types.SimpleNamespace(path=files["open"])]}}
    page = render(TEMPLATES / "workflow.rst", config, categories)
    assert '<table class="vadusa-table">' in page and ">AR</td>" in page
    # the default family's two plots, as data (the report is one self-contained file)
    assert page.count("data:image/png;base64,") == 2
    assert base64.b64encode(PNG).decode() in page
    assert "holds no main table" not in page
    voices = cfg["corpus"]["synthetic"]["voices"]
    assert f"{len(voices)} voices ({', '.join(voices)})" in page
    assert "trained here from scratch" not in page  # a note of the table over every family
    # with it (reproduce_all): the families whose tokens come from models trained here
    # (hubert by default) are named as recipes; whisper's and melrvq's are not
    files["all"] = root / "tables/all.html"
    files["all"].write_text(files["main"].read_text())
    categories[Category("Main results")][Category("all families")] = [
        types.SimpleNamespace(path=files["all"])]
    page = render(TEMPLATES / "workflow.rst", config, categories)
    assert page.count("tokens come from a model trained here from scratch") == 1
    assert "tokens.hubert.weights: scratch" in page
    assert "tokens.encodec" not in page  # not among the embedded default's families
    assert "tokens.whisper.weights" not in page and "tokens.melrvq.weights" not in page


def test_front_page_style_targets_snakemakes_centring_box() -> None:
    """Snakemake centres the front page vertically in a scrolling box, so the top of a page
    taller than the window cannot be scrolled to (snakemake#2782). The front page's style
    aligns that box to the top; this checks that the installed Snakemake still draws the box
    with the classes the style selects, and that the rendered page carries the style."""
    import snakemake

    content_js = (Path(snakemake.__file__).parent / "report" / "html_reporter" / "template"
                  / "components" / "content.js").read_text()
    box = next(line for line in content_js.splitlines() if "overflow-auto" in line)
    assert {"h-screen", "overflow-auto", "items-center"} <= set(box.split('"')[1].split()), box
    page = render(TEMPLATES / "workflow.rst", load_config([REPO / "config" / "config.yaml"]), {})
    assert "div.h-screen.overflow-auto.items-center { align-items: flex-start; }" in page
