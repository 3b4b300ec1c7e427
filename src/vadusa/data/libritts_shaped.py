"""LibriTTS's setting made offline: ``vadusa make-corpus --layout libritts OUT``.

In LibriTTS the dev and test speakers never speak in training. This module writes a corpus
with that property in LibriTTS's released layout, so ``vadusa prepare`` reads it with
``corpus.source: libritts`` exactly as it reads the real one (``config/libritts-local.yaml``):

    OUT/<subset>/<speaker>/<chapter>/<speaker>_<chapter>_<para:06d>_<sent:06d>.wav
        24 kHz mono 16-bit, with <id>.original.txt (the sentence as read) and
        <id>.normalized.txt (LibriTTS-style: numbers spelled out, case and punctuation kept)
    OUT/<subset>/<speaker>/<chapter>/<speaker>_<chapter>.trans.tsv   id, original, normalized
    OUT/speakers.tsv   READER GENDER SUBSET NAME (NAME: our voice, e.g. flite_rms)
    OUT/README.txt     what this is and which voice each speaker is
    OUT/plan.json      what every file holds (the resume guard)

Subsets (``corpus.libritts_shaped``): ``train-clean-100``, the training voices (the embedded
default's eight) reading about ``train_hours`` of fortune sentences; ``dev-clean`` and
``test-clean``, voices that speak in no other subset, ``dev_utterances`` / ``test_utterances``
each; ``test-other``, the real LibriVox recordings of Debian's pocketsphinx-testdata (one
human reader) resampled to 24 kHz. Numeric speaker and chapter ids come from a hash of the
voice's name, so a voice keeps its ids whatever the configuration.

Plan (pure, deterministic for the seed): shuffle the clean sentences, give the last ones to
test-clean's voices, those before them to dev-clean's, and the first ones to train-clean-100
until the hours are reached, so no sentence is in two subsets; each voice's sentences are cut
into ``chapters_per_speaker`` chapters of paragraphs of three sentences.

Build: the synthetic corpus's machinery (``vadusa.data.synthetic``: parallel chunks, trimming,
loudness, atomic writes). An interrupted run redoes only the missing files; ``plan.json``
makes sure an existing file still holds what its id means, and files no plan lists any more are
removed, since here the files on disk, not a manifest, are the corpus.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vadusa.atomic import write_text_atomic
from vadusa.config import Config, LibriTTSShapedConfig
from vadusa.data import audio
from vadusa.data.synthetic import (
    CorpusError,
    RenderJob,
    estimated_seconds,
    forget_replanned,
    render,
)
from vadusa.data.text import fortune_sentences, spell_numbers, to_ascii
from vadusa.data.voices import VOICES, check_available, get_voice

log = logging.getLogger(__name__)

TRAIN, DEV, TEST, TEST_OTHER = "train-clean-100", "dev-clean", "test-clean", "test-other"
SUBSETS = (TRAIN, DEV, TEST, TEST_OTHER)
LIBRIVOX_NAME = "librivox_reader"  # test-other's reader (Austen, Sense and Sensibility, ch. 1)
LIBRIVOX_GENDER = "M"  # median F0 of the recordings: 80-100 Hz
SENTENCES_PER_PARAGRAPH = 3
# files this module writes under a subset; nothing else there is ever removed
MADE_HERE = (".wav", ".original.txt", ".normalized.txt", ".trans.tsv")


@dataclass(frozen=True)
class ShapedUtterance:
    id: str  # <speaker>_<chapter>_<para:06d>_<sent:06d>
    subset: str
    speaker: str  # LibriTTS-style numeric speaker id
    chapter: str
    voice: str  # our voice (vadusa.data.voices), or LIBRIVOX_NAME
    text: str  # the sentence as read
    source: str = ""  # test-other: the recording this file is a copy of

    def path(self, out: Path, suffix: str = ".wav") -> Path:
        return out / self.subset / self.speaker / self.chapter / f"{self.id}{suffix}"


def libritts_normalized(original: str) -> str:
    """LibriTTS-style normalized text: ASCII, numbers spelled out, case and punctuation kept.
    ``vadusa.data.text.normalize`` maps it to what it maps ``original`` to."""
    text = re.sub(r"\s+", " ", spell_numbers(to_ascii(original)))
    return re.sub(r" ([,.?!;:])", r"\1", text).strip()


# ---------------------------------------------------------------------------- ids


def _digits(key: str, modulus: int) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % modulus


@functools.cache
def speaker_ids() -> dict[str, str]:
    """Every voice (and the LibriVox reader) -> a 4-digit speaker id from a hash of its name;
    collisions move to the next free id, in name order."""
    ids: dict[str, str] = {}
    taken: set[int] = set()
    for name in sorted([*VOICES, LIBRIVOX_NAME]):
        n = _digits(name, 9000)
        while n in taken:
            n = (n + 1) % 9000
        taken.add(n)
        ids[name] = str(1000 + n)
    return ids


def chapter_ids(voice: str, count: int) -> list[str]:
    """A voice's 6-digit chapter ids, the k-th the same whatever ``count``."""
    ids: list[str] = []
    for k in range(count):
        n = _digits(f"{voice}/chapter/{k}", 900_000)
        while str(100_000 + n) in ids:
            n = (n + 1) % 900_000
        ids.append(str(100_000 + n))
    return ids


# ---------------------------------------------------------------------------- the plan


def plan_libritts_shaped(sentences: Sequence[str], shaped: LibriTTSShapedConfig,
                         seed: int) -> list[ShapedUtterance]:
    """Sentences to subsets, voices and chapters (see module docstring)."""
    pool = list(sentences)
    random.Random(seed).shuffle(pool)
    needed = (shaped.dev_utterances * len(shaped.dev_voices)
              + shaped.test_utterances * len(shaped.test_voices) + len(shaped.train_voices))
    if needed > len(pool):
        raise CorpusError(
            f"{len(pool)} sentences are too few for corpus.libritts_shaped's dev and test "
            "utterances and a training sentence per voice: lower dev_utterances, "
            "test_utterances or the number of voices")
    per_voice: dict[tuple[str, str], list[str]] = {}
    # dev and test read the pool from its end, train from its start: changing the one's size
    # never gives the other's ids new sentences (which a resumed build would have to redo)
    held, start = pool[::-1], 0
    for subset, voices, each in ((TEST, shaped.test_voices, shaped.test_utterances),
                                 (DEV, shaped.dev_voices, shaped.dev_utterances)):
        for i, voice in enumerate(voices):
            per_voice[subset, voice] = held[start + i:start + each * len(voices):len(voices)]
        start += each * len(voices)
    train, seconds = [], 0.0
    for sentence in pool[:len(pool) - start]:
        if seconds >= shaped.train_hours * 3600 and len(train) >= len(shaped.train_voices):
            break
        train.append(sentence)
        seconds += estimated_seconds(sentence)
    if seconds < shaped.train_hours * 3600:
        log.warning("only %d sentences (~%.2f h) left for %.2f h of training speech",
                    len(train), seconds / 3600, shaped.train_hours)
    for i, voice in enumerate(shaped.train_voices):
        per_voice[TRAIN, voice] = train[i::len(shaped.train_voices)]
    return [utt for (subset, voice), texts in per_voice.items()
            for utt in _chapters(subset, voice, texts, shaped.chapters_per_speaker)]


def _chapters(subset: str, voice: str, texts: list[str], chapters: int) -> list[ShapedUtterance]:
    """A voice's sentences in ``chapters`` contiguous chapters of 3-sentence paragraphs."""
    speaker = speaker_ids()[voice]
    count = min(chapters, len(texts))
    size, extra = divmod(len(texts), count)
    plan, start = [], 0
    for k, chapter in enumerate(chapter_ids(voice, count)):
        block = texts[start:start + size + (k < extra)]
        start += len(block)
        for j, text in enumerate(block):
            para, sent = divmod(j, SENTENCES_PER_PARAGRAPH)
            plan.append(ShapedUtterance(f"{speaker}_{chapter}_{para:06d}_{sent:06d}", subset,
                                        speaker, chapter, voice, text))
    return plan


def librivox_plan() -> list[ShapedUtterance]:
    """test-other: the LibriVox recordings, one chapter, a paragraph each."""
    from vadusa.eval.resynthesize import librivox_utterances  # noqa: PLC0415 (imports torch)

    speaker = speaker_ids()[LIBRIVOX_NAME]
    (chapter,) = chapter_ids(LIBRIVOX_NAME, 1)
    return [ShapedUtterance(f"{speaker}_{chapter}_{k:06d}_000000", TEST_OTHER, speaker, chapter,
                            LIBRIVOX_NAME, text, str(wav))
            for k, (wav, text) in enumerate(librivox_utterances())]


# ---------------------------------------------------------------------------- the build


def make_libritts_shaped(cfg: Config, out: Path) -> dict[str, Any]:
    """Write (or complete) the corpus in ``out``; returns its summary (``summarize``)."""
    shaped, syn = cfg.corpus.libritts_shaped, cfg.corpus.synthetic
    _check_voices(shaped)
    if out.is_dir() and any(out.iterdir()) and not (out / "plan.json").is_file():
        raise CorpusError(f"{out} is not empty and was not made by `vadusa make-corpus` (it has "
                          "no plan.json): give a new or empty directory")
    sentences = fortune_sentences(syn.fortunes_dir, syn.min_words, syn.max_words)
    plan = plan_libritts_shaped(sentences, shaped, cfg.seed)
    if shaped.test_other:
        plan += librivox_plan()
    removed = _remove_unplanned(out, plan)
    if removed:
        log.info("%s: removed %d files no longer in the plan", out, removed)
    # what a file holds: the text, the voice (a variant's effects too, which may be retuned)
    # and the rate; any change makes it again
    forget_replanned(out / "plan.json", {
        u.id: (u.path(out), [u.voice, u.text, shaped.sample_rate,
                             list(VOICES[u.voice].effects) if u.voice in VOICES else []])
        for u in plan})
    todo = [u for u in plan if not u.path(out).is_file()]
    log.info("LibriTTS-shaped corpus: %d utterances planned, %d to make (%d already done)",
             len(plan), len(todo), len(plan) - len(todo))
    render([RenderJob(u.voice, u.text, u.path(out)) for u in todo if not u.source], syn,
           shaped.sample_rate)
    for utt in (u for u in todo if u.source):  # real speech: resampled, otherwise as recorded
        wave, rate = audio.read(utt.source, target_rate=shaped.sample_rate)
        audio.write_wav(utt.path(out), wave, rate)
    _write_texts(out, plan)
    summary = summarize(out, plan)
    _write_speakers(out, plan, summary)
    return summary


def _check_voices(shaped: LibriTTSShapedConfig) -> None:
    """Unseen means unseen: no voice in two of train, dev and test."""
    groups = {"train_voices": shaped.train_voices, "dev_voices": shaped.dev_voices,
              "test_voices": shaped.test_voices}
    names = list(groups)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = sorted(set(groups[a]) & set(groups[b]))
            if both:
                raise CorpusError(f"corpus.libritts_shaped: {', '.join(both)} in both {a} and "
                                  f"{b}; a dev or test speaker must speak in no other subset")
    for name in (v for voices in groups.values() for v in voices):
        check_available(get_voice(name))


def _remove_unplanned(out: Path, plan: list[ShapedUtterance]) -> int:
    """Delete the files an earlier plan made that this one does not list (the reader would
    take them for utterances), then the directories that leaves empty."""
    if not (out / "plan.json").is_file():
        return 0  # nothing of ours here yet (make_libritts_shaped refuses anything else)
    keep = {u.path(out, suffix) for u in plan for suffix in MADE_HERE[:3]}
    keep |= {_trans_path(out, u) for u in plan}
    removed = 0
    for subset in SUBSETS:
        for path in sorted((out / subset).glob("*/*/*")):
            if path.name.endswith(MADE_HERE) and path not in keep:
                path.unlink()
                removed += 1
        for directory in sorted((out / subset).glob("**/"), reverse=True):  # deepest first
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
    return removed


def _trans_path(out: Path, utt: ShapedUtterance) -> Path:
    return out / utt.subset / utt.speaker / utt.chapter / f"{utt.speaker}_{utt.chapter}.trans.tsv"


def _write_if_changed(path: Path, text: str) -> None:
    """Leave a file that already says this alone (a resumed run touches nothing it made)."""
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        write_text_atomic(path, text)


def _write_texts(out: Path, plan: list[ShapedUtterance]) -> None:
    chapters: dict[Path, list[str]] = defaultdict(list)
    for utt in plan:
        normalized = libritts_normalized(utt.text)
        _write_if_changed(utt.path(out, ".original.txt"), utt.text)
        _write_if_changed(utt.path(out, ".normalized.txt"), normalized)
        chapters[_trans_path(out, utt)].append(f"{utt.id}\t{utt.text}\t{normalized}\n")
    for path, lines in chapters.items():
        _write_if_changed(path, "".join(sorted(lines)))


def summarize(out: Path, plan: list[ShapedUtterance]) -> dict[str, Any]:
    """Utterances, measured hours and speakers per subset, and each speaker's voice."""
    subsets: dict[str, dict[str, Any]] = {}
    for utt in plan:
        rate, frames = audio.probe(utt.path(out))
        entry = subsets.setdefault(utt.subset, {"utterances": 0, "hours": 0.0, "speakers": {}})
        entry["utterances"] += 1
        entry["hours"] += frames / rate / 3600
        entry["speakers"][utt.speaker] = utt.voice
    for entry in subsets.values():
        entry["hours"] = round(entry["hours"], 4)
    ordered = {subset: subsets[subset] for subset in SUBSETS if subset in subsets}
    return {"root": str(out), "subsets": ordered}


def _write_speakers(out: Path, plan: list[ShapedUtterance], summary: dict[str, Any]) -> None:
    rows = sorted({(u.speaker, u.voice, u.subset) for u in plan})
    gender = {name: VOICES[name].gender for name in VOICES} | {LIBRIVOX_NAME: LIBRIVOX_GENDER}
    _write_if_changed(out / "speakers.tsv", "READER\tGENDER\tSUBSET\tNAME\n" + "".join(
        f"{spk}\t{gender[voice]}\t{subset}\t{voice}\n" for spk, voice, subset in rows))
    what = {name: f"{VOICES[name].engine} {VOICES[name].engine_voice}"
            + (f" + sox {' '.join(VOICES[name].effects)}" if VOICES[name].effects else "")
            + f" ({VOICES[name].description})" for name in VOICES}
    what[LIBRIVOX_NAME] = "a human LibriVox reader (Debian pocketsphinx-testdata)"
    lines = [
        "A LibriTTS-shaped corpus made offline by `vadusa make-corpus --layout libritts`.",
        "",
        "The released LibriTTS layout (<subset>/<speaker>/<chapter>/<id>.wav, 24 kHz 16-bit",
        "mono, with <id>.original.txt, <id>.normalized.txt and <speaker>_<chapter>.trans.tsv),",
        "read by `vadusa prepare` with corpus.source: libritts (config/libritts-local.yaml).",
        "The speech is synthetic (offline TTS voices reading fortune sentences), except",
        "test-other, which holds real LibriVox recordings. The speakers of dev-clean and",
        "test-clean never speak in train-clean-100. plan.json records what each file holds.",
        "",
        f"{'subset':<16}{'utterances':>11}{'hours':>8}{'speakers':>9}",
        *(f"{subset:<16}{e['utterances']:>11}{e['hours']:>8.3f}{len(e['speakers']):>9}"
          for subset, e in summary["subsets"].items()),
        "",
        f"{'speaker':<9}{'subset':<17}{'voice':<24}what it is",
        *(f"{spk:<9}{subset:<17}{voice:<24}{what[voice]}" for spk, voice, subset in rows),
    ]
    _write_if_changed(out / "README.txt", "\n".join(lines) + "\n")


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"LibriTTS-shaped corpus in {summary['root']}",
             f"{'subset':<16}{'utterances':>11}{'hours':>8}  speakers (voice)"]
    for subset, e in summary["subsets"].items():
        speakers = ", ".join(f"{spk} ({voice})" for spk, voice in sorted(e["speakers"].items()))
        lines.append(f"{subset:<16}{e['utterances']:>11}{e['hours']:>8.3f}  {speakers}")
    return "\n".join(lines)
