"""``vadusa prepare``: build a corpus from the configured source into ``<corpus_dir>``:

    manifests/{train,dev,test}.jsonl.gz   one Utterance record per line
    symbols.json                          the text front end's input symbols
    stats.json                            hours per split and per speaker x split
    hours_per_speaker.png                 the same as a bar chart
    skipped.tsv                           unusable source files and why (real corpora)
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

from vadusa.atomic import write_text_atomic
from vadusa.config import Config
from vadusa.data.candidates import Screening, to_records
from vadusa.data.manifest import SPLITS, Utterance, manifest_path, write_manifest
from vadusa.data.text import symbol_table
from vadusa.eval.figures import grouped_bars

log = logging.getLogger(__name__)


def prepare_corpus(cfg: Config, corpus_dir: str | Path) -> dict[str, Any]:
    corpus_dir = Path(corpus_dir)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    source = cfg.corpus.source
    if source == "synthetic":
        from vadusa.data.synthetic import build_synthetic  # noqa: PLC0415

        screening = Screening(records=build_synthetic(cfg.corpus, cfg.seed, corpus_dir))
    elif source == "libritts":
        from vadusa.data.libritts import hold_out_seen, libritts_candidates  # noqa: PLC0415

        screening = to_records(libritts_candidates(cfg.corpus.libritts), cfg.corpus)
        if cfg.corpus.libritts.seen_test:  # after screening: exactly that many usable ones
            screening.records = hold_out_seen(screening.records, cfg.corpus.libritts.seen_test,
                                              cfg.seed)
    elif source == "libriheavy":
        from vadusa.data.libriheavy import libriheavy_candidates  # noqa: PLC0415

        screening = to_records(libriheavy_candidates(cfg.corpus.libriheavy), cfg.corpus)
    else:  # the schema rules this out; keep the error for direct callers
        raise ValueError(f"unknown corpus source {source!r}")

    records = screening.records
    missing = [s for s in SPLITS if not any(r.split == s for r in records)]
    if missing:
        raise ValueError(f"corpus has no utterances in split(s) {missing}; check the source")
    # The corpus's own inventory is the characters of its normalized texts; the model's front
    # end (text.frontend, e.g. phonemes) is chosen when a model is trained, from these texts.
    symbols = symbol_table("characters")
    for rec in records:
        symbols.encode(rec.normalized_text)  # every text must be expressible in the inventory
    for split in SPLITS:
        write_manifest(manifest_path(corpus_dir, split), (r for r in records if r.split == split))
    symbols.save(corpus_dir / "symbols.json")
    stats = corpus_stats(records)
    stats.update(source=source, skipped=len(screening.skipped),
                 outside_duration_limits=screening.too_short_or_long)
    write_text_atomic(corpus_dir / "skipped.tsv",
                      "".join(f"{path}\t{why}\n" for path, why in screening.skipped))
    write_text_atomic(corpus_dir / "stats.json", json.dumps(stats, indent=1) + "\n")
    grouped_bars(stats["hours_per_speaker"], SPLITS, corpus_dir / "hours_per_speaker.png",
                 f"{source} corpus: {stats['total_hours']:.2f} h", "hours")
    return stats


def corpus_stats(records: list[Utterance]) -> dict[str, Any]:
    seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    counts: dict[str, int] = defaultdict(int)
    for r in records:
        seconds[r.speaker][r.split] += r.duration
        counts[r.split] += 1
    per_split = {s: sum(sp.get(s, 0.0) for sp in seconds.values()) / 3600 for s in SPLITS}
    return {
        "utterances": {s: counts[s] for s in SPLITS},
        "hours": {s: round(h, 4) for s, h in per_split.items()},
        "total_hours": round(sum(per_split.values()), 4),
        "speakers": len(seconds),
        "hours_per_speaker": {
            spk: {s: round(by_split.get(s, 0.0) / 3600, 4) for s in SPLITS}
            for spk, by_split in sorted(seconds.items())
        },
    }


def format_stats(stats: dict[str, Any]) -> str:
    lines = [f"{stats['total_hours']:.2f} h, {stats['speakers']} speakers, "
             + ", ".join(f"{s}: {stats['utterances'][s]} utt / {stats['hours'][s]:.2f} h"
                         for s in SPLITS)]
    if stats["speakers"] <= 40:
        lines.append(f"{'speaker':<20}" + "".join(f"{s:>8}" for s in SPLITS) + "   (hours)")
        for spk, by_split in stats["hours_per_speaker"].items():
            lines.append(f"{spk:<20}" + "".join(f"{by_split[s]:>8.3f}" for s in SPLITS))
    return "\n".join(lines)
