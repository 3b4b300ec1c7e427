"""Libriheavy: lhotse ``MonoCut`` manifests (jsonl.gz) that cut LibriLight recordings.

Each line is a cut: ``start`` and ``duration`` (seconds) within ``recording``, whose
``sources[0].source`` is a path relative to the directory the manifests were made in (we call
it ``audio_root``); the transcript is ``supervisions[0].custom.texts[0]`` (cased, punctuated)
or ``supervisions[0].text``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

from vadusa.config import LibriheavyConfig
from vadusa.data.candidates import Candidate, CorpusSourceError


def libriheavy_candidates(cfg: LibriheavyConfig) -> Iterator[Candidate]:
    if not cfg.manifests:
        raise CorpusSourceError(
            "no Libriheavy manifests configured (set corpus.libriheavy.manifests.train/dev/test "
            "to libriheavy_cuts_*.jsonl.gz files)"
        )
    root = Path(cfg.audio_root)
    if not cfg.audio_root or not root.is_dir():
        raise CorpusSourceError(
            f"Libriheavy audio root not found: {cfg.audio_root or '<unset>'} (set "
            "corpus.libriheavy.audio_root to the directory that holds download/librilight/)"
        )
    for split, manifest in cfg.manifests.items():
        path = Path(manifest)
        if not path.is_file():
            raise CorpusSourceError(f"Libriheavy manifest not found: {path} (corpus.libriheavy."
                                    f"manifests.{split})")
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    yield _candidate(line, split, root, cfg.text_field, f"{path}:{n}")


def _candidate(line: str, split: str, root: Path, text_field: str, where: str) -> Candidate:
    try:
        cut = json.loads(line)
        sup = cut["supervisions"][0]
        recording = cut["recording"]
        source = recording["sources"][0]["source"]
        text = sup["custom"]["texts"][0] if text_field == "texts" else sup["text"]
        return Candidate(id=cut["id"].replace("/", "_"), speaker=str(sup["speaker"]), text=text,
                         audio_path=root / source, split=split, offset=float(cut["start"]),
                         duration=float(cut["duration"]))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise CorpusSourceError(f"{where}: not a Libriheavy cut ({exc!r})") from exc
