"""Figures (matplotlib, headless): one function per picture, each writes a PNG and returns it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # no display on clusters and CI
import matplotlib.pyplot as plt  # noqa: E402

if TYPE_CHECKING:
    import numpy as np


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
    return save_figure(fig, path)


def sorted_bars(values: Sequence[float], path: str | Path, title: str, ylabel: str) -> Path:
    """Values sorted from largest to smallest (a rank plot, e.g. cluster usage)."""
    ordered = sorted(values, reverse=True)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(range(len(ordered)), ordered, width=1.0)
    ax.set_xlabel("rank")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


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
    return save_figure(fig, path)


def speed_vs_wer(series: Mapping[str, Sequence[Mapping]], path: str | Path, title: str) -> Path:
    """WER against speedup, one marker style per series (methods, sweep trials...); a point's
    ``label``, if any, is written next to it; AR sits at 1x."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    markers = "*osD^vPX<>"
    for n, (name, points) in enumerate(series.items()):
        if not points:
            continue
        cloud = len(points) > 12  # sweep trials: many small, faint points
        ax.scatter([p["speedup"] for p in points], [100 * p["wer"] for p in points],
                   marker=markers[n % len(markers)], s=12 if cloud else 60,
                   alpha=0.35 if cloud else 0.9, label=name, zorder=2 if cloud else 3)
        for p in points:
            if p.get("label") and not cloud:
                ax.annotate(str(p["label"]), (p["speedup"], 100 * p["wer"]), fontsize=7,
                            xytext=(4, 3), textcoords="offset points")
    ax.axvline(1.0, color="grey", linestyle=":", alpha=0.6)
    ax.set_xlabel("speedup against AR (x)")
    ax.set_ylabel("judge WER %")
    return _finish(fig, ax, title, path)


def accepted_vs_tau(curves: Mapping[str, Sequence[tuple[float, float]]], path: str | Path,
                    title: str) -> Path:
    """Mean accepted length (tokens per forward) against the tolerance tau, one line per
    curve (heads mode, heads used, tree); AR accepts 1."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    taus: set[float] = set()
    for name, points in curves.items():
        points = sorted(points)
        taus.update(x for x, _ in points)
        ax.plot([x for x, _ in points], [y for _, y in points], "o-", label=name)
    ax.axhline(1.0, color="grey", linestyle=":", alpha=0.6, label="AR")
    ax.set_xticks(sorted(taus))
    ax.set_xlabel("tolerance tau")
    ax.set_ylabel("mean accepted length (tokens per forward)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return save_figure(fig, path)


def tree_vs_time(series: Mapping[str, Sequence[Mapping]], baselines: Mapping[str, float],
                 path: str | Path, title: str) -> Path:
    """Milliseconds per decoding step against the tree's node count, one line per series (a
    chain is its own point), each point labelled with its accepted length; the baseline of a
    series (AR's step in the same race), if given, a dashed line in its colour."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for n, (name, points) in enumerate(series.items()):
        color = f"C{n}"
        trees = sorted((p for p in points if not p.get("chain")), key=lambda p: p["nodes"])
        chains = [p for p in points if p.get("chain")]
        if trees:
            ax.plot([p["nodes"] for p in trees], [p["ms_per_step"] for p in trees], "o-",
                    color=color, label=name)
        if chains:
            ax.scatter([p["nodes"] for p in chains], [p["ms_per_step"] for p in chains],
                       marker="^", color=color, label=f"{name}, chains")
        for p in trees + chains:  # series alternate above and below, not on top of each other
            ax.annotate(f"{p['accepted']:.2f}", (p["nodes"], p["ms_per_step"]), fontsize=7,
                        color=color, xytext=(5, 3 if n % 2 == 0 else -10),
                        textcoords="offset points")
        if name in baselines:
            ax.axhline(baselines[name], linestyle="--", color=color, alpha=0.6,
                       label=f"AR step ({name} race)")
    ax.set_xscale("log", base=2)
    nodes = sorted({p["nodes"] for points in series.values() for p in points})
    ax.set_xticks(nodes, [str(n) for n in nodes])  # the sizes raced, not powers of two
    ax.minorticks_off()
    ax.set_xlabel("tree size (nodes); labels: mean accepted length")
    ax.set_ylabel("ms per decoding step (forward)")
    return _finish(fig, ax, title, path)


def training_curves(panels: Mapping[str, Mapping[str, Sequence[tuple[int, float]]]],
                    path: str | Path, title: str) -> Path:
    """A training run's curves: one panel per quantity (its y label), one line per series of
    (step, value) points, against the training step."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(6.4, 2.8 * len(panels)), sharex=True,
                             squeeze=False)
    for ax, (ylabel, series) in zip(axes[:, 0], panels.items(), strict=True):
        for name, points in series.items():
            points = sorted(points)
            ax.plot([x for x, _ in points], [y for _, y in points],
                    "o-" if len(points) <= 30 else "-", markersize=3, label=name)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small", loc="best")
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("training step")
    return save_figure(fig, path)


def _finish(fig: plt.Figure, ax: plt.Axes, title: str, path: str | Path) -> Path:
    """Title, grid, a legend if anything is labelled, then save."""
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", loc="best")
    return save_figure(fig, path)


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def phone_spans(ax: plt.Axes, wave: np.ndarray, rate: int, title: str,
                spans: tuple[int, Sequence[str], Sequence[int]] | None, frame_rate: float,
                end_line: bool = False) -> None:
    """One panel: the log-mel spectrogram of ``wave`` and, with ``spans`` = (lead frames,
    symbols, frames per symbol), a line where each spoken symbol begins and its label (and
    with ``end_line`` a cyan line where the spans end)."""
    import torch  # noqa: PLC0415  (torch only for the panels that need a spectrogram)
    import torchaudio  # noqa: PLC0415

    hop = rate // 100
    mel = torchaudio.transforms.MelSpectrogram(rate, n_fft=4 * hop, hop_length=hop,
                                               n_mels=64)(torch.from_numpy(wave))
    ax.imshow(mel.clamp_min(1e-5).log().numpy(), origin="lower", aspect="auto",
              extent=(0, len(wave) / rate, 0, 64), cmap="magma")
    if spans is not None:
        t, symbols, frames = spans
        for symbol, n in zip(symbols, frames, strict=True):
            if n == 0:
                continue
            ax.axvline(t / frame_rate, color="white", lw=0.6, alpha=0.8)
            ax.text((t + n / 2) / frame_rate, 58, symbol, color="white", ha="center",
                    fontsize=8)
            t += n
        if end_line:
            ax.axvline(t / frame_rate, color="cyan", lw=1.2)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("mel band")


def stacked_panels(count: int, height: float = 2.5) -> tuple[plt.Figure, list[plt.Axes]]:
    """A figure of ``count`` full-width panels, one above the other."""
    fig, axes = plt.subplots(count, 1, figsize=(14, height * count), squeeze=False)
    return fig, list(axes[:, 0])
