"""``vadusa bench``: decode the same utterances with several decoding settings in one process
and print their speed side by side.

The baseline is KV-cached AR decoding at batch size 1, in the faster precision measured (the
decoding precision, and where bfloat16 may be the faster one also the other: ``ar_settings``
with ``raced_precision``); every setting's ``speedup`` is the baseline's wall time over its
own, on the same utterances, model, machine and sampling; ``rate_speedup`` ("per token") is
its tokens/s over the baseline's, which differs from ``speedup`` when a lossy setting
(tau > 1, typical) makes utterances longer or shorter.
One warm-up utterance runs before anything is timed (first-call allocations and
kernel selection are not decoding speed).

Per setting: wall time, tokens/s (all rows together), real-time factor (decoding seconds per
second of audio), forwards per utterance (a batch's forwards count once for the batch), and
the tokens each forward adds to a sequence: their mean and histogram (AR: always 1). For
draft-model settings (``draft-g<gamma>``) forwards are the target's; the draft's small ones
count in the wall time only.

Every row also names what it decoded: ``tokens_sha256`` (``tokens_digest``), a digest of its
per-utterance token sequences in request order. Two settings decoded the same sequences iff
their digests agree: the check that tau = 1 VADUSA (or batched AR) is lossless, which a
token count cannot make when a duration plan fixes every utterance's length.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from vadusa.atomic import write_text_atomic
from vadusa.config import DecodingConfig
from vadusa.decoding.run import Request, decode_requests, draft_decoder, vadusa_decoder
from vadusa.decoding.timing import bare_forward_times
from vadusa.decoding.vadusa import VadusaDecoder
from vadusa.devices import PRECISIONS, bf16_decodes_faster
from vadusa.model.loading import TTSBundle


@dataclass(frozen=True)
class Setting:
    name: str
    method: str = "ar"
    batch_size: int = 1
    tau: int = 1  # VADUSA settings only, from here on
    heads: int = 0
    tree: str = "16"
    acceptance: str = "tolerance"
    precision: str = ""  # float32 | bfloat16; "" = the bundle's own
    gamma: int = 0  # draft-model settings only: tokens the draft proposes per step
    heads_from: str = ""  # VADUSA: the label of other heads (``bench``'s ``others``); "" = own


def ar_settings(batch_sizes: list[int], other_precision: str = "") -> list[Setting]:
    """AR at batch 1, also in ``other_precision`` if given (the faster of the two is the
    baseline), and at each larger batch size given."""
    sizes = [1] + sorted({b for b in batch_sizes if b > 1})
    settings = [Setting(f"ar-b{b}", "ar", b) for b in sizes]
    if other_precision:
        settings.insert(1, Setting(f"ar-b1-{other_precision}", "ar", 1,
                                   precision=other_precision))
    return settings


def raced_precision(bundle: TTSBundle) -> str:
    """The other precision AR races in: where bfloat16 may decode faster than float32
    (``devices.bf16_decodes_faster``), the one the bundle is not in; elsewhere none."""
    if not bf16_decodes_faster(bundle.model.head.weight.device):
        return ""
    return "float32" if bundle.dtype == torch.bfloat16 else "bfloat16"


def vadusa_settings(taus: list[int], heads: list[int], trees: list[str],
                    typical: bool = False, heads_from: str = "") -> list[Setting]:
    """One VADUSA setting per (heads, tree, tau), plus typical acceptance per (heads, tree).
    With ``heads_from``, the settings use those other heads and carry their label as the
    name's first word instead of "vadusa"."""
    prefix = heads_from or "vadusa"
    settings = []
    for k in heads:
        for tree in trees:
            label = (f"n{tree}" if str(tree).isdigit() else str(tree).replace(":", "")
                     if str(tree).startswith(("chain:", "full:")) else Path(str(tree)).stem)
            head_label = f"h{k}" if k else "hall"
            for tau in taus:
                settings.append(Setting(f"{prefix}-{head_label}-{label}-t{tau}", "vadusa", 1,
                                        tau, k, str(tree), heads_from=heads_from))
            if typical:
                name = f"typical-{heads_from + '-' if heads_from else ''}{head_label}-{label}"
                settings.append(Setting(name, "vadusa", 1, 1, k, str(tree), "typical",
                                        heads_from=heads_from))
    return settings


def draft_settings(gammas: list[int]) -> list[Setting]:
    """One draft-model speculative setting per gamma (the draft model is ``bench``'s)."""
    return [Setting(f"draft-g{g}", "draft", 1, gamma=g) for g in sorted(set(gammas))]


def _config(decoding: DecodingConfig, setting: Setting) -> DecodingConfig:
    cfg = replace(decoding, batch_size=setting.batch_size, method=setting.method)
    if setting.method == "vadusa":
        cfg = replace(cfg, tau=setting.tau, heads=setting.heads, tree=setting.tree,
                      acceptance=setting.acceptance)
    if setting.method == "draft":
        cfg = replace(cfg, draft_tokens=setting.gamma)
    return cfg


def tokens_digest(sequences: list[list[int]]) -> str:
    """sha256 (hex) of per-utterance token sequences, in request order. The bytes hashed are
    the UTF-8 of their compact JSON, a list of lists of ints (``[[3,1,4],[1,5]]``: no spaces,
    ``json.dumps(..., separators=(",", ":"))``), so the digest is reproducible outside this
    code and keeps each sequence's boundary: [[1], [2, 3]] and [[1, 2], [3]] differ."""
    canonical = json.dumps([[int(t) for t in s] for s in sequences], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _summary(setting: Setting, cfg: DecodingConfig, records: list[dict[str, Any]],
             wall: float) -> dict[str, Any]:
    tokens = sum(len(r["tokens"]) for r in records)
    forwards = sum(r["forwards"] / r["batch_size"] for r in records)  # shared by a batch
    audio_seconds = sum(r["audio_seconds"] for r in records)
    accepted = [n for r in records for n in r["accept_lengths"]]  # tokens per forward, per row
    histogram = Counter(accepted)
    return {"setting": setting.name, "method": setting.method, "batch_size": setting.batch_size,
            "tau": cfg.tau, "heads": cfg.heads, "tree": str(cfg.tree),
            "acceptance": cfg.acceptance, "heads_from": setting.heads_from or None,
            "gamma": cfg.draft_tokens if setting.method == "draft" else None,
            "utterances": len(records), "tokens": tokens,
            # records are in request order (``decode_requests`` keeps it, batches included)
            "tokens_sha256": tokens_digest([r["tokens"] for r in records]),
            "wall_seconds": wall,
            "tokens_per_second": tokens / wall, "real_time_factor": wall / audio_seconds,
            "forwards_per_utterance": forwards / len(records),
            "mean_accepted": sum(accepted) / max(1, len(accepted)),
            "accept_length_histogram": {str(k): v for k, v in sorted(histogram.items())},
            "audio_seconds": audio_seconds,
            # the cache length an average forward sees: the prefix and half the utterance
            "mean_context": sum(r.get("prefix_length", 0) + len(r["tokens"]) / 2
                                for r in records) / len(records)}


def _in_precision(bundle: TTSBundle, setting: Setting,
                  copies: dict[tuple[str, str], TTSBundle],
                  others: dict[str, TTSBundle] | None = None) -> TTSBundle:
    """The setting's bundle (its own heads, or those of ``others`` it names) in the setting's
    precision (a copy made once per heads and precision)."""
    if setting.heads_from:
        if not others or setting.heads_from not in others:
            raise ValueError(f"setting {setting.name} reads heads {setting.heads_from!r} "
                             f"that were not given")
        bundle = others[setting.heads_from]
    if not setting.precision:
        return bundle
    key = (setting.heads_from, setting.precision)
    if key not in copies:
        copies[key] = bundle.to(PRECISIONS[setting.precision])
    return copies[key]


def run_setting(bundle: TTSBundle, requests: list[Request], decoding: DecodingConfig,
                setting: Setting, draft: TTSBundle | None = None, compile: str = ""
                ) -> dict[str, Any]:
    """One setting on all requests, timed as one block; ``draft``: the draft model of a
    draft-model setting (default: ``decoding.draft_checkpoint``'s); ``compile``: compiled
    fixed-shape steps (``decoding/static.py``)."""
    cfg = _config(decoding, setting)
    start = time.perf_counter()
    records = list(decode_requests(bundle, requests, cfg, draft=draft, compile=compile))
    return _summary(setting, cfg, records, time.perf_counter() - start)


def bench(bundle: TTSBundle, requests: list[Request], decoding: DecodingConfig,
          settings: list[Setting], keep_tokens: bool = False,
          draft: TTSBundle | None = None, bounds: bool = True,
          others: dict[str, TTSBundle] | None = None, compile: str = ""
          ) -> list[dict[str, Any]]:
    """Every setting on the same requests. The settings take turns chunk by chunk (a chunk is
    as many utterances as the largest batch, one for speculative settings): a slow spell of a
    shared machine then lands on every setting alike instead of on whichever ran during it.
    Each result holds ``tokens_sha256`` (``tokens_digest`` of its sequences in request order);
    with ``keep_tokens`` also the sequences themselves, ``utterance_tokens``.
    ``draft``: the draft model of draft-model settings (default: that of
    ``decoding.draft_checkpoint``), used in each setting's precision. With ``bounds``, each
    row also gets its physical bound and the fraction of it reached (``add_bounds``).
    ``others``: other draft heads on the same base by label (settings with ``heads_from``),
    e.g. Hydra heads raced against the bundle's own MEDUSA heads. ``compile``: every AR and
    VADUSA setting (and the bound's bare forwards) runs compiled fixed-shape steps
    (``decoding/static.py``); the warm-up utterance then also pays the compilation."""
    copies: dict[tuple[str, str], TTSBundle] = {}
    bundles = [_in_precision(bundle, s, copies, others) for s in settings]
    draft_copies: dict[torch.dtype, TTSBundle] = {}  # the draft in each precision, once
    drafts: list[TTSBundle | None] = []
    for s, b in zip(settings, bundles, strict=True):
        if s.method == "draft" and draft is not None and b.dtype not in draft_copies:
            draft_copies[b.dtype] = draft.to(b.dtype)
        drafts.append(draft_copies.get(b.dtype) if s.method == "draft" else None)
    # warm-up: one utterance per method, or with ``compile`` per setting (each step width and
    # batch size is a graph of its own, compiled at its first call: not decoding speed)
    warm = {(s.method, s.precision, s.heads_from) + ((s.name,) if compile else ()): (s, b, d)
            for s, b, d in zip(settings, bundles, drafts, strict=True)}
    for setting, model, draft_model in warm.values():
        run_setting(model, requests[:1], decoding, setting, draft_model, compile)
    chunk = max(s.batch_size for s in settings)
    configs = [_config(decoding, s) for s in settings]
    decoders = [vadusa_decoder(b, cfg, compile) if cfg.method == "vadusa"
                else draft_decoder(b, cfg, d) if cfg.method == "draft" else None
                for b, cfg, d in zip(bundles, configs, drafts, strict=True)]  # untimed
    records: list[list[dict[str, Any]]] = [[] for _ in settings]
    walls = [0.0] * len(settings)
    for first in tqdm(range(0, len(requests), chunk), desc="bench", unit="chunk"):
        part = requests[first:first + chunk]
        for i, (cfg, decoder) in enumerate(zip(configs, decoders, strict=True)):
            start = time.perf_counter()
            records[i] += decode_requests(bundles[i], part, cfg, decoder, compile=compile)
            walls[i] += time.perf_counter() - start
    results = [_summary(s, cfg, r, w)
               for s, cfg, r, w in zip(settings, configs, records, walls, strict=True)]
    baseline = baseline_row(results)
    base, base_rate = baseline["wall_seconds"], baseline["tokens_per_second"]
    for r, b in zip(results, bundles, strict=True):
        r["precision"] = str(b.dtype).removeprefix("torch.")
        r["compile"] = compile or None
        r["baseline"] = baseline["setting"]
        r["speedup"] = base / r["wall_seconds"]
        # with tau > 1 the utterances come out a little longer or shorter than AR's: the
        # ratio of token rates is the speedup per generated token
        r["rate_speedup"] = r["tokens_per_second"] / base_rate
    for r, d in zip(results, decoders, strict=True):
        if isinstance(d, VadusaDecoder):
            # the tree's deepest node is the last head it drafts from: heads beyond it are
            # loaded but never proposed (a small tree on weak heads stops short of them)
            r["tree_nodes"], r["tree_depth"] = d.tree.size - 1, d.tree.max_depth
    if bounds:
        widths = [d.tree.size if isinstance(d, VadusaDecoder) else s.gamma + 1
                  if s.method == "draft" else 1
                  for s, d in zip(settings, decoders, strict=True)]
        add_bounds(results, bundles, widths, compile=compile)
        for r in results:
            if r["method"] == "ar" and r["batch_size"] > 1:  # a batch is not bounded by this
                r["bound"] = r["bound_fraction"] = None
    if keep_tokens:
        for r, recs in zip(results, records, strict=True):
            r["utterance_tokens"] = [list(rec["tokens"]) for rec in recs]
    return results


def add_bounds(results: list[dict[str, Any]], bundles: list[TTSBundle],
               widths: list[int], rounds: int = 6, repeats: int = 5,
               compile: str = "") -> None:
    """The physical bound of each setting next to what it reached: a speculative pass that
    accepts ``mean_accepted`` tokens and costs t_N (bare forward of the pass's N tokens) can be
    at most mean_accepted x t_1 / t_N faster per token than AR, t_1 the bare forward of one
    token in the baseline's precision, both on a cache as long as an average step sees.
    ``widths``: the tokens each setting's pass verifies (AR: 1). The forwards of every width
    take turns, ``repeats`` at a time for ``rounds`` rounds, so that a slow spell of a shared
    machine lands on all of them; each is the median of its calls. Adds ``forward_ms``,
    ``bound``, ``bound_fraction`` (rate_speedup / bound) and ``bound_context`` to every row.
    ``compile``: the forwards are the compiled fixed-shape steps the settings ran."""
    baseline = baseline_row(results)
    context = round(sum(r["mean_context"] for r in results) / len(results))
    base = bundles[results.index(baseline)]
    passes = {(id(b), w): (b, w) for b, w in [(base, 1), *zip(bundles, widths, strict=True)]}
    times: dict[tuple[int, int], list[float]] = {key: [] for key in passes}
    for _ in range(rounds):
        for key, (bundle, width) in passes.items():
            times[key] += bare_forward_times(bundle, width, context, repeats, compile)
    seconds = {key: sorted(t)[len(t) // 2] for key, t in times.items()}  # medians
    t_1 = seconds[(id(base), 1)]
    for r, bundle, width in zip(results, bundles, widths, strict=True):
        t_n = seconds[(id(bundle), width)]
        r["forward_ms"] = 1000 * t_n
        r["bound"] = r["mean_accepted"] * t_1 / t_n
        r["bound_fraction"] = r["rate_speedup"] / r["bound"]
        r["bound_context"] = context


def baseline_row(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The row every speedup of a bench is against: the faster AR at batch size 1."""
    return min((r for r in results if r["method"] == "ar" and r["batch_size"] == 1),
               key=lambda r: r["wall_seconds"])


def format_bench(results: list[dict[str, Any]]) -> str:
    width = max(12, *(len(r["setting"]) for r in results))
    head = (f"{'setting':<{width}} {'utts':>5} {'tokens':>7} {'wall s':>8} {'tokens/s':>9} "
            f"{'RTF':>7} {'fwd/utt':>8} {'accepted':>8} {'speedup':>8} {'per token':>9} "
            f"{'bound':>6} {'of bound':>8}")
    lines = [f"speedup: against {results[0]['baseline']}", head, "-" * len(head)]
    for r in results:
        lines.append(f"{r['setting']:<{width}} {r['utterances']:>5} {r['tokens']:>7} "
                     f"{r['wall_seconds']:>8.2f} {r['tokens_per_second']:>9.1f} "
                     f"{r['real_time_factor']:>7.3f} {r['forwards_per_utterance']:>8.1f} "
                     f"{r['mean_accepted']:>8.2f} {r['speedup']:>7.2f}x "
                     f"{r['rate_speedup']:>8.2f}x {_ratio(r.get('bound')):>6} "
                     f"{_share(r.get('bound_fraction')):>8}")
    if results[0].get("bound") is not None:
        lines.append(f"bound: accepted x t_1 / t_pass, bare forwards on a cache of "
                     f"{results[0]['bound_context']} positions; 'per token' is the rate "
                     "speedup (tokens/s over the baseline's), 'speedup' the wall-time one")
    lines.append("")
    lines.append("tokens per forward (accept-length histogram, share of forwards):")
    for r in results:
        total = sum(r["accept_length_histogram"].values()) or 1
        shares = " ".join(f"{k}:{100 * v / total:.0f}%"
                          for k, v in r["accept_length_histogram"].items())
        lines.append(f"  {r['setting']:<{width}} {shares}")
    return "\n".join(lines)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def write_bench(path: Path, results: list[dict[str, Any]]) -> None:
    write_text_atomic(Path(path), json.dumps(results, indent=1) + "\n")
