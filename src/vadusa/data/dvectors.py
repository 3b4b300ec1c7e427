"""Speaker embeddings of a corpus: one GE2E d-vector per utterance, for every split.

    <corpus>/dvectors/<split>.npz           ids (N,) str, dvectors (N, 256) float32, unit norm
    <corpus>/dvectors/<split>.skipped.tsv   id <TAB> reason: utterances without a d-vector

Written by ``vadusa embed-speakers`` (``compute_dvectors``), read by the unit vocoder's training
when it conditions on d-vectors (``vocoder.speaker_conditioning: dvector``), so that it renders
a voice it never heard from a few seconds of that voice (the acoustic prompt). The encoder is
the pretrained one shipped in the Resemblyzer wheel (``vadusa.eval.similarity``): the same
that scores speaker similarity, so what the vocoder is conditioned on and what SIM measures
agree.

An utterance whose audio gives no embedding (silent, or too little voiced speech:
``SimilarityError``) is not fatal: it is logged, left out of the ``.npz`` and listed with its
reason in the ``.skipped.tsv`` beside it (always written, empty when nothing was skipped, so a
stale list never outlives its ``.npz``). Audio that cannot be read at all is the corpus's error
and stops the run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm import tqdm

from vadusa.atomic import atomic_path, write_text_atomic
from vadusa.data.audio import read
from vadusa.data.manifest import manifest_path, read_manifest

__all__ = ["DIM", "DvectorStoreError", "EmbeddedSplit", "dvectors_path", "skipped_path",
           "compute_dvectors", "write_dvectors", "read_dvectors", "read_skipped",
           "mean_dvector"]

log = logging.getLogger(__name__)

DIM = 256  # GE2E d-vectors (Resemblyzer's VoiceEncoder)
COMMAND = "vadusa embed-speakers"


class DvectorStoreError(ValueError):
    pass


class EmbeddedSplit(NamedTuple):
    """What ``compute_dvectors`` wrote: the ``.npz``, how many d-vectors it holds, and the
    utterances left out (id -> why)."""

    path: Path
    embedded: int
    skipped: dict[str, str]


def dvectors_path(corpus_dir: str | Path, split: str) -> Path:
    return Path(corpus_dir) / "dvectors" / f"{split}.npz"


def skipped_path(corpus_dir: str | Path, split: str) -> Path:
    return Path(corpus_dir) / "dvectors" / f"{split}.skipped.tsv"


def compute_dvectors(corpus_dir: str | Path, split: str, encoder: Any = None,
                     device: str = "cpu") -> EmbeddedSplit:
    """Embed every utterance of a split's manifest; write ``dvectors/<split>.npz`` and its
    ``.skipped.tsv``.

    ``encoder``: anything with ``embed(wave, rate) -> (256,)`` raising ``SimilarityError``
    (default: a ``SpeakerSimilarity`` on ``device``)."""
    from vadusa.eval.similarity import SimilarityError, SpeakerSimilarity  # noqa: PLC0415

    records = read_manifest(manifest_path(corpus_dir, split))
    encoder = encoder if encoder is not None else SpeakerSimilarity(device)
    ids: list[str] = []
    vectors: list[np.ndarray] = []
    skipped: dict[str, str] = {}
    for rec in tqdm(records, desc=f"d-vectors ({split})", unit="utt"):
        wave, rate = read(rec.audio_path, rec.offset, rec.num_samples)
        try:
            vector = np.asarray(encoder.embed(wave, rate), dtype=np.float32)
        except SimilarityError as exc:
            log.warning("%s: no d-vector (%s)", rec.id, exc)
            skipped[rec.id] = str(exc)
            continue
        ids.append(rec.id)
        vectors.append(vector)
    path = write_dvectors(dvectors_path(corpus_dir, split), ids,
                          np.stack(vectors) if vectors else np.zeros((0, DIM), np.float32))
    # reasons are one line each: a tab or newline inside one would break the table
    lines = [f"{utt_id}\t{' '.join(reason.split())}\n" for utt_id, reason in skipped.items()]
    write_text_atomic(skipped_path(corpus_dir, split), "".join(lines))
    return EmbeddedSplit(path, len(ids), skipped)


def write_dvectors(path: str | Path, ids: list[str], vectors: np.ndarray) -> Path:
    """Write ids and their (N, 256) d-vectors atomically."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.shape != (len(ids), DIM):
        raise DvectorStoreError(f"{len(ids)} ids need ({len(ids)}, {DIM}) d-vectors, got "
                                f"shape {vectors.shape}")
    if len(set(ids)) != len(ids):
        raise DvectorStoreError(f"duplicate utterance ids in the d-vectors of {path}")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, ids=np.asarray(ids, dtype=str), dvectors=vectors)
    return Path(path)


def read_dvectors(corpus_dir: str | Path, split: str) -> dict[str, np.ndarray]:
    """Utterance id -> (256,) float32 d-vector of one split (skipped utterances are absent)."""
    path = dvectors_path(corpus_dir, split)
    if not path.is_file():
        raise DvectorStoreError(f"no d-vectors of the {split} split: {path} does not exist "
                                f"(run `{COMMAND} --corpus {corpus_dir} --split {split}`, or "
                                f"the workflow's speaker_embeddings rule)")
    try:
        with np.load(path, allow_pickle=False) as blob:
            ids, vectors = [str(i) for i in blob["ids"]], blob["dvectors"]
    except (OSError, ValueError, KeyError) as exc:
        raise DvectorStoreError(f"{path} is damaged or not a d-vector file ({exc}): delete it "
                                f"and rerun `{COMMAND} --corpus {corpus_dir} --split "
                                f"{split}`") from exc
    if vectors.shape != (len(ids), DIM):
        raise DvectorStoreError(f"{path}: {len(ids)} ids but d-vectors of shape "
                                f"{vectors.shape}, expected ({len(ids)}, {DIM})")
    return {utt_id: vectors[i].astype(np.float32) for i, utt_id in enumerate(ids)}


def read_skipped(corpus_dir: str | Path, split: str) -> dict[str, str]:
    """Utterance id -> why it has no d-vector (empty when the list is absent)."""
    path = skipped_path(corpus_dir, split)
    if not path.is_file():
        return {}
    rows = (line.split("\t", 1) for line in path.read_text().splitlines() if line)
    return {row[0]: row[1] if len(row) > 1 else "" for row in rows}


def mean_dvector(dvectors: Mapping[str, np.ndarray], ids: Iterable[str]) -> np.ndarray:
    """The mean d-vector of some utterances (e.g. all of one speaker's), renormalized to unit
    length as each d-vector is: (256,) float32. Ids without a d-vector are passed over; none
    with one is an error."""
    found = [dvectors[i] for i in ids if i in dvectors]
    if not found:
        raise DvectorStoreError("none of the utterances has a d-vector (all were skipped, or "
                                "they are not in this split's d-vector file)")
    mean = np.mean(np.stack(found), axis=0)  # (K, 256) -> (256,)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-8:
        raise DvectorStoreError("the d-vectors cancel out: their mean has no direction")
    return (mean / norm).astype(np.float32)
