"""The zero-shot protocol's acoustic prompts: which utterance of a split prompts which.

VALL-E-family TTS is zero-shot: the model continues a short recording of the target speaker
(its text and tokens) with the target text. The usual evaluation protocol (VALL-E, VADUSA)
gives every test utterance a prompt from a *different* utterance of the same speaker, about
3 s long, so the model never hears the recording it is judged against and needs no speaker id.

``choose_prompts`` is a pure function of the manifest records: for each target, among the
other utterances of its speaker in the same split, it takes the ones of at most
``max_seconds`` (what the model saw as prompts in training, ``model.prompt_max_seconds``),
prefers those nearest to ``target_seconds``, and breaks ties by a hash of the (target, prompt)
pair, so the choice is deterministic and yet not the same prompt for all of a speaker's
targets. When a speaker's only other utterances are longer, the shortest serves; a speaker
with a single utterance in the split has no prompt (the target fails, counted as all its words
deleted). Every evaluation writes the pairs it used (``write_pairs``).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vadusa.atomic import write_text_atomic
from vadusa.data.manifest import Utterance

#: the prompt length of the protocol: about 3 s (VALL-E's 3-second enrolment)
TARGET_SECONDS = 3.0
#: within this distance of TARGET_SECONDS every candidate counts as "about 3 s"; the hash
#: then spreads the choice over them
TOLERANCE_SECONDS = 1.0


@dataclass(frozen=True)
class PromptPair:
    target: str  # utterance id judged
    prompt: str  # utterance id whose text and tokens prompt it ("" if none)
    speaker: str
    prompt_seconds: float
    prompt_text: str  # the prompt's text as the model reads it (normalized)


def _hash(target: str, prompt: str) -> str:
    return hashlib.sha1(f"{target}\t{prompt}".encode()).hexdigest()


def choose_prompts(records: Iterable[Utterance], targets: Iterable[str] | None = None,
                   max_seconds: float = TARGET_SECONDS, target_seconds: float = TARGET_SECONDS
                   ) -> dict[str, PromptPair]:
    """target id -> its prompt, for ``targets`` (default: every record). Prompts come from
    ``records`` (one split's utterances); a target is never its own prompt."""
    records = list(records)
    by_id = {r.id: r for r in records}
    by_speaker: dict[str, list[Utterance]] = defaultdict(list)
    for rec in records:
        by_speaker[rec.speaker].append(rec)
    pairs = {}
    for target in (list(by_id) if targets is None else list(targets)):
        rec = by_id[target]
        others = [r for r in by_speaker[rec.speaker] if r.id != target]
        if not others:
            pairs[target] = PromptPair(target, "", rec.speaker, 0.0, "")
            continue
        short = [r for r in others if r.duration <= max_seconds] or [
            min(others, key=lambda r: (r.duration, r.id))]

        # "about target_seconds" is a band, not a point: inside it only the hash decides
        best = min(short, key=lambda r, t=target: (
            max(0.0, abs(r.duration - target_seconds) - TOLERANCE_SECONDS), _hash(t, r.id)))
        pairs[target] = PromptPair(target, best.id, rec.speaker, best.duration,
                                   best.normalized_text)
    return pairs


def write_pairs(path: str | Path, pairs: Iterable[PromptPair]) -> None:
    """The pairs as a TSV (target, prompt, speaker, prompt seconds, prompt text)."""
    lines = ["target\tprompt\tspeaker\tprompt_seconds\tprompt_text\n"]
    lines += [f"{p.target}\t{p.prompt}\t{p.speaker}\t{p.prompt_seconds:.2f}\t{p.prompt_text}\n"
              for p in pairs]
    write_text_atomic(Path(path), "".join(lines))
