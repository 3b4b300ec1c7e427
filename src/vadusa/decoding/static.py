"""Fixed shapes for compiled decoding (``vadusa bench --compile``; the decoders' ``compile``).

A compiled step (``torch.compile``; on a GPU with CUDA graphs, mode ``reduce-overhead``)
replays one captured graph only while every input keeps its shape and every buffer its
address. So a compiled decoder differs from the eager one in three ways, none of which
changes a token:

- the KV cache has one length for every utterance (``static_slots``) and is kept between
  utterances (``Transformer.setup_cache(keep=True)``, one cache per shape);
- the attention mask spans that whole cache (unwritten slots masked), not the slots written
  so far, and new keys are written at slot indices given as a tensor, not a Python slice;
- the frame table of a model that reads its alignment is extended to the cache's length
  with its last row (which is what positions past the table read anyway).

Only the step (an AR token, or a tree pass of N nodes) is compiled; the prefill, whose
length changes with every text, runs eagerly. Sampling and acceptance stay on the device,
with one host synchronisation per forward (the decoder has to know what was emitted).

``compile``: "" (eager, the default), ``default`` (inductor; CUDA graphs on a GPU) or
``eager`` (dynamo traces the step into one graph and runs it eagerly: a check, used by the
tests, that the step has no graph break, without a C++ compiler).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch

from vadusa.model.transformer import Transformer

COMPILE_MODES = ("", "default", "eager")
MARGIN = 64  # cache slots past max_seq: the widest tree verified at the last position
# compiled steps per model (weakly: a model's copy in another precision compiles its own)
_STEPS: weakref.WeakKeyDictionary[Transformer, dict[str, Callable[..., torch.Tensor]]] = (
    weakref.WeakKeyDictionary())


def static_slots(model: Transformer, needed: int) -> int:
    """The cache length of every compiled decode with this model: max_seq plus a margin, or
    ``needed`` if an utterance asks for more (one recompilation, not an error)."""
    return max(needed, model.cfg.max_seq + MARGIN)


def pad_frames(table: torch.Tensor | None, rows: int) -> torch.Tensor | None:
    """(B, S_f, F) -> (B, max(S_f, rows), F), extended with the last row."""
    if table is None or table.shape[1] >= rows:
        return table
    return torch.cat([table, table[:, -1:].expand(-1, rows - table.shape[1], -1)], dim=1)


def step_function(model: Transformer, compile: str) -> Callable[..., torch.Tensor]:
    """``Transformer.hidden`` of ``model``, compiled as ``compile`` asks (made once per model
    and mode)."""
    if compile not in COMPILE_MODES:
        raise ValueError(f"compile={compile!r} (vadusa bench --compile): choose from "
                         f"{COMPILE_MODES} ('' = eager)")
    if not compile:
        return model.hidden
    cache = _STEPS.setdefault(model, {})
    if compile not in cache:
        # AR (1 token), every tree width and both precisions are separate graphs
        torch._dynamo.config.cache_size_limit = max(64, torch._dynamo.config.cache_size_limit)
        gpu = model.head.weight.device.type == "cuda"
        options = ({"backend": "eager"} if compile == "eager"
                   else {"mode": "reduce-overhead" if gpu else "default"})
        cache[compile] = torch.compile(model.hidden, fullgraph=True, dynamic=False, **options)
    return cache[compile]
