"""Shared fixtures. Tests never touch the network and never log to W&B."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ["WANDB_MODE"] = "disabled"
os.environ["WANDB_SILENT"] = "true"
os.environ["HF_HUB_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[1]


def voices_installed() -> bool:
    return shutil.which("flite") is not None and shutil.which("festival") is not None


requires_voices = pytest.mark.skipif(
    not voices_installed(),
    reason="flite/festival not installed: run `bash scripts/test.sh`, which installs them",
)


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def tiny_overrides(tmp_path: Path) -> list[str]:
    """Overrides that make any config write its results under a temporary directory."""
    return [f"results_dir={tmp_path / 'results'}", "tracking.backend=none"]
