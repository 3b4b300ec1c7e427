"""Word and character error rates with one documented text normalization.

Both reference and hypothesis go through ``normalize_for_wer``: Unicode -> ASCII, lower case,
numbers spelled out (Whisper writes "42", our texts say "forty two"), ``&`` -> "and", hyphens
and dashes -> spaces, every other punctuation mark removed (apostrophes inside words kept:
"don't" stays one word), whitespace collapsed. Corpus-level rates are computed over all words
(errors / reference words), not averaged per utterance.
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


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> ErrorRates:
    """Corpus-level WER and CER over normalized texts. Empty references are not allowed."""
    refs = [normalize_for_wer(r) for r in references]
    hyps = [normalize_for_wer(h) for h in hypotheses]
    if not refs or any(not r for r in refs):
        raise ValueError("error rates need non-empty references")
    words = jiwer.process_words(refs, hyps)
    chars = jiwer.process_characters(refs, hyps)
    n_words = sum(len(r.split()) for r in refs)
    return ErrorRates(wer=words.wer, cer=chars.cer, words=n_words,
                      substitutions=words.substitutions, deletions=words.deletions,
                      insertions=words.insertions)
