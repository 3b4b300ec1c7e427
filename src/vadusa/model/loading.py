"""A trained TTS model rebuilt from its checkpoint alone, and the prefixes it decodes from.

``base.pt`` holds the weights and everything needed to use them (see training/tts.py): the
transformer's shape, the vocabularies, the speakers, the text symbols and the token family.
``heads.pt`` (training/heads.py) holds the same plus the draft heads (``meta["heads"]``); it
loads into the same bundle with ``heads`` set.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from vadusa.checkpoint import CheckpointError, load_checkpoint
from vadusa.data.text import SymbolTable, normalize
from vadusa.model.draft_heads import DraftHeads
from vadusa.model.transformer import Transformer, TransformerConfig
from vadusa.model.tts import TTSVocab, build_sequence


class SynthesisInputError(ValueError):
    """Text, speaker or prompt the model cannot take; the message says why and what to do."""


@dataclass
class TTSBundle:
    model: Transformer
    vocab: TTSVocab
    symbols: SymbolTable
    speakers: list[str]
    family: str
    frame_rate: float
    meta: dict[str, Any]
    heads: DraftHeads | None = None  # draft heads, when loaded from a heads.pt

    @property
    def max_seq(self) -> int:
        return self.model.cfg.max_seq

    @property
    def dtype(self) -> torch.dtype:
        return self.model.head.weight.dtype

    def to(self, dtype: torch.dtype) -> TTSBundle:
        """This bundle with the model and heads in ``dtype`` (copies; ``self`` is unchanged)."""
        if dtype == self.dtype:
            return self
        model = copy.deepcopy(self.model).to(dtype)
        heads = None if self.heads is None else copy.deepcopy(self.heads).to(dtype)
        return replace(self, model=model, heads=heads)


def load_tts(path: str | Path, device: str | torch.device = "cpu",
             family: str | None = None, vocab_size: int | None = None,
             dtype: torch.dtype | None = None) -> TTSBundle:
    """Load ``base.pt`` or ``heads.pt``; with ``family``/``vocab_size``, refuse a model of
    other tokens; with ``dtype``, cast the model and heads to it (decoding precision)."""
    blob = load_checkpoint(path)
    if blob["kind"] not in ("tts", "vadusa"):
        raise CheckpointError(f"{path} is a {blob['kind']!r} checkpoint, not a TTS model "
                              f"(base.pt from `vadusa train-base` or heads.pt from "
                              f"`vadusa train-heads`/`train-joint`)")
    meta = blob["meta"]
    if family is not None and meta["family"] != family:
        raise SynthesisInputError(f"{path} was trained on {meta['family']!r} tokens, "
                                  f"not {family!r}")
    vocab = TTSVocab(**meta["vocab"])
    if vocab_size is not None and vocab.n_units != vocab_size:
        raise SynthesisInputError(f"{path} has a vocabulary of {vocab.n_units} units, the "
                                  f"tokens given have {vocab_size}")
    model = Transformer(TransformerConfig(**meta["transformer"]))
    heads = None
    if blob["kind"] == "vadusa":
        model.load_state_dict(blob["state"]["model"])
        heads = DraftHeads(int(meta["heads"]["count"]), model.cfg.dim, model.cfg.output_size,
                           model.head)
        heads.load_state_dict(blob["state"]["heads"])
        heads.to(device=device, dtype=dtype).eval()
    else:
        model.load_state_dict(blob["state"])
    model.to(device=device, dtype=dtype).eval()
    symbols = SymbolTable(symbols=tuple(meta["symbols"]),
                          frontend=meta.get("text_frontend", "characters"))  # older: letters
    return TTSBundle(model, vocab, symbols,
                     list(meta["speakers"]), meta["family"], float(meta["frame_rate"]), meta,
                     heads)


def text_ids(bundle: TTSBundle, text: str) -> list[int]:
    if not text.strip():
        raise SynthesisInputError("empty text: nothing to synthesize")
    normalized = normalize(text)
    if not normalized.strip(" ,.?!'"):
        raise SynthesisInputError(f"no speakable symbols in {text!r}: the model reads words "
                                  f"({bundle.symbols.frontend}), give it letters or numbers")
    return bundle.symbols.encode(normalized)


def speaker_index(bundle: TTSBundle, speaker: str | None) -> int | None:
    if not bundle.meta.get("speaker_embedding", True):
        return None
    if speaker is None:
        return bundle.vocab.unknown_speaker
    if speaker not in bundle.speakers:
        raise SynthesisInputError(f"unknown speaker {speaker!r}; known speakers: "
                                  f"{', '.join(bundle.speakers)}")
    return bundle.speakers.index(speaker)


def max_new_tokens(bundle: TTSBundle, n_symbols: int, per_symbol: float) -> int:
    return math.ceil(per_symbol * n_symbols) + 10


def synthesis_prefix(bundle: TTSBundle, text: str, speaker: str | None,
                     prompt: tuple[str, list[int]] | None, per_symbol: float
                     ) -> tuple[torch.Tensor, int]:
    """(L,) input ids ending in ``bos`` + prompt speech, and the token budget to decode."""
    ids = text_ids(bundle, text)
    if prompt is not None:
        prompt_text, prompt_speech = text_ids(bundle, prompt[0]) + [0], list(prompt[1])
    elif speaker is not None and speaker in bundle.meta.get("prompts", {}):
        # the speaker's fixed prompt from training (training always conditions on one)
        stored = bundle.meta["prompts"][speaker]
        prompt_text, prompt_speech = list(stored["text"]) + [0], list(stored["tokens"])
    else:
        prompt_text, prompt_speech = [], []
    prefix = build_sequence(bundle.vocab, speaker_index(bundle, speaker), prompt_text, ids,
                            prompt_speech, None).input_ids
    budget = max_new_tokens(bundle, len(ids), per_symbol)
    if len(prefix) + budget > bundle.max_seq:
        raise SynthesisInputError(
            f"text too long for the model: {len(ids)} symbols need up to {budget} speech tokens"
            f" after a {len(prefix)}-token prefix, beyond model.max_seq={bundle.max_seq}; "
            "split the text into sentences and synthesize them one by one")
    return prefix, budget
