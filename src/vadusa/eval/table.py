"""``vadusa table``: the main table, laid out like the paper's, from the DAG's results.

One row per token family x method: AR, VADUSA (draft heads on the frozen base) and VADUSA-wt
(base and heads trained together), each at every tolerance tau and head count benchmarked,
MEDUSA's typical acceptance, and a classic draft model (speculative sampling, lossless) at
each gamma benchmarked. Columns: WER, CER, SIM, mean accepted length, speedup per token (the
headline: tokens/s over AR's), wall-time speedup, the physical bound (accepted length x the
time of a bare 1-token forward over that of the pass) and the share of it reached, RTF.

Where each figure comes from (all under ``results/<experiment>/``):

    speed: bench/<family>/vadusa-<mode>.json   every setting and AR decode the same test
                                               utterances in one process; the speedup is
                                               against the faster AR at batch 1 (bench.py);
                                               Hydra heads' settings (heads_from hydra,
                                               hydra-joint) are in frozen's and joint's
    AR speed: bench/<family>/ar.json           that baseline row
    draft model: bench/<family>/draft.json, eval/<family>/draft/test/metrics.json
    floors: resynth/<family>/{test,librivox}/metrics.json   the test recordings (and the five
                                               LibriVox ones) themselves and their round trip
                                               through tokens and the vocoder, judged alike:
                                               the best WER any method can reach;
                                               resynth/copy/<source>/metrics.json: copy
                                               synthesis, HiFi-GAN's own ceiling
    quality: eval/<family>/<method>/test/metrics.json   WER, CER (Whisper judge), SIM, with
                                               bootstrap intervals; only the settings the
                                               DAG evaluates (heads.eval_taus, all heads,
                                               decoding.tree) have them: "-" elsewhere
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import Any

from vadusa.decoding.bench import baseline_row

MODES = {"frozen": "VADUSA", "joint": "VADUSA-wt", "hydra": "VADUSA, Hydra heads",
         "hydra-joint": "VADUSA-wt, Hydra heads"}
# Hydra heads race beside the MEDUSA heads of their mode, in that mode's bench
RACED_IN = {"hydra": "frozen", "hydra-joint": "joint"}
COLUMNS = ("family", "method", "tau", "heads", "tree", "wer", "cer", "sim", "accepted",
           "speedup", "wall_speedup", "bound", "bound_fraction", "rtf")


class TableError(ValueError):
    pass


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _quality(metrics: dict[str, Any] | None) -> dict[str, Any]:
    if metrics is None:
        return {}
    ci = metrics.get("ci", {})
    return {"wer": metrics["wer"], "cer": metrics["cer"], "sim": metrics.get("sim"),
            "wer_ci": [ci["wer"]["low"], ci["wer"]["high"]] if "wer" in ci else None}


def _speed(bench_row: dict[str, Any]) -> dict[str, Any]:
    """A race's speed columns: the headline is the per-token rate ratio (a tolerance that
    ends utterances earlier or later changes the wall time without changing the speed), the
    wall-time ratio beside it, and the physical bound with the share of it reached."""
    return {"speedup": bench_row.get("rate_speedup", bench_row["speedup"]),
            "wall_speedup": bench_row["speedup"], "bound": bench_row.get("bound"),
            "bound_fraction": bench_row.get("bound_fraction")}


def race_rows(root: Path, family: str, mode: str) -> list[dict[str, Any]]:
    """The bench rows of one heads mode: its own race's (``bench/<family>/vadusa-<mode>.json``),
    or, for a Hydra mode, its settings in the race of the MEDUSA mode it ran beside (rows with
    ``heads_from`` = the mode), AR rows included."""
    if mode in RACED_IN:
        raced = _read(root / "bench" / family / f"vadusa-{RACED_IN[mode]}.json") or []
        rows = [r for r in raced if r.get("heads_from") == mode]
        if rows:
            return [r for r in raced if r["method"] == "ar"] + rows
    own = _read(root / "bench" / family / f"vadusa-{mode}.json") or []
    return [r for r in own if not r.get("heads_from")]


def floor_rows(root: Path, family: str, librivox: bool = True) -> list[dict[str, Any]]:
    """The quality floors of one family, for context: the judge on the test recordings, on
    their copy synthesis (each recording's own mel through HiFi-GAN: the vocoder's ceiling) and
    on their resynthesis (audio -> tokens -> vocoder); then, with ``librivox``, the same round
    trip on the five LibriVox recordings (real speech of speakers never seen here). Each row is
    there when its ``resynthesize`` run is."""
    blank = {"family": family, "tau": "", "heads": "", "tree": "", "sim": None,
             "accepted": None, "speedup": None, "wall_speedup": None, "rtf": None}

    def judged(metrics: dict[str, Any], method: str, key: str = "") -> dict[str, Any]:
        ci = metrics.get("ci", {}).get(f"{key}wer")
        return blank | {"method": method, "wer": metrics[f"{key}wer"],
                        "cer": metrics[f"{key}cer"],
                        "wer_ci": [ci["low"], ci["high"]] if ci else None}

    rows = []
    sources = [("test", "")] + ([("librivox", "LibriVox: ")] if librivox else [])
    for source, label in sources:
        resynth = _read(root / "resynth" / family / source / "metrics.json")
        copy = _read(root / "resynth" / "copy" / source / "metrics.json")
        if resynth is not None:
            rows.append(judged(resynth, f"{label}recordings (judge floor)", "input_"))
        if copy is not None:
            rows.append(judged(copy, f"{label}copy synthesis (mel -> HiFi-GAN)"))
        if resynth is not None:
            rows.append(judged(resynth, f"{label}resynthesis (tokens -> vocoder)"))
    return rows


def family_rows(root: Path, family: str) -> list[dict[str, Any]]:
    """The rows of one family, in the paper's order: the quality floors, AR, then each method
    by heads and tau."""
    ar_bench = _read(root / "bench" / family / "ar.json")
    ar_eval = _read(root / "eval" / family / "ar" / "test" / "metrics.json")
    if ar_bench is None and ar_eval is None:
        return []
    rows = floor_rows(root, family)
    ar = {"family": family, "method": "AR", "tau": "", "heads": "", "tree": "",
          "accepted": 1.0, "speedup": 1.0, "wall_speedup": 1.0} | _quality(ar_eval)
    if ar_bench:
        ar["rtf"] = baseline_row(ar_bench)["real_time_factor"]
    rows.append(ar)
    for mode, label in MODES.items():
        settings = [r for r in race_rows(root, family, mode) if r["method"] == "vadusa"]
        if not settings:
            continue
        all_heads = max(r["heads"] for r in settings)
        heads_name = label if label.endswith("heads") else f"{label} heads"
        for r in sorted(settings, key=lambda r: (r["acceptance"] != "tolerance", r["heads"],
                                                 r["tau"])):
            typical = r["acceptance"] == "typical"
            row = {"family": family, "tree": r["tree"], "heads": r["heads"],
                   "method": f"typical acceptance ({heads_name})" if typical else label,
                   "tau": "" if typical else r["tau"], "accepted": r["mean_accepted"],
                   "rtf": r["real_time_factor"]} | _speed(r)
            if not typical and r["heads"] == all_heads:
                metrics = _read(root / "eval" / family / f"vadusa-{mode}-tau{r['tau']}"
                                / "test" / "metrics.json")
                if metrics is not None and str(metrics["decoding"]["tree"]) == str(r["tree"]):
                    row |= _quality(metrics)
            rows.append(row)
    # a classic draft model (decoding/speculative.py): raced against AR in its own bench
    draft_eval = _read(root / "eval" / family / "draft" / "test" / "metrics.json")
    for r in _read(root / "bench" / family / "draft.json") or []:
        if r["method"] != "draft":
            continue
        row = {"family": family, "method": f"draft model, gamma {r['gamma']}", "tau": "",
               "heads": "", "tree": "", "accepted": r["mean_accepted"],
               "rtf": r["real_time_factor"]} | _speed(r)
        if draft_eval is not None and draft_eval["decoding"].get("draft_tokens") == r["gamma"]:
            row |= _quality(draft_eval)
        rows.append(row)
    return rows


OPEN_COLUMNS = ("family", "question", "tau", "heads", "tree", "wer", "cer", "sim", "accepted",
                "speedup", "rtf")


def open_rows(root: Path, family: str, taus: list[int], heads: list[int], tau_for_heads: int,
              heads_for_taus: int) -> list[dict[str, Any]]:
    """The open questions of one family (target ``open_questions``): one row per tau at
    ``heads_for_taus`` heads, then one per head count at ``tau_for_heads``. Speed from
    ``bench/<family>/open.json`` (every setting raced against AR in one run), quality from
    ``eval/<family>/open/tau<t>-h<k>/test/metrics.json``; AR's own figures come first."""
    bench = _read(root / "bench" / family / "open.json")
    if bench is None:
        raise TableError(f"{root}/bench/{family}/open.json is missing: run "
                         f"`snakemake open_questions` first")
    speed = {(r["tau"], r["heads"]): r for r in bench
             if r["method"] == "vadusa" and r["acceptance"] == "tolerance"}
    ar_eval = _read(root / "eval" / family / "open" / "ar" / "test" / "metrics.json")
    rows = [{"family": family, "question": "AR", "tau": "", "heads": "", "tree": "",
             "accepted": 1.0, "speedup": 1.0, "rtf": baseline_row(bench)["real_time_factor"]}
            | _quality(ar_eval)]
    grid = ([("tau", t, heads_for_taus) for t in taus]
            + [("heads", tau_for_heads, k) for k in heads])
    for question, tau, k in grid:
        row = {"family": family, "question": question, "tau": tau, "heads": k}
        if (tau, k) in speed:
            r = speed[(tau, k)]
            row |= {"tree": r["tree"], "accepted": r["mean_accepted"], "speedup": r["speedup"],
                    "rtf": r["real_time_factor"]}
        row |= _quality(_read(root / "eval" / family / "open" / f"tau{tau}-h{k}" / "test"
                              / "metrics.json"))
        rows.append(row)
    return rows


ABLATION_COLUMNS = ("method", "settings", "wer", "cer", "ratio", "paired", "dev_loss",
                    "dev_acc", "minutes")


def paired_difference(metrics: dict[str, Any], reference: dict[str, Any]
                      ) -> dict[str, float | int] | None:
    """WER of ``metrics`` minus WER of ``reference`` on the utterances both judged, with its
    paired bootstrap interval (each resample draws utterances, both models' errors with them);
    None without common utterances."""
    from vadusa.eval.stats import bootstrap_ratio  # noqa: PLC0415

    ours = {r["id"]: r for r in metrics.get("per_utterance", [])}
    theirs = {r["id"]: r for r in reference.get("per_utterance", [])}
    common = sorted(set(ours) & set(theirs))
    if not common:
        return None
    return bootstrap_ratio([ours[i]["word_errors"] - theirs[i]["word_errors"] for i in common],
                           [theirs[i]["words"] for i in common])


def _model_row(model: Path, metrics: Path, name: str, settings: str,
               floor: float | None, reference: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """One AR model of the ablation: its training (dev loss and accuracy, minutes) from the
    checkpoint's metadata, its test quality from its evaluation, and with ``reference`` (the
    configured model's evaluation) the paired WER difference to it."""
    from vadusa.checkpoint import load_checkpoint  # noqa: PLC0415  (torch only where needed)

    row: dict[str, Any] = {"method": name, "settings": settings}
    if model.is_file():
        blob = load_checkpoint(model)
        meta, steps = blob["meta"], blob["config"]["train"]["steps"]
        row |= {"dev_loss": meta["dev"].get("dev/loss"), "dev_acc": meta["dev"].get("dev/acc"),
                "minutes": meta.get("seconds_per_step", 0.0) * steps / 60}
    judged = _read(metrics)
    row |= _quality(judged)
    if floor and row.get("wer") is not None:
        row["ratio"] = row["wer"] / floor
    difference = (paired_difference(judged, reference)
                  if judged is not None and reference is not None else None)
    if difference is not None:
        row |= {"paired": difference["mean"],
                "paired_ci": [difference["low"], difference["high"]]}
    return row


def ablation_rows(root: Path, family: str, configured: str,
                  variants: dict[str, tuple[str, ...]]) -> list[dict[str, Any]]:
    """The alignment ablation of one family: the resynthesis floor, the configured model
    (``configured``: its settings the variants vary, as text), then each variant (``snakemake
    ablation``)."""
    resynth = _read(root / "resynth" / family / "test" / "metrics.json")
    floor = resynth["wer"] if resynth else None
    rows = [{"method": r["method"], "settings": "", "wer": r["wer"], "cer": r["cer"],
             "wer_ci": r["wer_ci"]} for r in floor_rows(root, family, librivox=False)]
    evaluation = root / "eval" / family / "ar" / "test" / "metrics.json"
    rows.append(_model_row(root / "models" / family / "base" / "base.pt", evaluation,
                           "AR, the configured model", configured, floor))
    reference = _read(evaluation)
    for name, overrides in variants.items():
        where = root / "ablation" / family / name
        rows.append(_model_row(where / "base.pt", where / "test" / "metrics.json",
                               f"AR, {name}", ", ".join(overrides), floor, reference))
    if all(r.get("wer") is None for r in rows):
        raise TableError(f"no evaluations under {root} for {family}: run `snakemake "
                         f"ablation` first")
    return rows


def main_table(root: Path, families: list[str]) -> list[dict[str, Any]]:
    rows = [row for family in families for row in family_rows(root, family)]
    if not rows:
        raise TableError(f"no results under {root}/eval or {root}/bench for families "
                         f"{families}: run the DAG first (`snakemake models vadusa`)")
    return rows


def format_cell(row: dict[str, Any], key: str) -> str:
    """One cell as the tables print it (WER and CER in %, with the WER interval)."""
    value = row.get(key)
    if value is None or value == "":
        return "-"
    if key in ("wer", "cer"):
        text = f"{100 * value:.1f}"
        if key == "wer" and row.get("wer_ci"):
            low, high = row["wer_ci"]
            text += f" [{100 * low:.1f}, {100 * high:.1f}]"
        return text
    if key == "sim":
        return f"{value:.3f}"
    if key == "accepted":
        return f"{value:.2f}"
    if key in ("speedup", "wall_speedup", "bound"):
        return f"{value:.2f}x"
    if key == "bound_fraction":
        return f"{100 * value:.0f} %"
    if key == "rtf" or key in ("dev_loss", "dev_acc"):
        return f"{value:.3f}"
    if key == "ratio":
        return f"{value:.2f}x"
    if key == "paired":
        low, high = row["paired_ci"]
        return f"{100 * value:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"
    if key == "minutes":
        return f"{value:.1f}"
    return str(value)


TEXT_COLUMNS = ("family", "method", "question", "settings")
HEADER = {"family": "family", "method": "method", "question": "varied", "tau": "tau",
          "heads": "heads", "tree": "tree", "wer": "WER % [95 % CI]", "cer": "CER %", "sim": "SIM",
          "accepted": "accepted length", "speedup": "speedup per token",
          "wall_speedup": "wall-time speedup", "bound": "bound", "bound_fraction": "of bound",
          "rtf": "RTF",
          "settings": "settings", "ratio": "WER / resynthesis WER", "dev_loss": "dev loss",
          "dev_acc": "dev top-1", "minutes": "training minutes",
          "paired": "WER - configured model's, same utterances [95 % CI]"}


def to_markdown(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> str:
    lines = ["| " + " | ".join(HEADER[c] for c in columns) + " |",
             "|" + "|".join("---" if c in TEXT_COLUMNS else "---:" for c in columns) + "|"]
    lines += ["| " + " | ".join(format_cell(r, c) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


# Scoped to the table's class: the Snakemake report pastes this file into its front page, where
# an unscoped rule would restyle the whole page.
_HTML_STYLE = """\
table.vadusa-table { border-collapse: collapse; color: #111; background: #fff;
  font: 13px/1.4 system-ui, sans-serif; }
table.vadusa-table th, table.vadusa-table td { padding: 3px 8px; text-align: right;
  border-bottom: 1px solid #ddd; white-space: nowrap; font-variant-numeric: tabular-nums; }
table.vadusa-table th { border-bottom: 2px solid #888; vertical-align: bottom; }
table.vadusa-table .text { text-align: left; white-space: normal; }
table.vadusa-table tr.next-family td { border-top: 2px solid #888; }"""


def to_html(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS,
            title: str = "") -> str:
    """The table as a small self-contained HTML page, formatted like the markdown: what the
    Snakemake report shows (it renders HTML, not markdown). A line separates the families."""

    def cell(tag: str, column: str, value: str) -> str:
        align = ' class="text"' if column in TEXT_COLUMNS else ""
        return f"<{tag}{align}>{html.escape(value)}</{tag}>"

    lines = ["<!DOCTYPE html>", '<meta charset="utf-8">', f"<title>{html.escape(title)}</title>",
             f"<style>\n{_HTML_STYLE}\n</style>", '<table class="vadusa-table">',
             "<thead><tr>" + "".join(cell("th", c, HEADER[c]) for c in columns) + "</tr></thead>",
             "<tbody>"]
    for i, r in enumerate(rows):
        next_family = i > 0 and r.get("family") != rows[i - 1].get("family")
        lines.append(('<tr class="next-family">' if next_family else "<tr>")
                     + "".join(cell("td", c, format_cell(r, c)) for c in columns) + "</tr>")
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> str:
    """The rows as CSV: raw numbers, each interval as <column>_low and <column>_high."""
    intervals = [c for c in ("wer", "paired") if c in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*columns, *(f"{c}_{end}" for c in intervals
                                                         for end in ("low", "high"))],
                            extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        bounds = {}
        for c in intervals:
            low, high = r.get(f"{c}_ci") or ["", ""]
            bounds |= {f"{c}_low": low, f"{c}_high": high}
        writer.writerow({c: r.get(c, "") if r.get(c) is not None else "" for c in columns}
                        | bounds)
    return out.getvalue()
