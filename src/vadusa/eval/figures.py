"""Figures (matplotlib, headless): one function per picture, each writes a PNG and returns it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on clusters and CI
import matplotlib.pyplot as plt  # noqa: E402


def grouped_bars(
    values: Mapping[str, Mapping[str, float]],
    groups: Sequence[str],
    path: str | Path,
    title: str,
    ylabel: str,
) -> Path:
    """One cluster of bars per key of ``values`` (e.g. a speaker), one bar per group (a split)."""
    names = list(values)
    width = 0.8 / max(1, len(groups))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(names) + 2), 4))
    for i, group in enumerate(groups):
        xs = [n + (i - (len(groups) - 1) / 2) * width for n in range(len(names))]
        ax.bar(xs, [values[name].get(group, 0.0) for name in names], width, label=group)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(groups) > 1:
        ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def sorted_bars(values: Sequence[float], path: str | Path, title: str, ylabel: str) -> Path:
    """Values sorted from largest to smallest (a rank plot, e.g. cluster usage)."""
    ordered = sorted(values, reverse=True)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(range(len(ordered)), ordered, width=1.0)
    ax.set_xlabel("rank")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _save(fig: plt.Figure, path: str | Path) -> Path:
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
