"""What a forward pass costs on this machine, without any decoder work: the bound of a
speculative setting (``bench.add_bounds``), the tree a machine decodes fastest with
(``fastest_tree``: on a CPU a wide pass costs more than its extra accepted tokens buy, on a
GPU it costs about as much as one token) and the precision ``auto`` decodes in
(``faster_precision``: a CPU that reports bfloat16 instructions may still run it slower) all
read it.

Shapes: N nodes of a tree, S cache slots.
"""

from __future__ import annotations

import copy
import dataclasses
import time

import torch

from vadusa.decoding.static import static_slots, step_function
from vadusa.decoding.tree import Path_, expected_length, greedy_tree
from vadusa.model.loading import TTSBundle

# node counts ``decoding.tree: fastest`` chooses from, and the cache length it times them on
FASTEST_SIZES = (4, 8, 12, 16, 24, 32)
FASTEST_CONTEXT = 200


@torch.inference_mode()
def bare_forward_times(bundle: TTSBundle, width: int, context: int, repeats: int,
                       compile: str = "") -> list[float]:
    """Seconds of ``repeats`` bare forwards (after two warm-up calls) of ``width`` new tokens
    (base head included) on a KV cache already holding ``context`` positions: what an AR step
    (width 1) or a tree pass (width = the tree's nodes) costs the model alone, without any
    decoder work. ``compile``: the decoders' compiled fixed-shape step, on their cache length
    (``decoding/static.py``)."""
    model = bundle.model
    device = model.head.weight.device
    step = step_function(model, compile)
    S = static_slots(model, context + width) if compile else context + width
    model.setup_cache(batch=1, max_seq=S, keep=bool(compile))
    frames = None
    if model.frame_embed:  # a model that reads its alignment: any table of the right shape
        frames = torch.zeros(1, S, len(model.cfg.frame_features), dtype=torch.long,
                             device=device)
    slots = torch.arange(S, device=device)
    tokens = torch.randint(0, model.cfg.output_size, (1, S), device=device)
    pos = slots[:context][None]  # (1, context)
    model(tokens[:, :context], pos, (slots[None, :context] <= pos[0, :, None])[None],
          frames=frames)  # fill the cache
    new = slots[context:context + width][None]  # (1, width)
    seen = slots if compile else slots[:context + width]  # the decoders' mask widths
    mask = torch.zeros(1, width, len(seen), dtype=model.head.weight.dtype, device=device
                       ).masked_fill_(seen[None, None] > new[0, :, None], float("-inf"))
    written = new[0] if compile else slice(context, context + width)
    # a tensor of its own (a view's strides differ from a decoder's tokens, and a compiled
    # step would trace a graph for them instead of reusing the decoder's)
    step_tokens = tokens[:, context:context + width].clone(
        memory_format=torch.contiguous_format)  # (1, width)
    times = []
    for _ in range(repeats + 2):  # two warm-up calls
        start = time.perf_counter()
        model.head(step(step_tokens, new, mask, cache_slots=written,
                        frames=frames))
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    if not compile:
        model.clear_cache()
    return times[2:]


def fastest_tree(bundle: TTSBundle, table: list[list[float]],
                 sizes: tuple[int, ...] = FASTEST_SIZES, context: int = FASTEST_CONTEXT,
                 rounds: int = 3, repeats: int = 5) -> tuple[list[Path_], dict[int, dict]]:
    """The greedy tree (from the acceptance table ``table``) of the node count that promises
    the most tokens per second on this machine, in the bundle's precision: expected accepted
    length over the bare forward time of a pass of that many nodes (+ the root). Sizes take
    turns ``rounds`` times (a slow spell of a shared machine lands on all); each time is a
    median. -> (the tree's paths, per size: expected length, forward ms, tokens per ms)."""
    trees = {n: greedy_tree(table, n) for n in sizes}
    times: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(rounds):
        for n in sizes:
            times[n] += bare_forward_times(bundle, n + 1, context, repeats)
    scores = {}
    for n, paths in trees.items():
        ms = 1000 * sorted(times[n])[len(times[n]) // 2]
        length = expected_length(paths, table)
        scores[n] = {"expected_length": length, "forward_ms": ms, "tokens_per_ms": length / ms}
    best = max(sizes, key=lambda n: scores[n]["tokens_per_ms"])
    return trees[best], scores


# a pass as wide as a 16-node tree and its root: what VADUSA's passes cost, beside AR's step
PRECISION_WIDTHS = (1, 17)
PRECISION_MARGIN = 0.95  # bfloat16 must be at least 5 % faster: timing noise flips no choice


# one choice per model shape, device and precision in a process: every bundle of a race
# (``vadusa bench --also-heads``) decodes in the same precision
_CHOSEN: dict[tuple[str, str, str], tuple[torch.dtype, dict[str, float]]] = {}


@torch.inference_mode()
def faster_precision(bundle: TTSBundle, context: int = FASTEST_CONTEXT, rounds: int = 3,
                     repeats: int = 5) -> tuple[torch.dtype, dict[str, float]]:
    """The precision this machine decodes ``bundle``'s model faster in: bare forwards of one
    token (an AR step) and of a 17-node pass, in the bundle's precision and in float32 (a
    copy), taking turns ``rounds`` times; the median of each, summed over the widths. The
    bundle's precision wins only if it is ``PRECISION_MARGIN`` times float32's or better.
    Timed once per model shape and device in a process. -> (the dtype, milliseconds per
    precision)."""
    dtype = bundle.model.head.weight.dtype
    if dtype == torch.float32:
        return dtype, {}
    key = (repr(bundle.model.cfg), str(bundle.model.head.weight.device), str(dtype))
    if key not in _CHOSEN:
        _CHOSEN[key] = _time_precisions(bundle, dtype, context, rounds, repeats)
    return _CHOSEN[key]


def _time_precisions(bundle: TTSBundle, dtype: torch.dtype, context: int, rounds: int,
                     repeats: int) -> tuple[torch.dtype, dict[str, float]]:
    other = dataclasses.replace(bundle, model=copy.deepcopy(bundle.model).float())
    times: dict[torch.dtype, dict[int, list[float]]] = {
        d: {w: [] for w in PRECISION_WIDTHS} for d in (dtype, torch.float32)}
    for _ in range(rounds):
        for d, b in ((dtype, bundle), (torch.float32, other)):
            for w in PRECISION_WIDTHS:
                times[d][w] += bare_forward_times(b, w, context, repeats)
    ms = {str(d).removeprefix("torch."): 1000 * sum(sorted(t)[len(t) // 2] for t in by.values())
          for d, by in times.items()}
    mine, f32 = ms[str(dtype).removeprefix("torch.")], ms["float32"]
    return (dtype if mine <= PRECISION_MARGIN * f32 else torch.float32), ms
