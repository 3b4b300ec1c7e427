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


def open_questions(rows: Sequence[Mapping], path: str | Path, title: str) -> Path:
    """Rows of ``table.open_rows``: speedup and WER against tau (left) and against the head
    count (right), AR's WER as a dashed line; points without a figure are left out."""
    ar = next((r for r in rows if r["question"] == "AR"), {})
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, question, label in ((axes[0], "tau", "tolerance tau"),
                                (axes[1], "heads", "draft heads used")):
        points = [r for r in rows if r["question"] == question]
        xs = [r[question] for r in points]
        speed = [(x, r["speedup"]) for x, r in zip(xs, points, strict=True)
                 if r.get("speedup") is not None]
        wer = [(x, 100 * r["wer"]) for x, r in zip(xs, points, strict=True)
               if r.get("wer") is not None]
        if speed:
            ax.plot(*zip(*speed, strict=True), "o-", color="tab:blue", label="speedup")
        ax.set_xlabel(label)
        ax.set_ylabel("speedup against AR (x)", color="tab:blue")
        ax.set_xticks(xs)
        ax.grid(alpha=0.3)
        right = ax.twinx()
        if wer:
            right.plot(*zip(*wer, strict=True), "s--", color="tab:red", label="WER")
        if ar.get("wer") is not None:
            right.axhline(100 * ar["wer"], color="tab:red", alpha=0.4, linestyle=":",
                          label="AR WER")
        right.set_ylabel("judge WER %", color="tab:red")
        handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
        if handles:
            right.legend(handles=handles, fontsize="small", loc="best")
    fig.suptitle(title)
    return _save(fig, path)


def _save(fig: plt.Figure, path: str | Path) -> Path:
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
