"""Phonemes for the model's input: espeak-ng (US English), read in-process through its C API.

Why phonemes: a small model trained for half an hour on a few hours of speech learns *where*
it is in the text quickly (the alignment is diagonal after a few hundred steps) but not
English spelling; with letters it reads fluent, well-timed nonsense. Phonemes remove the
spelling problem from what it must learn.

``phonemize("it's a test")`` -> ``["ɪ", "t", "s", " ", "ɐ", " ", "t", "ˈ", "ɛ", "s", "t"]``:
one symbol per espeak phoneme (diphthongs and r-coloured vowels such as ``aɪ`` and ``ɑːɹ``
stay whole), the stress marks ``ˈ ˌ`` as their own symbols before the vowel they stress, a
space between words, and the punctuation of the normalized text (``, . ? !``) kept in place,
because espeak drops it and it carries the pauses.

The library is ``libespeak-ng.so.1`` from Debian's ``espeak-ng`` package (installed by
``scripts/setup.sh``). espeak is called with one clause at a time (the text between two
punctuation marks) and the phonemes are separated by ``_`` (its ``phonememode`` separator),
which makes the split into phonemes exact. A call takes about 0.2 ms.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import threading
from functools import lru_cache

# The US English phonemes espeak-ng 1.51 emits, measured on all 13 k fortune sentences (the
# long tail: ``oː`` 287, ``ʒ`` 265, ``n̩`` 210, ``ʔ`` 188 occurrences; ``r`` once).
PHONEMES = (
    "n t ɪ s ə d l ɹ z k m æ ð ʌ ɛ w p v b f aɪ iː uː eɪ ɚ ɐ oʊ h i ŋ j ɑː ɡ ᵻ ɾ ʃ əl ɜː ʊ ɔː "
    "aʊ θ dʒ tʃ ɑːɹ ɔ ɔːɹ oːɹ ɛɹ ʊɹ ɪɹ iə ɔɪ aɪə oː aɪɚ ʒ n̩ ʔ r"
).split()
_KNOWN = frozenset(PHONEMES)
STRESS = ("ˈ", "ˌ")
PUNCTUATION = ",.?!"
VOICE = "en-us"

_ESPEAK_CHARS_UTF8 = 1  # espeak_TextToPhonemes textmode
_IPA = 0x02  # phonememode bit 1: IPA rather than espeak's ASCII phoneme names
_SEPARATOR = "_"
_AUDIO_OUTPUT_SYNCHRONOUS = 2  # espeak_Initialize: no sound device, nothing is spoken


class PhonemizerError(RuntimeError):
    pass


class _Espeak:
    """The handful of libespeak-ng calls we need. One instance per process (the library keeps
    global state), used under a lock."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            lib = ctypes.cdll.LoadLibrary(name)
        except OSError as exc:
            raise PhonemizerError(
                "text.frontend 'phonemes' needs the espeak-ng library (libespeak-ng.so.1): "
                "`apt-get install espeak-ng` (scripts/setup.sh does it), or set "
                "text.frontend: characters") from exc
        if lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0) <= 0:
            raise PhonemizerError("espeak-ng failed to initialise (is espeak-ng-data installed?)")
        if lib.espeak_SetVoiceByName(VOICE.encode()) != 0:
            raise PhonemizerError(f"espeak-ng has no voice {VOICE!r}")
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int,
                                              ctypes.c_int]
        self.lib = lib
        self.lock = threading.Lock()

    def clause(self, text: str) -> str:
        """IPA of a text without punctuation, phonemes joined by ``_``, words by spaces."""
        buffer = ctypes.create_string_buffer(text.encode("utf-8"))
        pointer = ctypes.c_void_p(ctypes.addressof(buffer))
        mode = _IPA | (ord(_SEPARATOR) << 8)
        parts = []
        with self.lock:
            while pointer.value:  # espeak advances the pointer clause by clause, NULL at the end
                out = self.lib.espeak_TextToPhonemes(ctypes.byref(pointer), _ESPEAK_CHARS_UTF8,
                                                     mode)
                if out:
                    parts.append(out.decode("utf-8"))
        return " ".join(parts)


@lru_cache(maxsize=1)
def _espeak() -> _Espeak:
    return _Espeak()


def split_phonemes(word: str) -> list[str]:
    """``_``-separated espeak output of one word -> symbols of the inventory. A phoneme outside
    it (espeak's rare doubled vowels such as ``ææ``) is split greedily into known ones."""
    symbols: list[str] = []
    for phone in word.split(_SEPARATOR):
        while phone:
            if phone[0] in STRESS:
                symbols.append(phone[0])
                phone = phone[1:]
                continue
            for size in range(min(4, len(phone)), 0, -1):
                if phone[:size] in _KNOWN:
                    symbols.append(phone[:size])
                    phone = phone[size:]
                    break
            else:
                raise PhonemizerError(f"espeak-ng phoneme {phone!r} is not in the inventory "
                                      f"(vadusa.data.phonemes.PHONEMES)")
    return symbols



@lru_cache(maxsize=65536)
def phonemize(normalized_text: str) -> tuple[str, ...]:
    """Symbols of a normalized text (vadusa.data.text.normalize): phonemes, stress marks,
    spaces between words, punctuation kept."""
    symbols: list[str] = []
    for chunk in re.split(r"([,.?!])", normalized_text):
        if chunk and chunk in PUNCTUATION:
            if symbols and symbols[-1] == " ":
                symbols.pop()
            symbols.append(chunk)
            continue
        words = _espeak().clause(chunk).split() if chunk.strip() else []
        for word in words:
            if symbols and symbols[-1] != " ":
                symbols.append(" ")
            symbols.extend(split_phonemes(word))
    return tuple(symbols)
