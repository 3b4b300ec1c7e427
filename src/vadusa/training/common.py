"""Pieces every training loop shares: the learning-rate schedule and the update step, RNG
state for exact resume (saved and restored by ``training/resume.py``), and length-bucketed
batches by an audio/token budget."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch


def warmup_cosine(step: int, warmup: int, total: int, floor: float = 0.05) -> float:
    """LR multiplier: linear warm-up to 1, then cosine decay to ``floor`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """The scheduled rate, written into every parameter group before a step."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def update(optimizer: torch.optim.Optimizer, loss: torch.Tensor,
           params: Iterable[torch.nn.Parameter] | None = None, max_norm: float = 1.0
           ) -> torch.Tensor:
    """One optimiser step on ``loss``: fresh gradients, their global norm clipped to
    ``max_norm`` over ``params`` (default: every parameter the optimiser updates). Returns the
    norm before clipping (a 0-dim tensor; reading it syncs the device, so loops read it only
    when they log)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if params is None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    optimizer.step()
    return grad_norm


def rng_state() -> dict[str, Any]:
    """All RNG states, in a form ``torch.load(weights_only=True)`` accepts."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": _to_lists(random.getstate()),
        "numpy": _numpy_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_to_tuples(state["python"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _numpy_state() -> list[Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)]


def _to_lists(x: Any) -> Any:
    return [_to_lists(v) for v in x] if isinstance(x, tuple | list) else x


def _to_tuples(x: Any) -> Any:
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x


def bucketed_batches(lengths: Sequence[float], budget: float, rng: random.Random,
                     bucket_size: int = 64) -> list[list[int]]:
    """Indices grouped into batches whose summed length stays within ``budget``.

    Items are sorted by length inside shuffled buckets of ``bucket_size * 8`` items, so a
    batch holds similar lengths (little padding) while the epoch order stays random. An item
    longer than the budget gets a batch of its own."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = bucket_size * 8
    batches: list[list[int]] = []
    for start in range(0, len(order), span):
        chunk = sorted(order[start:start + span], key=lambda i: lengths[i])
        batch: list[int] = []
        longest = 0.0
        for i in chunk:
            longest_if_added = max(longest, lengths[i])
            if batch and longest_if_added * (len(batch) + 1) > budget:
                batches.append(batch)
                batch, longest_if_added = [], lengths[i]
            batch.append(i)
            longest = longest_if_added
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    return batches

