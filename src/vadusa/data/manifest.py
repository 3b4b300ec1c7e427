"""Manifest records: one immutable, validated record per utterance, stored as jsonl.gz.

Every corpus source (synthetic, LibriTTS, Libriheavy) writes the same records, one file per
split (``<corpus>/manifests/<split>.jsonl.gz``), so no later stage knows where audio came from.
An utterance may be a segment of a longer recording (Libriheavy): ``offset`` seconds into
``audio_path``, ``num_samples`` long. ``subset`` names the part of the source corpus it came
from (LibriTTS's subset directory), since one split may gather several.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vadusa.atomic import atomic_path

SPLITS = ("train", "dev", "test")


class ManifestError(ValueError):
    pass


@dataclass(frozen=True)
class Utterance:
    id: str
    speaker: str
    text: str  # as read from the source
    normalized_text: str  # what the model reads (vadusa.data.text.normalize)
    audio_path: str
    sample_rate: int
    num_samples: int
    duration: float  # seconds, num_samples / sample_rate
    split: str
    offset: float = 0.0  # seconds into audio_path where the utterance starts
    # the source's own part it came from (LibriTTS: train-clean-100, test-clean, test-other,
    # ...), which tells apart the parts one split gathers; "" where the source has none.
    # Manifests written before the field existed read with ""
    subset: str = ""

    def __post_init__(self) -> None:
        problems = []
        if not self.id:
            problems.append("empty id")
        if not self.speaker:
            problems.append("empty speaker")
        if not self.normalized_text.strip():
            problems.append("empty normalized text")
        if self.split not in SPLITS:
            problems.append(f"split {self.split!r} not in {SPLITS}")
        if self.sample_rate <= 0 or self.num_samples <= 0:
            problems.append("non-positive sample rate or sample count")
        elif abs(self.duration - self.num_samples / self.sample_rate) > 1e-3:
            problems.append(
                f"duration {self.duration} != num_samples / sample_rate "
                f"({self.num_samples / self.sample_rate:.4f})"
            )
        if self.offset < 0:
            problems.append("negative offset")
        if problems:
            raise ManifestError(f"utterance {self.id!r}: " + "; ".join(problems))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> Utterance:
        return cls(**json.loads(line))


def write_manifest(path: str | Path, records: Iterable[Utterance]) -> int:
    """Write records atomically; ids must be unique. Returns the number written."""
    seen: set[str] = set()
    count = 0
    with atomic_path(path) as tmp, gzip.open(tmp, "wt", encoding="utf-8") as f:
        for rec in records:
            if rec.id in seen:
                raise ManifestError(f"duplicate utterance id {rec.id!r} in {path}")
            seen.add(rec.id)
            f.write(rec.to_json() + "\n")
            count += 1
    return count


def read_manifest(path: str | Path) -> list[Utterance]:
    return list(iter_manifest(path))


def iter_manifest(path: str | Path) -> Iterator[Utterance]:
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path} (run `vadusa prepare` first)")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield Utterance.from_json(line)
                except (json.JSONDecodeError, TypeError) as exc:
                    raise ManifestError(f"{path}:{n}: not a manifest record ({exc})") from exc


def manifest_path(corpus_dir: str | Path, split: str) -> Path:
    return Path(corpus_dir) / "manifests" / f"{split}.jsonl.gz"
