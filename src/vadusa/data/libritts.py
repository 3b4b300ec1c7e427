"""LibriTTS in its released layout: ``<root>/<subset>/<speaker>/<chapter>/<id>.wav`` with the
transcript in ``<id>.normalized.txt`` (and ``<id>.original.txt``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from vadusa.config import LibriTTSConfig
from vadusa.data.candidates import Candidate, CorpusSourceError


def libritts_candidates(cfg: LibriTTSConfig) -> Iterator[Candidate]:
    root = Path(cfg.root)
    if not cfg.root or not root.is_dir():
        raise CorpusSourceError(
            f"LibriTTS root not found: {cfg.root or '<unset>'} "
            "(set corpus.libritts.root to the directory holding train-clean-100/, dev-clean/, ...)"
        )
    for subset, split in cfg.subsets.items():
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
            problem = "" if text_file.is_file() else f"no transcript {text_file.name}"
            yield Candidate(id=wav.stem, speaker=speaker, text=text, audio_path=wav, split=split,
                            problem=problem)
