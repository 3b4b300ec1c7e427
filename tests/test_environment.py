"""requirements.txt, pyproject.toml and environment.yml must pin the same packages."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+(?:\[[a-z,]+\])?)==([^\s;]+)", line)
        assert m, f"not an exact pin: {line!r}"
        pins[m.group(1).lower()] = m.group(2)
    return pins


def test_environment_yml_matches_requirements(repo: Path) -> None:
    req = _pins((repo / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((repo / "environment.yml").read_text())
    pip_lists = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert len(pip_lists) == 1
    assert "-e ." in pip_lists[0]  # the project itself
    assert _pins([p for p in pip_lists[0] if not p.startswith("-e")]) == req
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert any(d.startswith("python=3.11") for d in conda)
    assert "pip" in conda


def test_pyproject_matches_requirements(repo: Path) -> None:
    req = _pins((repo / "requirements.txt").read_text().splitlines())
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    declared = _pins(project["dependencies"] + project["optional-dependencies"]["test"])
    assert declared == req


def test_torch_pair_is_pinned(repo: Path) -> None:
    req = _pins((repo / "requirements.txt").read_text().splitlines())
    assert req["torch"] == "2.14.1" and req["torchaudio"] == "2.11.0"
