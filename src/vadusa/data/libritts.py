"""LibriTTS in its released layout: ``<root>/<subset>/<speaker>/<chapter>/<id>.wav`` with the
transcript in ``<id>.normalized.txt`` (and ``<id>.original.txt``).

Every record keeps its subset directory's name (``Utterance.subset``), so a split that gathers
several subsets (test: test-clean and test-other) still tells them apart. A wav without a
transcript, or with an empty one, is skipped and named in ``skipped.tsv``.

``corpus.libritts.seen_test`` (``hold_out_seen``) moves some utterances of the training
speakers into the test split after screening: LibriTTS's test subsets hold only speakers that
never appear in training, and this adds seen speakers, judged by the same protocol.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

from vadusa.config import LibriTTSConfig
from vadusa.data.candidates import Candidate, CorpusSourceError
from vadusa.data.manifest import Utterance


def libritts_candidates(cfg: LibriTTSConfig) -> Iterator[Candidate]:
    root = Path(cfg.root)
    if not cfg.root or not root.is_dir():
        raise CorpusSourceError(
            f"LibriTTS root not found: {cfg.root or '<unset>'} "
            "(set corpus.libritts.root to the directory holding train-clean-100/, dev-clean/, ...)"
        )
    for subset, split in cfg.subsets.items():
        if split is None:  # dropped by a later config file
            continue
        subset_dir = root / subset
        if not subset_dir.is_dir():
            raise CorpusSourceError(
                f"LibriTTS subset not found: {subset_dir} (download and unpack it, or remove "
                f"'{subset}' from corpus.libritts.subsets)"
            )
        for wav in sorted(subset_dir.glob("*/*/*.wav")):
            speaker = wav.parent.parent.name
            text_file = wav.with_suffix(".normalized.txt")
            text = text_file.read_text(encoding="utf-8").strip() if text_file.is_file() else ""
            problem = ("" if text else f"empty transcript {text_file}" if text_file.is_file()
                       else f"no transcript {text_file}")
            yield Candidate(id=wav.stem, speaker=speaker, text=text, audio_path=wav, split=split,
                            problem=problem, subset=subset)


def hold_out_seen(records: Sequence[Utterance], count: int, seed: int) -> list[Utterance]:
    """``records`` with ``count`` train utterances moved to the test split, their subset kept.

    Each training speaker's utterances are ordered by a hash of the seed and the id (stable
    under any listing order, and independent of which other files exist), and the speakers,
    in sorted order, give their first, then their second, ... in turn: every training speaker
    gives some, none gives more than one more than another (while it has utterances left)."""
    train = [r for r in records if r.split == "train"]
    if count >= len(train):
        raise CorpusSourceError(
            f"corpus.libritts.seen_test is {count}, but the training subsets hold only "
            f"{len(train)} usable utterances: lower it so that some stay in training")
    by_speaker: dict[str, list[Utterance]] = defaultdict(list)
    for rec in train:
        by_speaker[rec.speaker].append(rec)
    queues = [sorted(by_speaker[spk], key=lambda r: _seeded_hash(seed, r.id))
              for spk in sorted(by_speaker)]
    chosen: set[str] = set()
    depth = 0
    while len(chosen) < count:
        for queue in queues:
            if depth < len(queue) and len(chosen) < count:
                chosen.add(queue[depth].id)
        depth += 1
    return [dataclasses.replace(r, split="test") if r.split == "train" and r.id in chosen else r
            for r in records]


def _seeded_hash(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()
