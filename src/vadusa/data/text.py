"""The text front end: normalization, the input symbol inventory, and clean-sentence filtering.

Two input front ends (``text.frontend``), both starting from the normalized text below:

- ``characters``: lower-case letters, space, apostrophe and four punctuation marks that carry
  prosody (``, . ? !``). No G2P needed, but the model must learn English spelling.
- ``phonemes`` (the embedded default's choice): espeak-ng's US English phonemes, stress marks,
  spaces and the same punctuation (vadusa.data.phonemes). A small model trained for half an
  hour learns these far sooner than spelling.

The corpus keeps its (character) inventory next to the manifests (``symbols.json``); a model
keeps the inventory and front end it was trained with in its checkpoint.

Normalization (used for model input and, in a looser form, for WER):
  Unicode -> ASCII, lower case, numbers spelled out ("42" -> "forty two"), ``&`` -> "and",
  dashes and colons -> pause (``,``), everything outside the inventory dropped, spaces collapsed.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vadusa.atomic import write_text_atomic
from vadusa.data.phonemes import PHONEMES, STRESS, phonemize

LETTERS = "abcdefghijklmnopqrstuvwxyz"
PUNCTUATION = ",.?!"
CHARACTERS = (" ", "'", *PUNCTUATION, *LETTERS)
PHONEME_SYMBOLS = (" ", *PUNCTUATION, *STRESS, *PHONEMES)
FRONTENDS = ("characters", "phonemes")


class TextError(ValueError):
    pass


# ---------------------------------------------------------------------------- numbers -> words

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))


def number_to_words(n: int) -> str:
    """Cardinal English words for a non-negative integer: 1905 -> 'one thousand nine hundred
    five'. (No 'and', as in the normalized LibriTTS transcripts.)"""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            words = f"{number_to_words(head)} {name}"
            return words if rest == 0 else f"{words} {number_to_words(rest)}"
    raise AssertionError("unreachable")


_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth",
             "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}


def ordinal_words(n: int) -> str:
    """21 -> 'twenty first'."""
    *head, last = number_to_words(n).split()
    if last in _ORDINALS:
        last = _ORDINALS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join([*head, last])


def spell_numbers(text: str) -> str:
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    text = re.sub(r"(\d+)(?:st|nd|rd|th)\b", lambda m: f" {ordinal_words(int(m.group(1)))} ", text)
    return re.sub(r"\d+", lambda m: f" {number_to_words(int(m.group()))} ", text)


# ---------------------------------------------------------------------------- normalization


def to_ascii(text: str) -> str:
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def normalize(text: str) -> str:
    """Model-input normalization (see module docstring). May return an empty string."""
    text = spell_numbers(to_ascii(text)).lower()
    text = text.replace("&", " and ")
    text = re.sub(r"\s*(--|[-:;])\s*", ", ", text)  # dashes, colons -> a short pause
    text = "".join(ch if ch in CHARACTERS else (" " if ch.isspace() else "") for ch in text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r" ([,.?!])", r"\1", text)  # no space before punctuation
    text = re.sub(r"([,.?!])[,.?!]+", r"\1", text)  # one mark at a time
    return text.strip(" ,")


# ---------------------------------------------------------------------------- the inventory


@dataclass(frozen=True)
class SymbolTable:
    """Input symbols of the model; ids are positions in ``symbols``."""

    symbols: tuple[str, ...] = CHARACTERS
    frontend: str = "characters"

    def __len__(self) -> int:
        return len(self.symbols)

    def units(self, normalized_text: str) -> Sequence[str]:
        """The text as a sequence of symbols of this front end."""
        if self.frontend == "phonemes":
            return phonemize(normalized_text)
        return normalized_text

    def encode(self, normalized_text: str) -> list[int]:
        index = {s: i for i, s in enumerate(self.symbols)}
        units = self.units(normalized_text)
        unknown = sorted({u for u in units if u not in index})
        if unknown:
            raise TextError(f"symbols not in the {self.frontend} inventory: {unknown!r} in "
                            f"{normalized_text!r}")
        return [index[u] for u in units]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.symbols[i] for i in ids)

    def save(self, path: str | Path) -> None:
        blob = {"frontend": self.frontend, "symbols": list(self.symbols)}
        write_text_atomic(path, json.dumps(blob, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> SymbolTable:
        blob = json.loads(Path(path).read_text())
        return cls(symbols=tuple(blob["symbols"]), frontend=blob["frontend"])


def symbol_table(frontend: str) -> SymbolTable:
    if frontend == "characters":
        return SymbolTable()
    if frontend == "phonemes":
        return SymbolTable(symbols=PHONEME_SYMBOLS, frontend="phonemes")
    raise TextError(f"unknown text frontend {frontend!r} (available: {', '.join(FRONTENDS)})")


# ---------------------------------------------------------------------------- clean sentences

_CLEAN = re.compile(r"^[A-Z][A-Za-z ,']*[a-z][.?!]$")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "inc", "ltd", "co"}


def is_clean_sentence(sentence: str, min_words: int, max_words: int) -> bool:
    """A sentence a voice reads unambiguously: plain ASCII letters, commas and apostrophes,
    one final mark, no digits, no acronyms, no abbreviations, min..max words."""
    if not _CLEAN.match(sentence) or "  " in sentence or ",," in sentence:
        return False
    words = sentence[:-1].replace(",", " ").split()
    if not min_words <= len(words) <= max_words:
        return False
    for word in words:
        bare = word.strip("'")
        if not bare or (len(bare) > 1 and sum(c.isupper() for c in bare) > 1):
            return False  # acronym or stray quote
        if bare.lower() in _ABBREVIATIONS:
            return False
    return True


def split_sentences(passage: str) -> list[str]:
    passage = re.sub(r"\s+", " ", passage).strip()
    return [s.strip() for s in re.split(r"(?<=[.?!])\s+(?=[A-Z])", passage) if s.strip()]


def fortune_passages(fortunes_dir: str | Path) -> Iterable[str]:
    """Passages of the Debian fortune files (entries separated by ``%`` lines), with
    attribution lines (``-- Author``) and indented (verse, dialogue) entries dropped."""
    fortunes_dir = Path(fortunes_dir)
    if not fortunes_dir.is_dir():
        raise TextError(
            f"fortunes directory not found: {fortunes_dir} "
            "(install it with `apt-get install fortunes fortunes-min`)"
        )
    files = sorted(
        p for p in fortunes_dir.iterdir() if p.is_file() and not p.suffix and not p.is_symlink()
    )
    if not files:
        raise TextError(f"no fortune files in {fortunes_dir}")
    for path in files:
        text = path.read_text(encoding="latin-1")
        for entry in text.split("\n%\n"):
            lines = [ln for ln in entry.splitlines() if not ln.strip().startswith("--")]
            if sum(ln.startswith(("\t", "    ")) for ln in lines) > len(lines) // 2:
                continue  # mostly indented: verse, dialogue, ascii art
            yield " ".join(lines)


def fortune_sentences(fortunes_dir: str | Path, min_words: int, max_words: int) -> list[str]:
    """Unique clean sentences from the fortune files, in a stable (sorted) order."""
    unique: dict[str, str] = {}
    for passage in fortune_passages(fortunes_dir):
        for sentence in split_sentences(passage):
            if is_clean_sentence(sentence, min_words, max_words):
                unique.setdefault(normalize(sentence), sentence)
    return sorted(unique.values())
