"""``vadusa table``: the main table, laid out like the paper's, from the DAG's results.

One row per token family x method: AR, VADUSA (draft heads on the frozen base) and VADUSA-wt
(base and heads trained together), each at every tolerance tau and head count benchmarked,
MEDUSA's typical acceptance, each heads mode's tree race (every tree size of
``measure.bench_trees`` at the first eval tau), and a classic draft model (speculative
sampling, lossless) at each gamma benchmarked. Columns: WER and CER (by the judge of record,
named in the last column), the paired WER difference to AR on the same utterances with its
bootstrap interval and whether "maintains or improves WER" holds (it does unless the interval
lies above zero), the utterances that failed (counted as all words deleted) and those that
ran to the length cap without EOS, SIM, mean accepted length, speedup per token (the
headline: tokens/s over AR's), wall-time speedup, the physical bound (accepted length x the
time of a bare 1-token forward over that of the pass) and the share of it reached, RTF.

Where each figure comes from (the files of the experiment's plan, ``vadusa.plan``):

    speed: Plan.race (bench_vadusa)       every setting and AR decode the same test utterances
                                          in one process; the speedup is against the faster AR
                                          at batch 1 (bench.py); Hydra heads' settings
                                          (heads_from hydra, hydra-joint) race beside frozen's
                                          and joint's (bench_twins), shared heads' (heads_from
                                          shared) beside frozen's; the tree races likewise
                                          (bench_trees)
    AR speed: Plan.bench_ar               that baseline row
    draft model: Plan.bench_draft, and Plan.eval_metrics of the DRAFT system
    floors: Plan.resynthesis of the test split and of the LibriVox recordings: those
            recordings themselves and their round trip through tokens and the vocoder, judged
            alike (the best WER any method can reach); Plan.copy_synthesis: HiFi-GAN's own
            ceiling
    quality: Plan.eval_metrics of each system: WER, CER (Whisper judge), SIM, with bootstrap
            intervals; only the settings the DAG evaluates (measure.eval_taus, all heads,
            decoding.tree; Plan.vadusa_evaluations) have them: "-" elsewhere
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import Any

from vadusa.decoding.bench import baseline_row
from vadusa.plan import AR, DRAFT, HEAD_MODES, OPEN_AR, TREE_RACE_SPLIT, Plan

# each head mode's name in the tables, in their order
MODES = dict(zip(HEAD_MODES, ("VADUSA", "VADUSA-wt", "VADUSA, Hydra heads",
                              "VADUSA-wt, Hydra heads", "VADUSA, shared heads"), strict=True))
COLUMNS = ("family", "method", "tau", "heads", "tree", "wer", "cer", "vs_ar", "holds",
           "failed", "no_eos", "sim", "accepted", "speedup", "wall_speedup", "bound",
           "bound_fraction", "rtf", "nar_rtf", "judge")


class TableError(ValueError):
    pass


def _read(path: str | Path) -> Any:
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def _quality(metrics: dict[str, Any] | None) -> dict[str, Any]:
    if metrics is None:
        return {}
    ci = metrics.get("ci", {})
    # an acoustic family's NAR stage (codebooks 2..N) per second of speech, apart from the
    # AR decoding's RTF: VADUSA accelerates the AR stage only
    return {"wer": metrics["wer"], "cer": metrics["cer"], "sim": metrics.get("sim"),
            "wer_ci": [ci["wer"]["low"], ci["wer"]["high"]] if "wer" in ci else None,
            "nar_rtf": metrics.get("nar_real_time_factor"),
            # failed utterances count in the WER as all words deleted; no_eos: judged ones
            # that ran to the length cap
            "failed": metrics.get("failed", len(metrics.get("failures", []))),
            "no_eos": metrics.get("no_eos"), "judge": metrics.get("judge")}


def _against_ar(metrics: dict[str, Any] | None, ar: dict[str, Any] | None
                ) -> dict[str, Any]:
    """A method's paired WER difference to AR on the same utterances, with its bootstrap
    interval, and whether the seed's claim "maintains or improves WER" holds: it does unless
    the whole interval lies above zero (significantly worse)."""
    if metrics is None or ar is None:
        return {}
    difference = paired_difference(metrics, ar)
    if difference is None:
        return {}
    verdict = ("better" if difference["high"] < 0 else
               "no (worse)" if difference["low"] > 0 else "yes")
    return {"vs_ar": difference["mean"], "vs_ar_ci": [difference["low"], difference["high"]],
            "holds": verdict}


def _speed(bench_row: dict[str, Any]) -> dict[str, Any]:
    """A race's speed columns: the headline is the per-token rate ratio (a tolerance that
    ends utterances earlier or later changes the wall time without changing the speed), the
    wall-time ratio beside it, and the physical bound with the share of it reached."""
    return {"speedup": bench_row.get("rate_speedup", bench_row["speedup"]),
            "wall_speedup": bench_row["speedup"], "bound": bench_row.get("bound"),
            "bound_fraction": bench_row.get("bound_fraction")}


def race_rows(plan: Plan, family: str, mode: str, trees: bool = False) -> list[dict[str, Any]]:
    """The bench rows of one heads mode (with ``trees``, of its tree race), AR rows included:
    where ``plan.race`` says they are (a Hydra or shared mode's settings in the race of the
    MEDUSA mode it ran beside, rows with ``heads_from`` = the mode), else its own race's."""
    race, heads_from = plan.race(family, mode, trees)
    if heads_from:
        raced = _read(race) or []
        rows = [r for r in raced if r.get("heads_from") == heads_from]
        if rows:
            return [r for r in raced if r["method"] == "ar"] + rows
    own = _read((plan.bench_trees if trees else plan.bench_vadusa)(family, mode)) or []
    return [r for r in own if not r.get("heads_from")]


def floor_rows(plan: Plan, family: str, librivox: bool = True, split: str = "test"
               ) -> list[dict[str, Any]]:
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
                        "wer_ci": [ci["low"], ci["high"]] if ci else None,
                        "judge": metrics.get("judge"),
                        "failed": None if key else metrics.get(
                            "failed", len(metrics.get("failures", [])))}

    rows = []
    sources = [(split, "" if split == "test" else f"{split}: ")] + (
        [("librivox", "LibriVox: ")] if librivox else [])
    for source, label in sources:
        resynth = _read(plan.metrics(plan.resynthesis(family, source)))
        copy = _read(plan.metrics(plan.copy_synthesis(source)))
        if resynth is not None:
            rows.append(judged(resynth, f"{label}recordings (judge floor)", "input_"))
        if copy is not None:
            rows.append(judged(copy, f"{label}copy synthesis (mel -> HiFi-GAN)"))
        if resynth is not None:
            rows.append(judged(resynth, f"{label}resynthesis (tokens -> vocoder)"))
    return rows


def family_rows(plan: Plan, family: str) -> list[dict[str, Any]]:
    """The rows of one family, in the paper's order: the quality floors, AR, then each method
    by heads and tau."""
    ar_bench = _read(plan.bench_ar(family))
    ar_eval = _read(plan.eval_metrics(family, AR))
    if ar_bench is None and ar_eval is None:
        return []
    rows = floor_rows(plan, family)
    ar = {"family": family, "method": "AR", "tau": "", "heads": "", "tree": "",
          "accepted": 1.0, "speedup": 1.0, "wall_speedup": 1.0} | _quality(ar_eval)
    if ar_bench:
        ar["rtf"] = baseline_row(ar_bench)["real_time_factor"]
    rows.append(ar)
    for mode, label in MODES.items():  # every head mode with results
        settings = [r for r in race_rows(plan, family, mode) if r["method"] == "vadusa"]
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
                metrics = _read(plan.eval_metrics(family, plan.vadusa_system(mode, r["tau"])))
                if metrics is not None and str(metrics["decoding"]["tree"]) == str(r["tree"]):
                    row |= _quality(metrics) | _against_ar(metrics, ar_eval)
            rows.append(row)
        # the tree race at the first eval tau, all heads: every tree size (and a chain)
        for r in race_rows(plan, family, mode, trees=True):
            if r["method"] == "vadusa":
                rows.append({"family": family, "tree": r["tree"], "heads": r["heads"] or "all",
                             "method": f"{label}, tree race ({TREE_RACE_SPLIT})",
                             "tau": r["tau"],
                             "accepted": r["mean_accepted"], "rtf": r["real_time_factor"]}
                            | _speed(r))
    # a classic draft model (decoding/speculative.py): raced against AR in its own bench
    draft_eval = _read(plan.eval_metrics(family, DRAFT))
    for r in _read(plan.bench_draft(family)) or []:
        if r["method"] != "draft":
            continue
        row = {"family": family, "method": f"draft model, gamma {r['gamma']}", "tau": "",
               "heads": "", "tree": "", "accepted": r["mean_accepted"],
               "rtf": r["real_time_factor"]} | _speed(r)
        if draft_eval is not None and draft_eval["decoding"].get("draft_tokens") == r["gamma"]:
            row |= _quality(draft_eval) | _against_ar(draft_eval, ar_eval)
        rows.append(row)
    return rows


OPEN_COLUMNS = ("family", "question", "tau", "heads", "tree", "depth", "wer", "cer", "sim",
                "accepted", "speedup", "rtf")


def open_rows(plan: Plan, family: str) -> list[dict[str, Any]]:
    """The open questions of one family (target ``open_questions``), one row per question of
    ``plan.open_questions()``: each tau at heads.count heads, then each head count at the
    first eval tau. Speed from ``plan.bench_open`` (every setting raced against AR in one
    run), quality from each setting's evaluation; AR's own figures come first."""
    bench = _read(plan.bench_open(family))
    if bench is None:
        raise TableError(f"{plan.bench_open(family)} is missing: run "
                         f"`snakemake open_questions` first")
    speed = {(r["tau"], r["heads"]): r for r in bench
             if r["method"] == "vadusa" and r["acceptance"] == "tolerance"}
    ar_eval = _read(plan.eval_metrics(family, plan.open_system(OPEN_AR)))
    rows = [{"family": family, "question": "AR", "tau": "", "heads": "", "tree": "",
             "accepted": 1.0, "speedup": 1.0, "rtf": baseline_row(bench)["real_time_factor"]}
            | _quality(ar_eval)]
    for question, tau, k in plan.open_questions():
        row = {"family": family, "question": question, "tau": tau, "heads": k}
        if (tau, k) in speed:
            r = speed[(tau, k)]
            row |= {"tree": r["tree"], "depth": r.get("tree_depth"),
                    "accepted": r["mean_accepted"], "speedup": r["speedup"],
                    "rtf": r["real_time_factor"]}
        row |= _quality(_read(plan.eval_metrics(
            family, plan.open_system(plan.open_setting(tau, k)))))
        rows.append(row)
    return rows


ABLATION_COLUMNS = ("method", "settings", "split", "wer", "cer", "ratio", "paired",
                    "dev_loss", "dev_acc", "minutes")


def paired_difference(metrics: dict[str, Any], reference: dict[str, Any]
                      ) -> dict[str, float | int] | None:
    """WER of ``metrics`` minus WER of ``reference`` on the utterances both scored, with its
    paired bootstrap interval (each resample draws utterances, both models' errors with them);
    None without common utterances."""
    from vadusa.eval.stats import bootstrap_ratio  # noqa: PLC0415

    # a failed utterance is scored too, as all its words deleted (eval/evaluate.py)
    ours = {r["id"]: r for r in metrics.get("per_utterance", [])
            + metrics.get("failed_utterances", [])}
    theirs = {r["id"]: r for r in reference.get("per_utterance", [])
              + reference.get("failed_utterances", [])}
    common = sorted(set(ours) & set(theirs))
    if not common:
        return None
    return bootstrap_ratio([ours[i]["word_errors"] - theirs[i]["word_errors"] for i in common],
                           [theirs[i]["words"] for i in common])


def _model_row(model: str, metrics: str, name: str, settings: str,
               floor: float | None, reference: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """One AR model of the ablation: its training (dev loss and accuracy, minutes) from the
    checkpoint's metadata, its test quality from its evaluation, and with ``reference`` (the
    configured model's evaluation) the paired WER difference to it."""
    from vadusa.checkpoint import load_checkpoint  # noqa: PLC0415  (torch only where needed)

    row: dict[str, Any] = {"method": name, "settings": settings}
    if Path(model).is_file():
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


def ablation_rows(plan: Plan, family: str, configured: str) -> list[dict[str, Any]]:
    """The alignment ablation of one family: the resynthesis floor, the configured model
    (``configured``: its settings the variants vary, as text), then each variant of
    ablation.variants (``snakemake ablation``), all judged on ``ablation.split`` (dev by
    default: the ablation chooses defaults; the split column says which)."""
    split = plan.cfg.ablation.split
    resynth = _read(plan.metrics(plan.resynthesis(family, split)))
    floor = resynth["wer"] if resynth else None
    rows = [{"method": r["method"], "settings": "", "split": split, "wer": r["wer"],
             "cer": r["cer"], "wer_ci": r["wer_ci"]}
            for r in floor_rows(plan, family, librivox=False, split=split)]
    evaluation = plan.eval_metrics(family, AR, split)
    rows.append(_model_row(plan.base(family), evaluation, "AR, the configured model",
                           configured, floor) | {"split": split})
    reference = _read(evaluation)
    for name, overrides in plan.cfg.ablation.variants.items():
        rows.append(_model_row(plan.ablation_model(family, name),
                               plan.metrics(plan.ablation_evaluation(family, name)),
                               f"AR, {name}", ", ".join(overrides), floor, reference)
                    | {"split": split})
    if all(r.get("wer") is None for r in rows):
        raise TableError(f"no evaluations under {plan.root} for {family}: run `snakemake "
                         f"ablation` first")
    return rows


def main_table(plan: Plan, families: list[str]) -> list[dict[str, Any]]:
    rows = [row for family in families for row in family_rows(plan, family)]
    if not rows:
        raise TableError(f"no results under {plan.root} for families {families}: run the DAG "
                         f"first (`snakemake models vadusa`)")
    return rows


ZERO_SHOT_COLUMNS = ("method", "speakers", "utterances", "failed", "wer", "sim", "accepted",
                     "speedup", "wall_speedup")
#: the embedded default's main table, shown beside the zero-shot rows when that run exists
EMBEDDED_MAIN = Path("results/default/tables/main.csv")


def _group_label(name: str, group: dict[str, Any]) -> str:
    """A metrics group as the zero-shot table names it: "unseen", "seen", or a corpus
    subset with whether its speakers were heard in training."""
    if not name.startswith("subset:"):
        return name
    return f"{name.removeprefix('subset:')} ({group.get('condition', 'mixed')})"


def _subset_groups(groups: dict[str, Any], seen: bool) -> list[str]:
    """The subset groups of seen (or unseen) speakers, when there are several: a single one
    would repeat its condition's row."""
    names = sorted(g for g in groups if g.startswith("subset:")
                   and (groups[g].get("condition") == "seen") == seen)
    return names if len(names) > 1 else []


def zero_shot_rows(plan: Plan, family: str, embedded: Path | None = EMBEDDED_MAIN
                   ) -> list[dict[str, Any]]:
    """The zero-shot table of one family: AR, VADUSA and VADUSA-wt at the first eval tau, one
    row per speaker group of their test evaluation (unseen, each subset, seen), with WER and
    SIM (95 % intervals), the mean accepted length of the group's utterances, and the speedup
    per token of the group's race (``Plan.bench_zero_shot``: AR and the setting on the same
    utterances in one process; subsets have none of their own). Then, when ``embedded``
    exists, the embedded default's closed-set rows (its own run's main table) for context."""
    from vadusa.plan import ZERO_SHOT_GROUPS, ZERO_SHOT_MODES  # noqa: PLC0415

    tau = plan.first_tau()
    systems = [("AR", AR, None)] + [(MODES[m], plan.vadusa_system(m, tau), m)
                                    for m in ZERO_SHOT_MODES]
    rows = []
    for label, system, mode in systems:
        metrics = _read(plan.eval_metrics(family, system))
        if metrics is None:
            continue
        groups = metrics.get("groups", {})
        order = ([g for g in ("unseen",) if g in groups] + _subset_groups(groups, False)
                 + _subset_groups(groups, True) + [g for g in ("seen",) if g in groups])
        for name in order:
            group = groups[name]
            ci = group.get("ci", {})
            row = {"method": label if mode is None else f"{label}, tau {tau}",
                   "speakers": _group_label(name, group), "utterances": group["utterances"],
                   "failed": group["failed"], "wer": group["wer"], "sim": group.get("sim"),
                   "wer_ci": [ci["wer"]["low"], ci["wer"]["high"]] if "wer" in ci else None,
                   "sim_ci": [ci["sim"]["low"], ci["sim"]["high"]] if "sim" in ci else None,
                   "accepted": group.get("mean_accepted")}
            if mode is not None and name in ZERO_SHOT_GROUPS:
                race = _read(plan.bench_zero_shot(family, mode, name)) or []
                ours = [r for r in race if r["method"] == "vadusa"]
                if ours:
                    row |= _speed(ours[0])
            rows.append(row)
    if not rows:
        raise TableError(f"no zero-shot evaluations of {family} under {plan.root}: run "
                         "`snakemake reproduce_zero_shot` first")
    if embedded is not None and Path(embedded).is_file():
        with Path(embedded).open() as f:
            for r in csv.DictReader(f):
                if r.get("family") != family or r["method"] not in ("AR", *MODES.values()):
                    continue
                if (r["method"] != "AR" and r.get("tau") != str(tau)) or not r.get("wer"):
                    continue  # only the settings evaluated at this tau have a WER

                def number(key: str, r: dict[str, str] = r) -> float | None:
                    return float(r[key]) if r.get(key) not in (None, "") else None

                rows.append({"method": r["method"] + (f", tau {tau}" if r["method"] != "AR"
                                                      else ""),
                             "speakers": f"embedded default ({embedded}; closed set)",
                             "wer": number("wer"), "sim": number("sim"),
                             "wer_ci": ([number("wer_low"), number("wer_high")]
                                        if number("wer_low") is not None else None),
                             "accepted": number("accepted"), "speedup": number("speedup"),
                             "wall_speedup": number("wall_speedup")})
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
        text = f"{value:.3f}"
        if row.get("sim_ci"):
            low, high = row["sim_ci"]
            text += f" [{low:.3f}, {high:.3f}]"
        return text
    if key == "accepted":
        return f"{value:.2f}"
    if key in ("speedup", "wall_speedup", "bound"):
        return f"{value:.2f}x"
    if key == "bound_fraction":
        return f"{100 * value:.0f} %"
    if key in ("rtf", "nar_rtf", "dev_loss", "dev_acc"):
        return f"{value:.3f}"
    if key == "ratio":
        return f"{value:.2f}x"
    if key in ("paired", "vs_ar"):
        if not row.get(f"{key}_ci"):  # a row read back without its interval
            return f"{100 * value:+.1f}"
        low, high = row[f"{key}_ci"]
        return f"{100 * value:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"
    if key == "minutes":
        return f"{value:.1f}"
    return str(value)


TEXT_COLUMNS = ("family", "method", "question", "settings", "split", "speakers", "holds",
                "judge")
HEADER = {"family": "family", "method": "method", "question": "varied", "tau": "tau",
          "heads": "heads", "tree": "tree", "depth": "heads the tree reaches",
          "wer": "WER % [95 % CI]", "cer": "CER %", "sim": "SIM",
          "accepted": "accepted length", "speedup": "speedup per token",
          "wall_speedup": "wall-time speedup", "bound": "bound", "bound_fraction": "of bound",
          "rtf": "RTF", "nar_rtf": "NAR RTF",
          "settings": "settings", "split": "judged on",
          "ratio": "WER / resynthesis WER", "dev_loss": "dev loss",
          "dev_acc": "dev top-1", "minutes": "training minutes",
          "paired": "WER - configured model's, same utterances [95 % CI]",
          "speakers": "speakers (test, prompted)", "utterances": "utterances",
          "failed": "failed (WER: all words deleted)",
          "vs_ar": "WER - AR's, same utterances [95 % CI]",
          "holds": "maintains WER?", "no_eos": "no EOS", "judge": "judge"}


def filled(rows: list[dict[str, Any]], columns: tuple[str, ...],
           optional: tuple[str, ...] = ("nar_rtf",)) -> tuple[str, ...]:
    """``columns`` without the ``optional`` ones that no row fills (the NAR stage's column
    where no family has one)."""
    return tuple(c for c in columns
                 if c not in optional or any(row.get(c) is not None for row in rows))


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
    intervals = [c for c in ("wer", "paired", "vs_ar", "sim") if c in columns]
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
