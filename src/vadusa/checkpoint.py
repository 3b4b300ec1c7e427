"""Checkpoints that describe themselves.

A checkpoint is one ``torch.save`` file holding the weights *and* what is needed to rebuild
and check them: its ``kind`` (e.g. ``"ssl"``, ``"unit2mel"``), the resolved config it was
trained with, free-form ``meta`` (token family, vocab size, speakers...), and the vadusa version.
It is written atomically and read with ``weights_only=True`` (no code runs on load), so only
tensors, numbers, strings, lists, tuples and dicts go in.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from vadusa import __version__
from vadusa.atomic import atomic_path


class CheckpointError(ValueError):
    pass


def file_digest(path: str | Path) -> str:
    """The first 16 hex digits of a file's SHA-256: which artifact a later one was made from."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def save_checkpoint(path: str | Path, *, kind: str, config: dict[str, Any],
                    state: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
    blob = {"kind": kind, "vadusa_version": __version__, "config": config,
            "meta": meta or {}, "state": state}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load_checkpoint(path: str | Path, kind: str | None = None,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001  (torch raises many types for bad files)
        # torch's own message advises re-loading with weights_only=False, which would run
        # whatever code the file holds: not advice to pass on for a file that is not ours
        if "weights_only" in str(exc) or "Weights only" in str(exc):
            why = ("it holds Python objects besides tensors and plain data, which a vadusa "
                   "checkpoint never does")
        else:
            why = f"it is truncated or not a torch file ({type(exc).__name__})"
        raise CheckpointError(
            f"{path} is damaged or not a vadusa checkpoint: {why}. Re-create it with the "
            f"vadusa command that writes it (e.g. rerun its Snakemake rule); do not load it "
            f"with weights_only=False") from None
    if not isinstance(blob, dict) or "kind" not in blob or "state" not in blob:
        raise CheckpointError(f"{path} is not a vadusa checkpoint (no kind/state)")
    if kind is not None and blob["kind"] != kind:
        raise CheckpointError(f"{path} is a {blob['kind']!r} checkpoint, expected {kind!r}")
    return blob
