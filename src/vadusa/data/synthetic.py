"""The embedded default corpus: fortune sentences read by eight offline voices.

Plan (pure, deterministic for a seed): shuffle the clean sentences, take as many as the target
hours need (estimated from word counts), give the first ones to test, the next to dev, the rest
to train (so no sentence is in two splits), then deal each split's sentences to the voices in
turn (so every speaker is in every split, in equal shares).

Build: synthesize the plan in parallel chunks with a progress bar; every file is resampled,
trimmed, loudness-normalised and written atomically, so an interrupted build resumes by
skipping the files that exist (``plan.json`` makes sure an existing file still holds what its
id means). The LibriTTS-shaped corpus (``vadusa.data.libritts_shaped``) is built by the same
machinery (``render``, ``forget_replanned``).
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from vadusa.atomic import write_text_atomic
from vadusa.config import CorpusConfig, SyntheticCorpusConfig
from vadusa.data import audio
from vadusa.data.manifest import Utterance
from vadusa.data.text import fortune_sentences, normalize
from vadusa.data.voices import check_available, get_voice, synthesize

log = logging.getLogger(__name__)

#: Seconds of speech per word and per sentence, for planning only (least squares on the default
#: corpus, trimmed margins included). The manifest records true durations.
SECONDS_PER_WORD = 0.29
SECONDS_PER_SENTENCE = 0.40
TARGET_RMS_DB = -20.0


class CorpusError(RuntimeError):
    pass


@dataclass(frozen=True)
class PlannedUtterance:
    id: str
    speaker: str
    text: str
    split: str


def estimated_seconds(sentence: str) -> float:
    return SECONDS_PER_SENTENCE + SECONDS_PER_WORD * len(sentence.split())


def plan_corpus(sentences: Sequence[str], voices: Sequence[str], hours: float,
                dev_fraction: float, test_fraction: float, seed: int) -> list[PlannedUtterance]:
    """Assign sentences to splits and voices (see module docstring)."""
    pool = list(sentences)
    random.Random(seed).shuffle(pool)
    chosen, total = [], 0.0
    for sentence in pool:
        if total >= hours * 3600:
            break
        chosen.append(sentence)
        total += estimated_seconds(sentence)
    if total < hours * 3600:
        log.warning("only %d sentences (~%.2f h) available for %.2f h", len(chosen),
                    total / 3600, hours)
    n_test = max(len(voices), round(test_fraction * len(chosen)))
    n_dev = max(len(voices), round(dev_fraction * len(chosen)))
    if n_test + n_dev + len(voices) > len(chosen):
        raise CorpusError(
            f"{len(chosen)} sentences are too few to give each of {len(voices)} voices a "
            "sentence in every split; raise corpus.synthetic.hours"
        )
    splits = {"test": chosen[:n_test], "dev": chosen[n_test:n_test + n_dev],
              "train": chosen[n_test + n_dev:]}
    plan = []
    for split, items in splits.items():
        for i, sentence in enumerate(items):
            speaker = voices[i % len(voices)]
            plan.append(PlannedUtterance(f"{speaker}-{split}-{i:05d}", speaker, sentence, split))
    return plan


def wav_path(corpus_dir: Path, utt: PlannedUtterance) -> Path:
    return corpus_dir / "wavs" / utt.speaker / f"{utt.id}.wav"


def build_synthetic(cfg: CorpusConfig, seed: int, corpus_dir: Path) -> list[Utterance]:
    syn = cfg.synthetic
    for name in syn.voices:
        check_available(get_voice(name))
    sentences = fortune_sentences(syn.fortunes_dir, syn.min_words, syn.max_words)
    plan = plan_corpus(sentences, syn.voices, syn.hours, syn.dev_fraction, syn.test_fraction,
                       seed)
    forget_replanned(corpus_dir / "plan.json",
                     {u.id: (wav_path(corpus_dir, u), [u.speaker, u.text]) for u in plan})
    todo = [RenderJob(u.speaker, u.text, wav_path(corpus_dir, u)) for u in plan
            if not wav_path(corpus_dir, u).is_file()]
    log.info("synthetic corpus: %d utterances planned, %d to synthesize (%d already done)",
             len(plan), len(todo), len(plan) - len(todo))
    render(todo, syn, cfg.sample_rate)
    return [_record(corpus_dir, u) for u in plan]


# ---------------------------------------------------------------------------- shared machinery
# (also the LibriTTS-shaped corpus's, vadusa.data.libritts_shaped)


@dataclass(frozen=True)
class RenderJob:
    """One file to make: ``text`` read by ``voice``, finished at ``path``."""

    voice: str
    text: str
    path: Path


def render(jobs: Sequence[RenderJob], syn: SyntheticCorpusConfig, sample_rate: int,
           desc: str = "synthesize") -> int:
    """Make every job's file: chunks of one voice (``syn.chunk_size``) synthesized by
    ``syn.workers`` processes, each file resampled to ``sample_rate``, trimmed
    (``syn.trim_silence``), loudness-normalised and written atomically. Returns the count."""
    chunks: list[list[RenderJob]] = []
    for voice in sorted({j.voice for j in jobs}):
        mine = [j for j in jobs if j.voice == voice]
        chunks += [mine[i:i + syn.chunk_size] for i in range(0, len(mine), syn.chunk_size)]
    # Slow voices first, so the last chunks are short ones and the workers finish together.
    chunks.sort(key=lambda c: get_voice(c[0].voice).engine != "piper")
    if chunks:
        with ProcessPoolExecutor(syn.workers, mp_context=get_context("spawn")) as pool, \
                tqdm(total=len(jobs), desc=desc, unit="utt") as bar:
            futures = [pool.submit(_synthesize_chunk, chunk, sample_rate, syn.trim_silence)
                       for chunk in chunks]
            for future in as_completed(futures):
                bar.update(future.result())
    return len(jobs)


def forget_replanned(record: Path, planned: Mapping[str, tuple[Path, list[Any]]]) -> None:
    """Resuming by file existence is only safe if an id still means the same sentence and
    voice. Another plan (other hours, fractions, seed or sentences) can give an existing id a
    new text: such files are deleted and synthesized again. ``planned`` maps each id to its
    file and what the file holds (voice, text, ...: JSON values); ``record`` (``plan.json``)
    keeps the plan that the files on disk follow."""
    before: dict[str, list[Any]] = {}
    if record.is_file():
        before = json.loads(record.read_text())
    stale = 0
    for key, (path, holds) in planned.items():
        if path.is_file() and before.get(key) != holds:
            path.unlink()
            stale += 1
    if stale:
        log.info("%s: %d files were made for another plan; redoing them", record.parent, stale)
    text = json.dumps({key: holds for key, (_, holds) in planned.items()})
    if not record.is_file() or record.read_text() != text:  # a resumed run touches nothing
        write_text_atomic(record, text)


def _synthesize_chunk(chunk: list[RenderJob], sample_rate: int, trim: bool) -> int:
    """Worker: synthesize raw files in a scratch dir, then finalize each one atomically."""
    voice = get_voice(chunk[0].voice)
    with tempfile.TemporaryDirectory(prefix="vadusa-synth-") as scratch:
        raw = [(job.text, Path(scratch) / f"{i}.wav") for i, job in enumerate(chunk)]
        synthesize(voice, raw)
        for job, (_, raw_path) in zip(chunk, raw, strict=True):
            wave, rate = audio.read(raw_path, target_rate=sample_rate)
            if trim:
                wave = audio.trim_silence(wave, rate)
            audio.write_wav(job.path, _loudness_normalize(wave), rate)
    return len(chunk)


def _loudness_normalize(wave: np.ndarray) -> np.ndarray:
    """Scale to a common RMS level (voices differ by 20 dB), without clipping."""
    rms = float(np.sqrt(np.mean(wave**2)) + 1e-9)
    gain = 10 ** (TARGET_RMS_DB / 20) / rms
    peak = float(np.abs(wave).max()) * gain
    if peak > 0.99:
        gain *= 0.99 / peak
    return wave * gain


def _record(corpus_dir: Path, utt: PlannedUtterance) -> Utterance:
    path = wav_path(corpus_dir, utt)
    rate, frames = audio.probe(path)
    return Utterance(id=utt.id, speaker=utt.speaker, text=utt.text,
                     normalized_text=normalize(utt.text), audio_path=str(path.resolve()),
                     sample_rate=rate, num_samples=frames, duration=round(frames / rate, 4),
                     split=utt.split)
