"""``vadusa corpus-qa``: how well the Whisper judges understand the corpus itself, per voice.

This is the floor every synthesized-speech WER is compared with: a TTS trained on this corpus
cannot be expected to be more intelligible than the voices it learned from. Both judges
report (the judge of record, Whisper base, and the fast one, tiny.en, the sweep's): a voice
one of them hears much worse than the other tells which figures to trust less.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from vadusa.atomic import write_text_atomic
from vadusa.config import Config
from vadusa.data import audio
from vadusa.data.manifest import SPLITS, manifest_path, read_manifest
from vadusa.eval.figures import grouped_bars
from vadusa.eval.judge import WhisperJudge
from vadusa.eval.wer import error_rates


def qa_judges(cfg: Config) -> list[WhisperJudge]:
    """The judge of record, then the fast judge when it is another model: the QA reports
    both per voice, so a voice one of them hears badly shows."""
    record = WhisperJudge(cfg.judge)
    fast = WhisperJudge(cfg.judge, cfg.judge.fast_model)
    return [record] if fast.name == record.name else [record, fast]


def run_corpus_qa(cfg: Config, corpus_dir: str | Path, out_path: str | Path,
                  per_voice: int, judges: list[Any] | None = None) -> dict[str, Any]:
    """Judge ``per_voice`` recordings of each voice with every judge of ``judges`` (default
    ``qa_judges``; the first is the judge of record, whose figures are the top-level ones)."""
    records = [r for s in SPLITS for r in read_manifest(manifest_path(corpus_dir, s))]
    by_voice = defaultdict(list)
    for rec in records:
        by_voice[rec.speaker].append(rec)
    rng = random.Random(cfg.seed)
    sample = [r for voice in sorted(by_voice)
              for r in rng.sample(by_voice[voice], min(per_voice, len(by_voice[voice])))]

    judges = judges if judges is not None else qa_judges(cfg)
    results, start = [], time.perf_counter()
    for rec in tqdm(sample, desc="judge corpus", unit="utt"):
        wave, rate = audio.read(rec.audio_path, rec.offset, rec.num_samples)
        hyps = {judge.name: judge.transcribe(wave, rate) for judge in judges}
        rates = error_rates([rec.text], [hyps[judges[0].name]])
        results.append({"id": rec.id, "speaker": rec.speaker, "split": rec.split,
                        "reference": rec.text, "hypothesis": hyps[judges[0].name],
                        "hypotheses": hyps, "wer": rates.wer, "cer": rates.cer,
                        "words": rates.words})
    elapsed = time.perf_counter() - start

    def summary(rows: list[dict[str, Any]], judge: str) -> dict[str, Any]:
        rates = error_rates([r["reference"] for r in rows],
                            [r["hypotheses"][judge] for r in rows])
        return {"utterances": len(rows), "words": rates.words, "wer": round(rates.wer, 4),
                "cer": round(rates.cer, 4)}

    per_judge = {j.name: {"overall": summary(results, j.name),
                          "voices": {v: summary([r for r in results if r["speaker"] == v], j.name)
                                     for v in sorted(by_voice)}} for j in judges}
    record = judges[0].name
    metrics = {
        "judge": record,  # the judge of record: "overall" and "voices" are its
        "per_voice_requested": per_voice,
        "seconds": round(elapsed, 1),
        **per_judge[record],
        "judges": per_judge,
        "per_utterance": results,
    }
    write_text_atomic(out_path, json.dumps(metrics, indent=1) + "\n")
    grouped_bars({v: {f"{j} WER": 100 * (per_judge[j]["voices"][v] if v != "all"
                                         else per_judge[j]["overall"])["wer"]
                      for j in per_judge}
                  for v in [*sorted(by_voice), "all"]},
                 [f"{j} WER" for j in per_judge], Path(out_path).parent / "wer_per_voice.png",
                 "The judges on the corpus", "%")
    return metrics


def format_qa(metrics: dict[str, Any]) -> str:
    judges = metrics.get("judges") or {metrics["judge"]: metrics}
    lines = [f"judge of record: {metrics['judge']}",
             f"{'voice':<20}{'utt':>6}" + "".join(f"{j + ' WER %':>22}" for j in judges)]
    for voice in [*metrics["voices"], "ALL"]:
        rows = [m["overall"] if voice == "ALL" else m["voices"][voice] for m in judges.values()]
        lines.append(f"{voice:<20}{rows[0]['utterances']:>6}"
                     + "".join(f"{100 * r['wer']:>22.1f}" for r in rows))
    return "\n".join(lines)
