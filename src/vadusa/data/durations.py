"""Duration files: how many token frames each text symbol of an utterance is spoken for.

    <dir>/<split>.jsonl.gz   one record per utterance: {"id", "lead", "durations"}
    <dir>/meta.json          family, frame rate, text front end and symbols, token digest

``lead`` is the silence before the first symbol, ``durations[j]`` the frames of symbol j of the
utterance's model input (``SymbolTable.encode(normalized_text)``); together they add up to the
utterance's token count. Written by ``vadusa align`` (training/aligner.py), read by base
training (model/tts.py's frame features) and the duration model.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vadusa.atomic import atomic_path, write_text_atomic


class DurationStoreError(ValueError):
    pass


@dataclass(frozen=True)
class Durations:
    id: str
    lead: int
    durations: tuple[int, ...]

    @property
    def frames(self) -> int:
        return self.lead + sum(self.durations)


def split_path(directory: str | Path, split: str) -> Path:
    return Path(directory) / f"{split}.jsonl.gz"


def write_durations(directory: str | Path, split: str, records: Iterable[Durations]) -> int:
    count = 0
    with atomic_path(split_path(directory, split)) as tmp, gzip.open(tmp, "wt") as f:
        for rec in records:
            f.write(json.dumps({"id": rec.id, "lead": rec.lead,
                                "durations": list(rec.durations)}) + "\n")
            count += 1
    return count


def read_durations(directory: str | Path, split: str) -> dict[str, Durations]:
    path = split_path(directory, split)
    if not path.is_file():
        raise DurationStoreError(f"no durations for split {split!r} in {directory} (run "
                                 f"`vadusa align` first)")
    out = {}
    with gzip.open(path, "rt") as f:
        for n, line in enumerate(f, 1):
            try:
                blob = json.loads(line)
                out[blob["id"]] = Durations(blob["id"], int(blob["lead"]),
                                            tuple(int(d) for d in blob["durations"]))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise DurationStoreError(f"{path}:{n}: not a duration record ({exc})") from exc
    return out


def write_meta(directory: str | Path, meta: dict[str, Any]) -> None:
    write_text_atomic(Path(directory) / "meta.json", json.dumps(meta, indent=1) + "\n")


def read_meta(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / "meta.json"
    if not path.is_file():
        raise DurationStoreError(f"no meta.json in {directory} (run `vadusa align` first)")
    return json.loads(path.read_text())
