from __future__ import annotations

from pathlib import Path

import pytest

from vadusa.data.phonemes import PhonemizerError, split_phonemes
from vadusa.data.text import (
    CHARACTERS,
    SymbolTable,
    TextError,
    fortune_sentences,
    is_clean_sentence,
    normalize,
    number_to_words,
    ordinal_words,
    split_sentences,
    symbol_table,
)


@pytest.mark.parametrize(
    ("n", "words"),
    [(0, "zero"), (7, "seven"), (13, "thirteen"), (40, "forty"), (42, "forty two"),
     (100, "one hundred"), (1905, "one thousand nine hundred five"),
     (2_000_017, "two million seventeen")],
)
def test_number_to_words(n: int, words: str) -> None:
    assert number_to_words(n) == words


def test_ordinals() -> None:
    assert [ordinal_words(n) for n in (1, 2, 3, 5, 12, 20, 21)] == [
        "first", "second", "third", "fifth", "twelfth", "twentieth", "twenty first"]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Hello, World!", "hello, world!"),
        ("It's 3 o'clock -- time to go.", "it's three o'clock, time to go."),
        ("Caf\u00e9 \u201cnoir\u201d & cr\u00e8me?!", "cafe noir and creme?"),
        ("He paid 1,000 dollars on the 21st.", "he paid one thousand dollars on the twenty first."),
        ("  spaces   everywhere  ", "spaces everywhere"),
        ("***", ""),
    ],
)
def test_normalize(raw: str, clean: str) -> None:
    assert normalize(raw) == clean


def test_normalized_text_is_in_the_inventory() -> None:
    table = symbol_table("characters")
    text = normalize("Wait -- what's 42? Nothing: a $5 bill & a 2nd try!")
    assert table.decode(table.encode(text)) == text


def test_symbol_table_round_trip(tmp_path: Path) -> None:
    table = SymbolTable()
    table.save(tmp_path / "symbols.json")
    assert SymbolTable.load(tmp_path / "symbols.json") == table
    assert len(table) == len(CHARACTERS) == len(set(CHARACTERS))


def test_unknown_symbols_and_frontends_are_errors() -> None:
    with pytest.raises(TextError, match="not in the characters inventory"):
        SymbolTable().encode("hello #1")
    with pytest.raises(TextError, match="unknown text frontend"):
        symbol_table("klingon")


def test_phonemes_of_a_sentence() -> None:
    """espeak-ng's US English phonemes: whole diphthongs, stress marks before their vowel,
    a space between words and the text's punctuation where it was."""
    table = symbol_table("phonemes")
    units = table.units(normalize("I like tea, don't you?"))
    assert list(units) == ["ˈ", "aɪ", " ", "l", "ˈ", "aɪ", "k", " ", "t", "ˈ", "iː", ",", " ",
                           "d", "ˈ", "oʊ", "n", "t", " ", "j", "uː", "?"]
    assert table.decode(table.encode(normalize("I like tea, don't you?"))) == "".join(units)
    assert len(table) == len(set(table.symbols))


def test_every_fortune_sentence_has_phonemes_in_the_inventory() -> None:
    """The inventory covers what espeak says for the whole text source of the corpus (the
    same measurement that chose it)."""
    sentences = fortune_sentences("/usr/share/games/fortunes", 5, 20)
    table = symbol_table("phonemes")
    lengths = [len(table.encode(normalize(s))) for s in sentences]
    assert len(lengths) > 5000 and min(lengths) > 5


def test_unknown_espeak_phonemes_split_into_known_ones_or_fail() -> None:
    assert split_phonemes("θ_ˈææ_ɐɐ_ts") == ["θ", "ˈ", "æ", "æ", "ɐ", "ɐ", "t", "s"]
    with pytest.raises(PhonemizerError, match="not in the inventory"):
        split_phonemes("t_ʁ")


@pytest.mark.parametrize(
    ("sentence", "ok"),
    [
        ("The quick brown fox jumps over the lazy dog.", True),
        ("Don't panic, it's only a test!", True),
        ("Is this the real life?", True),
        ("Too short.", False),
        ("The NASA budget was cut again this year.", False),  # acronym
        ("Mr Smith went to the market today.", False),  # abbreviation
        ("He bought 3 apples at the market today.", False),  # digits
        ("She said \"hello\" to everyone in the room.", False),  # quotes
        ("no capital letter at the start of this one.", False),
        ("There is no final punctuation mark here", False),
        ("Wait... what happened to all the others?", False),
    ],
)
def test_clean_sentence_filter(sentence: str, ok: bool) -> None:
    assert is_clean_sentence(sentence, min_words=5, max_words=20) is ok


def test_split_sentences() -> None:
    assert split_sentences("One two three. Four five?  Six!\nSeven") == [
        "One two three.", "Four five?", "Six!", "Seven"]


def test_fortune_sentences_from_files(tmp_path: Path) -> None:
    (tmp_path / "wisdom").write_text(
        "A penny saved is a penny earned. Do not count your chickens before they hatch.\n%\n"
        "The early bird catches the worm, they say.\n\t\t-- Proverb\n%\n"
        "\tRoses are red,\n\tviolets are blue,\n\tthis verse is indented and dropped.\n%\n"
        "A penny saved is a penny earned.\n")
    (tmp_path / "wisdom.dat").write_bytes(b"\x00\x01")  # index files are ignored
    sentences = fortune_sentences(tmp_path, min_words=5, max_words=20)
    assert sentences == sorted([
        "A penny saved is a penny earned.",
        "Do not count your chickens before they hatch.",
        "The early bird catches the worm, they say.",
    ])


def test_missing_fortunes_dir_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(TextError, match="apt-get install fortunes"):
        fortune_sentences(tmp_path / "nope", 5, 20)
