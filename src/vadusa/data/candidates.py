"""From a source's raw listing to validated manifest records.

Sources (LibriTTS, Libriheavy) yield ``Candidate`` utterances; ``to_records`` checks every
audio file (exists, readable, non-empty, segment inside the file), normalizes the text and
applies the duration limits. Unusable files are counted and skipped with a warning that lists
them, or, with ``corpus.strict``, stop the run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from vadusa.config import CorpusConfig
from vadusa.data import audio
from vadusa.data.manifest import Utterance
from vadusa.data.text import normalize

log = logging.getLogger(__name__)


class CorpusSourceError(RuntimeError):
    """The corpus source itself is missing or malformed (a directory, a manifest)."""


@dataclass(frozen=True)
class Candidate:
    id: str
    speaker: str
    text: str
    audio_path: Path
    split: str
    offset: float = 0.0
    duration: float | None = None  # None: the whole file
    problem: str = ""  # set by the source when it already knows the utterance is unusable
    subset: str = ""  # the source's part (LibriTTS subset directory), kept in the record


@dataclass
class Screening:
    records: list[Utterance] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path or id, reason)
    too_short_or_long: int = 0


def to_records(candidates: Iterable[Candidate], cfg: CorpusConfig) -> Screening:
    result = Screening()
    probed: dict[Path, tuple[int, int] | str] = {}  # recordings are shared by many cuts
    for cand in tqdm(candidates, desc="screen audio", unit="utt", mininterval=2.0):
        problem = cand.problem
        if not problem:
            if cand.audio_path not in probed:
                try:
                    probed[cand.audio_path] = audio.probe(cand.audio_path)
                except audio.AudioError as exc:
                    probed[cand.audio_path] = str(exc)
            info = probed[cand.audio_path]
            if isinstance(info, str):
                problem = info
        if not problem:
            rate, frames = info
            start = int(round(cand.offset * rate))
            num = frames - start if cand.duration is None else int(round(cand.duration * rate))
            if num <= 0 or start + num > frames + rate // 100:  # 10 ms slack for rounding
                problem = f"segment {cand.offset:.2f}+{cand.duration} s outside {cand.audio_path}"
            elif not normalize(cand.text):
                problem = "empty transcript after normalization"
        if problem:
            if cfg.strict:
                raise audio.AudioError(f"{cand.id}: {problem} (corpus.strict is on)")
            result.skipped.append((str(cand.audio_path), problem))
            continue
        num = min(num, frames - start)
        duration = num / rate
        if not cfg.min_duration <= duration <= cfg.max_duration:
            result.too_short_or_long += 1
            continue
        result.records.append(Utterance(
            id=cand.id, speaker=cand.speaker, text=cand.text,
            normalized_text=normalize(cand.text), audio_path=str(Path(cand.audio_path).resolve()),
            sample_rate=rate, num_samples=num, duration=round(duration, 4), split=cand.split,
            offset=cand.offset, subset=cand.subset))
    if result.skipped:
        listing = "\n  ".join(f"{path}: {why}" for path, why in result.skipped[:50])
        more = "" if len(result.skipped) <= 50 else f"\n  ... and {len(result.skipped) - 50} more"
        log.warning("skipped %d unusable utterances (set corpus.strict: true to fail instead):"
                    "\n  %s%s", len(result.skipped), listing, more)
    return result
