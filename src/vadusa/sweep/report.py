"""What a finished (or running) sweep shows: trials and Pareto front as CSV, the chosen
setting as a config file the decoder reads, and plots.

    trials.csv    one row per trial: number, state, parameters, every figure measured
    pareto.csv    the completed trials no other trial beats on both speedup and WER
    chosen.yaml   ``decoding:`` of the chosen trial: ``vadusa decode --config chosen.yaml``
    pareto.png    WER against speedup, the front joined, AR at 1x
    tau.png       tau against speedup and WER
    heads.png     heads used against mean accepted length
    tree.png      tree size against time per forward (AR's step for reference)
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import yaml  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402

from vadusa.atomic import write_text_atomic  # noqa: E402
from vadusa.config import SweepConfig  # noqa: E402

PARAMS = ("tau", "heads", "tree", "temperature", "top_k")


def trial_row(trial: FrozenTrial) -> dict[str, Any]:
    row: dict[str, Any] = {"number": trial.number, "state": trial.state.name}
    row |= {p: trial.params.get(p, "") for p in PARAMS}
    row |= {k: v for k, v in sorted(trial.user_attrs.items()) if k != "worker"}
    row["worker"] = trial.user_attrs.get("worker", "")
    row["seconds"] = (trial.duration.total_seconds() if trial.duration is not None else "")
    return row


def pareto_front(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Completed trials that no other completed trial dominates (speedup up, WER down),
    fastest first."""
    done = [t for t in trials if t.state == TrialState.COMPLETE]

    def dominates(a: FrozenTrial, b: FrozenTrial) -> bool:
        (sa, wa), (sb, wb) = a.values, b.values
        return sa >= sb and wa <= wb and (sa > sb or wa < wb)

    front = [t for t in done if not any(dominates(o, t) for o in done)]
    return sorted(front, key=lambda t: -t.values[0])


def choose(front: list[FrozenTrial], max_wer_increase: float) -> FrozenTrial:
    """The fastest front trial whose WER is at most AR's (same sampling) + the allowance;
    if none is, the front's lowest WER."""
    if not front:
        raise ValueError("no completed trials to choose from")
    fine = [t for t in front
            if t.values[1] <= float(t.user_attrs.get("ar_wer", float("inf"))) + max_wer_increase]
    if fine:
        return max(fine, key=lambda t: t.values[0])
    return min(front, key=lambda t: (t.values[1], -t.values[0]))


def chosen_config(trial: FrozenTrial) -> dict[str, Any]:
    """The trial's setting as a partial config (schema-valid)."""
    p = trial.params
    return {"decoding": {"method": "vadusa", "acceptance": "tolerance", "tau": int(p["tau"]),
                         "heads": int(p["heads"]), "tree": str(p["tree"]),
                         "temperature": float(p["temperature"]), "top_k": int(p["top_k"])}}


def _csv(rows: list[dict[str, Any]]) -> str:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_report(study: optuna.Study, sweep: SweepConfig, out_dir: Path,
                 split: str | None = None, judge: str = "") -> dict[str, Any]:
    """Write every output; returns a summary (counts, the chosen trial, the front).
    ``chosen.yaml`` says which split chose the setting (``split``, default ``sweep.split``)
    and which judge scored it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    front = pareto_front(trials)
    write_text_atomic(out_dir / "trials.csv", _csv([trial_row(t) for t in trials]))
    write_text_atomic(out_dir / "pareto.csv", _csv([trial_row(t) for t in front]))
    summary: dict[str, Any] = {
        "study": study.study_name,
        "trials": {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState},
        "pareto": [trial_row(t) for t in front]}
    if front:
        best = choose(front, sweep.max_wer_increase)
        header = (f"# vadusa sweep {study.study_name}: trial {best.number}, speedup "
                  f"{best.values[0]:.2f}x, WER {100 * best.values[1]:.1f} % (AR "
                  f"{100 * float(best.user_attrs.get('ar_wer', float('nan'))):.1f} %)\n"
                  f"# chosen on the {split or sweep.split} split"
                  + (f", judged by {judge}" if judge else "") + "\n")
        write_text_atomic(out_dir / "chosen.yaml",
                          header + yaml.safe_dump(chosen_config(best), sort_keys=False))
        summary["chosen"] = trial_row(best)
        plot(trials, front, best, out_dir)
    return summary


def plot(trials: list[FrozenTrial], front: list[FrozenTrial], best: FrozenTrial,
         out_dir: Path) -> None:
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    speed = [t.values[0] for t in done]
    wer = [100 * t.values[1] for t in done]

    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.scatter(speed, wer, s=18, color="0.6", label="trials")
    ax.plot([t.values[0] for t in front], [100 * t.values[1] for t in front], "o-",
            color="C0", label="Pareto front")
    ar_wer = [100 * float(t.user_attrs["ar_wer"]) for t in done if "ar_wer" in t.user_attrs]
    if ar_wer:
        ax.scatter([1.0], [sum(ar_wer) / len(ar_wer)], marker="s", color="C3",
                   label="AR (mean over trials)")
    ax.scatter([best.values[0]], [100 * best.values[1]], marker="*", s=160, color="C1",
               zorder=3, label=f"chosen (trial {best.number})")
    ax.set_xlabel("speedup against AR (same run)")
    ax.set_ylabel("WER %")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "pareto.png", dpi=120)
    plt.close(fig)

    def by(param: str, figure: str, scale: float = 1.0) -> tuple[list[Any], list[float]]:
        pairs = [(t.params[param], scale * float(t.user_attrs[figure])) for t in done
                 if param in t.params and figure in t.user_attrs]
        return [p for p, _ in pairs], [v for _, v in pairs]

    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.4))
    left.scatter(*by("tau", "speedup"), s=18)
    left.set_xlabel("tau")
    left.set_ylabel("speedup")
    right.scatter(*by("tau", "wer", 100), s=18, color="C2")
    right.set_xlabel("tau")
    right.set_ylabel("WER %")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "tau.png", dpi=120)
    plt.close(fig)

    for name, param, figure, label in (("heads", "heads", "mean_accepted",
                                        "mean accepted length (tokens per forward)"),
                                       ("tree", "tree", "ms_per_forward",
                                        "ms per forward")):
        fig, ax = plt.subplots(figsize=(5, 3.4))
        ax.scatter(*by(param, figure), s=18)
        if name == "tree":
            ar_ms = [float(t.user_attrs["ar_ms_per_forward"]) for t in done
                     if "ar_ms_per_forward" in t.user_attrs]
            if ar_ms:
                ax.axhline(sum(ar_ms) / len(ar_ms), color="C3", ls="--", label="AR step")
                ax.legend(fontsize=8)
            ax.set_xscale("log", base=2)
        ax.set_xlabel("tree nodes" if name == "tree" else "draft heads used")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out_dir / f"{name}.png", dpi=120)
        plt.close(fig)
