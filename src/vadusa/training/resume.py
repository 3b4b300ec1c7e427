"""Resume, one policy for every trainer.

A trainer writes its state to ``out_dir/last.pt`` (kind ``<stage>-train``) every
``checkpoint_every`` steps and at its last step, and on a new start continues from it when it is
the same run. Steps, batches and random draws are keyed by the configuration's seed and the
data position, and the RNG states travel in ``last.pt``, so a resumed run ends with exactly the
weights of an uninterrupted one.

*The same run* means (``RunIdentity``):

- the same **settings**: every configuration key that shapes the weights (the trainer names
  its sections or keys, e.g. ``seed``, ``model``, ``train``; the heads take
  ``HeadsConfig.training_keys()``), compared with the configuration stored in ``last.pt``.
  Only the keys of ``EVALUATION_ONLY`` (when to checkpoint, evaluate or draw, never what a
  step computes) may differ: a finished run re-entered with other such keys is evaluated
  again, not retrained. ``steps`` is a setting: the learning-rate schedule depends on it.
- the same **inputs**: what the run trains on beyond the configuration (token family and
  vocabulary, k-means digest, speakers, symbols, base model digest...), as dotted keys of the
  metadata written with the state.

Anything else is another run: its ``last.pt`` is moved to ``last.stale.pt`` (nothing is lost;
an older stale file is replaced), a message names the keys that differ, and training starts
over. A ``last.pt`` that cannot be read (damaged, or of another kind) is never guessed at: the
run stops with a ``CheckpointError`` saying to delete it.

Files are written by ``vadusa.checkpoint.save_checkpoint`` (atomically: a killed run leaves
the previous ``last.pt`` whole) and read by ``load_checkpoint`` (``weights_only=True``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from vadusa.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from vadusa.training.common import rng_state, set_rng_state

LAST = "last.pt"
STALE = "last.stale.pt"
# keys (in any section) that decide when a run checkpoints, evaluates or draws, or what its
# final evaluation reports, never what a training step computes: a resume may differ in them
EVALUATION_ONLY = frozenset({"checkpoint_every", "eval_every", "eval_utterances", "top_ranks",
                             "figure_utterances"})
_MISSING = object()


class Stateful(Protocol):
    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any, /) -> Any: ...


def last_checkpoint(out_dir: str | Path) -> Path | None:
    """``out_dir/last.pt`` if a run left one there, else None."""
    path = Path(out_dir) / LAST
    return path if path.is_file() else None


def lookup(tree: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted key of nested dicts (``train.lr``), or a marker when absent."""
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def flatten(tree: Mapping[str, Any], keys: Iterable[str],
            skip: frozenset[str] = EVALUATION_ONLY) -> dict[str, Any]:
    """Dotted keys -> leaf values under each of ``keys`` (a section, e.g. ``train``, stands for
    all its keys), without the keys named in ``skip``."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if prefix.rsplit(".", 1)[-1] in skip:
            return
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        else:
            out[prefix] = value

    for key in keys:
        walk(key, lookup(tree, key))
    return out


def _show(value: Any) -> str:
    text = "absent" if value is _MISSING else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class RunIdentity:
    """What makes a ``last.pt`` this run's: ``settings``, dotted keys (or sections) of
    ``config`` (``cfg.to_dict()``) that shape the weights, and ``inputs``, dotted keys of
    ``meta`` (the metadata written with the state: what the run trains on)."""

    config: dict[str, Any]
    settings: tuple[str, ...]
    meta: dict[str, Any]
    inputs: tuple[str, ...] = ()

    def differences(self, blob: Mapping[str, Any]) -> list[str]:
        """'key: saved -> now' for every setting and input a saved blob does not share."""
        saved_config, saved_meta = blob.get("config") or {}, blob.get("meta") or {}
        now, then = flatten(self.config, self.settings), flatten(saved_config, self.settings)
        changed = [f"{k}: {_show(then.get(k, _MISSING))} -> {_show(v)}"
                   for k, v in now.items() if then.get(k, _MISSING) != v]
        changed += [f"{k}: {_show(then[k])} -> absent" for k in then if k not in now]
        for key in self.inputs:
            before, after = lookup(saved_meta, key), lookup(self.meta, key)
            if not _same(before, after):
                changed.append(f"{key} ({_show(before)} -> {_show(after)})"
                               if _short(before) and _short(after) else key)
        return changed


def _short(value: Any) -> bool:
    return value is _MISSING or len(repr(value)) <= 40


def _same(a: Any, b: Any) -> bool:
    """Equality that tolerates tensors nested in metadata."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
                and a.shape == b.shape and bool(torch.equal(a.cpu(), b.cpu())))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def save_training_state(out_dir: str | Path, kind: str, run: RunIdentity,
                        parts: Mapping[str, Stateful], **fields: Any) -> Path:
    """Write ``out_dir/last.pt`` atomically: each part's ``state_dict()`` under its name,
    ``fields`` (the data position, losses...: plain data) and every RNG state, with the run's
    configuration and metadata for the next start to check."""
    path = Path(out_dir) / LAST
    state = {name: part.state_dict() for name, part in parts.items()} | fields | {
        "rng": rng_state()}
    save_checkpoint(path, kind=kind, config=run.config, meta=run.meta, state=state)
    return path


def resume_training_state(out_dir: str | Path, kind: str, run: RunIdentity,
                          parts: Mapping[str, Stateful], stage: str, *,
                          map_location: str | torch.device = "cpu", main: bool = True,
                          total_steps: int | None = None) -> dict[str, Any] | None:
    """The saved state of ``out_dir/last.pt`` (its parts loaded into ``parts``, the RNG
    restored), or None to start from the beginning: there is none, or it is another run's
    (moved aside to ``last.stale.pt`` by the ``main`` process, with the keys that differ).

    Raises CheckpointError for a ``last.pt`` that cannot be read as a ``kind`` state."""
    path = last_checkpoint(out_dir)
    if path is None:
        return None
    try:
        blob = load_checkpoint(path, kind=kind, map_location=map_location)
    except CheckpointError as exc:
        raise CheckpointError(f"[{stage}] cannot resume: {exc}. Delete {path} to train from "
                              f"scratch") from None
    changed = run.differences(blob)
    if changed:
        if main:
            stale = path.with_name(STALE)
            path.replace(stale)
            print(f"[{stage}] {path} belongs to another run ({len(changed)} differ: "
                  f"{'; '.join(changed)}): moved it to {stale}, starting over", flush=True)
        return None
    state = blob["state"]
    missing = [name for name in (*parts, "rng") if name not in state]
    if missing:
        raise CheckpointError(f"[{stage}] cannot resume: {path} holds no "
                              f"{', '.join(missing)}. Delete it to train from scratch")
    for name, part in parts.items():
        part.load_state_dict(state[name])
    set_rng_state(state["rng"])
    step = _step(state)
    if main:
        of = "" if total_steps is None else f" of {total_steps}"
        print(f"[{stage}] resuming from {path} at step {step}{of}", flush=True)
    return state


def _step(state: Mapping[str, Any]) -> int:
    """The step a state was saved at: ``position["step"]`` or a top-level ``step``."""
    position = state.get("position")
    return int(position["step"] if isinstance(position, Mapping) else state["step"])
