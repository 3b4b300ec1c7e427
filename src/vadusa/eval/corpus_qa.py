"""``vadusa corpus-qa``: how well the Whisper judge understands the corpus itself, per voice.

This is the floor every synthesized-speech WER is compared with: a TTS trained on this corpus
cannot be expected to be more intelligible than the voices it learned from.
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


def run_corpus_qa(cfg: Config, corpus_dir: str | Path, out_path: str | Path,
                  per_voice: int) -> dict[str, Any]:
    records = [r for s in SPLITS for r in read_manifest(manifest_path(corpus_dir, s))]
    by_voice = defaultdict(list)
    for rec in records:
        by_voice[rec.speaker].append(rec)
    rng = random.Random(cfg.seed)
    sample = [r for voice in sorted(by_voice)
              for r in rng.sample(by_voice[voice], min(per_voice, len(by_voice[voice])))]

    judge = WhisperJudge(cfg.judge)
    results, start = [], time.perf_counter()
    for rec in tqdm(sample, desc="judge corpus", unit="utt"):
        wave, rate = audio.read(rec.audio_path, rec.offset, rec.num_samples)
        hyp = judge.transcribe(wave, rate)
        rates = error_rates([rec.text], [hyp])
        results.append({"id": rec.id, "speaker": rec.speaker, "split": rec.split,
                        "reference": rec.text, "hypothesis": hyp, "wer": rates.wer,
                        "cer": rates.cer, "words": rates.words})
    elapsed = time.perf_counter() - start

    def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
        ids = {r["id"] for r in rows}
        recs = [r for r in sample if r.id in ids]
        hyps = {r["id"]: r["hypothesis"] for r in rows}
        rates = error_rates([r.text for r in recs], [hyps[r.id] for r in recs])
        return {"utterances": len(rows), "words": rates.words, "wer": round(rates.wer, 4),
                "cer": round(rates.cer, 4)}

    metrics = {
        "judge": cfg.judge.model_dir or cfg.judge.model,
        "per_voice_requested": per_voice,
        "seconds": round(elapsed, 1),
        "overall": summary(results),
        "voices": {v: summary([r for r in results if r["speaker"] == v])
                   for v in sorted(by_voice)},
        "per_utterance": results,
    }
    write_text_atomic(out_path, json.dumps(metrics, indent=1) + "\n")
    grouped_bars({v: {"WER": 100 * m["wer"], "CER": 100 * m["cer"]}
                  for v, m in {**metrics["voices"], "all": metrics["overall"]}.items()},
                 ["WER", "CER"], Path(out_path).parent / "wer_per_voice.png",
                 f"Whisper {metrics['judge']} on the corpus", "%")
    return metrics


def format_qa(metrics: dict[str, Any]) -> str:
    lines = [f"judge: Whisper {metrics['judge']}",
             f"{'voice':<20}{'utt':>6}{'WER %':>8}{'CER %':>8}"]
    for voice, m in {**metrics["voices"], "ALL": metrics["overall"]}.items():
        lines.append(f"{voice:<20}{m['utterances']:>6}{100 * m['wer']:>8.1f}{100 * m['cer']:>8.1f}")
    return "\n".join(lines)
