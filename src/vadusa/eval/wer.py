"""Word and character error rates with one documented text normalization.

Both reference and hypothesis go through ``normalize_for_wer``: Unicode -> ASCII, lower case,
numbers spelled out (Whisper writes "42", our texts say "forty two"), ``&`` -> "and", hyphens
and dashes -> spaces, every other punctuation mark removed (apostrophes inside words kept:
"don't" stays one word), whitespace collapsed. Corpus-level rates are computed over all words
(errors / reference words), not averaged per utterance; ``utterance_errors`` gives the
per-utterance counts those sums are made of (what a bootstrap over utterances resamples).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import jiwer

from vadusa.data.text import spell_numbers, to_ascii


def normalize_for_wer(text: str) -> str:
    text = spell_numbers(to_ascii(text)).lower().replace("&", " and ")
    text = re.sub(r"[-\u2013\u2014/]", " ", text)
    text = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", text)  # quotes, not apostrophes
    text = re.sub(r"[^a-z' ]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


@dataclass(frozen=True)
class ErrorRates:
    wer: float
    cer: float
    words: int  # reference words
    substitutions: int
    deletions: int
    insertions: int


def _normalized(references: Sequence[str], hypotheses: Sequence[str]
                ) -> tuple[list[str], list[str]]:
    refs = [normalize_for_wer(r) for r in references]
    hyps = [normalize_for_wer(h) for h in hypotheses]
    if not refs or any(not r for r in refs):
        raise ValueError("error rates need non-empty references")
    return refs, hyps


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> ErrorRates:
    """Corpus-level WER and CER over normalized texts. Empty references are not allowed."""
    refs, hyps = _normalized(references, hypotheses)
    words = jiwer.process_words(refs, hyps)
    chars = jiwer.process_characters(refs, hyps)
    n_words = sum(len(r.split()) for r in refs)
    return ErrorRates(wer=words.wer, cer=chars.cer, words=n_words,
                      substitutions=words.substitutions, deletions=words.deletions,
                      insertions=words.insertions)


def _edits(alignment: Sequence[jiwer.AlignmentChunk]) -> int:
    """Substitutions + deletions + insertions of one sentence's alignment, counted the way
    ``jiwer.process_words`` counts them for its totals."""
    return sum(c.hyp_end_idx - c.hyp_start_idx if c.type == "insert"
               else c.ref_end_idx - c.ref_start_idx
               for c in alignment if c.type != "equal")


def utterance_errors(references: Sequence[str], hypotheses: Sequence[str]
                     ) -> list[dict[str, int]]:
    """Per utterance: ``word_errors`` over ``words`` reference words, ``char_errors`` over
    ``chars`` reference characters (spaces included, as in the CER of ``error_rates``).

    Same normalization and the same jiwer alignments as ``error_rates``, read per sentence:
    sum(word_errors) / sum(words) is exactly its ``wer``, and likewise for ``cer``.
    """
    refs, hyps = _normalized(references, hypotheses)
    words = jiwer.process_words(refs, hyps)
    chars = jiwer.process_characters(refs, hyps)
    return [{"word_errors": _edits(w_align), "words": len(w_ref),
             "char_errors": _edits(c_align), "chars": len(c_ref)}
            for w_align, w_ref, c_align, c_ref in zip(words.alignments, words.references,
                                                      chars.alignments, chars.references,
                                                      strict=True)]


def all_deleted(reference: str) -> dict[str, int]:
    """The counts of an utterance that failed (nothing decoded, nothing vocoded): every word
    and character of its reference deleted. A failure left out of the rates would flatter a
    system that fails often."""
    try:
        return utterance_errors([reference], [""])[0]
    except ValueError:  # nothing to say in the reference either: no words to lose
        return {"word_errors": 0, "words": 0, "char_errors": 0, "chars": 0}
