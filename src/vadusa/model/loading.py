"""A trained TTS model rebuilt from its checkpoint alone, and the prefixes it decodes from.

``base.pt`` holds the weights and everything needed to use them (see training/tts.py): the
transformer's shape, the vocabularies, the speakers, the text symbols and the token family.
``heads.pt`` (training/heads.py) holds the same plus the draft heads (``meta["heads"]``); it
loads into the same bundle with ``heads`` set. A model trained with durations
(``model.alignment: duration``) carries its duration model in ``meta["durations"]`` (weights
included), so synthesis plans the frames of a text from the checkpoint alone.

Without a speaker, a model with a speaker embedding speaks with its **default voice**, the
first of its training speakers (``TTSBundle.default_speaker``): training never shows it the
"unknown speaker" id, so decoding on it would condition on an untrained embedding.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from vadusa.checkpoint import CheckpointError, load_checkpoint
from vadusa.data.text import SymbolTable, normalize
from vadusa.model.aligner import spoken
from vadusa.model.draft_heads import DraftHeads, HydraHeads, make_heads
from vadusa.model.durations import DurationConfig, DurationModel
from vadusa.model.transformer import Transformer, TransformerConfig
from vadusa.model.tts import INSIDE, TTSVocab, build_sequence


class SynthesisInputError(ValueError):
    """Text, speaker or prompt the model cannot take; the message says why and what to do."""


class TextTooLongError(SynthesisInputError):
    """A text that needs more positions than the model has (``model.max_seq``)."""


@dataclass
class TTSBundle:
    model: Transformer
    vocab: TTSVocab
    symbols: SymbolTable
    speakers: list[str]
    family: str
    frame_rate: float
    meta: dict[str, Any]
    heads: DraftHeads | HydraHeads | None = None  # draft heads, when loaded from a heads.pt
    durations: DurationModel | None = None  # plans the frames of a text (alignment duration)

    @property
    def max_seq(self) -> int:
        return self.model.cfg.max_seq

    @property
    def alignment(self) -> str:
        return self.meta.get("alignment", "guided")

    @property
    def zero_shot(self) -> bool:
        """A model that knows voices only from its acoustic prompt (``model.prompt`` on,
        ``model.speaker_embedding`` off): any speaker, seen in training or not."""
        return bool(self.meta.get("prompt")) and not self.meta.get("speaker_embedding", True)

    @property
    def default_speaker(self) -> str | None:
        """The voice used when none is given (see the module docstring): a training speaker
        whose embedding or stored prompt the model has, None for a model with neither."""
        if not self.speakers or not (self.meta.get("speaker_embedding", True)
                                     or self.meta.get("prompts")):
            return None
        return self.speakers[0]

    @property
    def dtype(self) -> torch.dtype:
        return self.model.head.weight.dtype

    def to(self, dtype: torch.dtype) -> TTSBundle:
        """This bundle with the model and heads in ``dtype`` (copies; ``self`` is unchanged)."""
        if dtype == self.dtype:
            return self
        model = copy.deepcopy(self.model).to(dtype)
        heads = None if self.heads is None else copy.deepcopy(self.heads).to(dtype)
        return replace(self, model=model, heads=heads)  # the duration model stays float32


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
    arch = dict(meta["transformer"])
    arch["frame_features"] = tuple(arch.get("frame_features", ()))
    model = Transformer(TransformerConfig(**arch))
    heads = None
    if blob["kind"] == "vadusa":
        model.load_state_dict(blob["state"]["model"])
        heads = make_heads(meta["heads"].get("kind", "medusa"),  # older: always medusa
                           int(meta["heads"]["count"]), model.cfg.dim, model.cfg.output_size,
                           model.head,
                           rank=int(meta["heads"].get("settings", {}).get("rank", 0)))
        heads.load_state_dict(blob["state"]["heads"])
        heads.to(device=device, dtype=dtype).eval()
    else:
        model.load_state_dict(blob["state"])
    model.to(device=device, dtype=dtype).eval()
    symbols = SymbolTable(symbols=tuple(meta["symbols"]),
                          frontend=meta.get("text_frontend", "characters"))  # older: letters
    durations = None
    if "durations" in meta:
        durations = DurationModel(DurationConfig(**meta["durations"]["model"]))
        durations.load_state_dict(meta["durations"]["state"])
        durations.to(device=device).eval()  # float32 always: it runs once per text
    return TTSBundle(model, vocab, symbols,
                     list(meta["speakers"]), meta["family"], float(meta["frame_rate"]), meta,
                     heads, durations)


def text_ids(bundle: TTSBundle, text: str) -> list[int]:
    if not text.strip():
        raise SynthesisInputError("empty text: nothing to synthesize")
    normalized = normalize(text)
    if not normalized.strip(" ,.?!'"):
        raise SynthesisInputError(f"no speakable symbols in {text!r}: the model reads words "
                                  f"({bundle.symbols.frontend}), give it letters or numbers")
    return bundle.symbols.encode(normalized)


def resolve_speaker(bundle: TTSBundle, speaker: str | None) -> str | None:
    """The speaker a request is decoded for: the one given, else the default voice."""
    return speaker if speaker is not None else bundle.default_speaker


def speaker_index(bundle: TTSBundle, speaker: str | None) -> int | None:
    if not bundle.meta.get("speaker_embedding", True):
        return None
    speaker = resolve_speaker(bundle, speaker)
    if speaker not in bundle.speakers:
        raise SynthesisInputError(f"unknown speaker {speaker!r}; known speakers: "
                                  f"{', '.join(bundle.speakers)}")
    return bundle.speakers.index(speaker)


def max_new_tokens(bundle: TTSBundle, n_symbols: int, per_symbol: float) -> int:
    return math.ceil(per_symbol * n_symbols) + 10


@dataclass(frozen=True)
class Prefix:
    """What decoding one text starts from."""

    ids: torch.Tensor  # (L,) input ids ending in bos + prompt speech
    budget: int  # speech tokens to decode at most
    frames: torch.Tensor | None = None  # (L', F) frame features by position (with durations)
    durations: tuple[int, list[int]] | None = None  # the planned (lead, frames per symbol)
    text: tuple[int, ...] = ()  # the text's symbol ids (what ``durations`` times)


def _check_timed(bundle: TTSBundle, ids: list[int]) -> None:
    seen = set(bundle.meta["durations"]["seen"])
    unseen = sorted({bundle.symbols.symbols[s] for s in ids if s not in seen})
    if unseen:
        raise SynthesisInputError(
            f"the duration model never saw the symbol(s) {' '.join(unseen)} in training, so it "
            f"cannot time them; rephrase the text without the words that give them, or train "
            f"on a corpus that has them")


def plan_durations(bundle: TTSBundle, ids: list[int], speaker: str | None,
                   prompt: tuple[list[int], int] | None = None, speaking_rate: str = "prompt"
                   ) -> tuple[int, list[int]]:
    """The duration model's (lead, frames per symbol) for a text's symbol ids.

    A voice the duration model knows by its embedding (a closed-set model's training speaker)
    is timed as that voice. Any other (an unseen speaker; every speaker of a zero-shot model,
    so that seen and unseen ones are treated alike) gets the average voice, the "unknown
    speaker" learnt from training examples with the speaker dropped (training/durations.py),
    and with ``speaking_rate`` "prompt" and a ``prompt`` (its symbol ids, its token count)
    that voice sped up or slowed down to the prompt's rate (``DurationModel.prompt_rate``)."""
    assert bundle.durations is not None
    _check_timed(bundle, ids)
    is_spoken = spoken(bundle.symbols.symbols)
    if not bundle.zero_shot and speaker in bundle.speakers:
        return bundle.durations.predict(ids, bundle.speakers.index(speaker), is_spoken)
    average = bundle.durations.cfg.n_speakers
    rate = 1.0
    if speaking_rate == "prompt" and prompt is not None and prompt[1] > 0:
        rate = bundle.durations.prompt_rate(prompt[0], prompt[1], average, is_spoken)
    return bundle.durations.predict(ids, average, is_spoken, rate)


def synthesis_prefix(bundle: TTSBundle, text: str, speaker: str | None,
                     prompt: tuple[str, list[int]] | None, per_symbol: float,
                     speaking_rate: str = "prompt") -> Prefix:
    """The prefix of a text (``[spk] text [bos]`` + prompt speech), the token budget to decode
    and, with durations, the frame features the planned durations give. ``prompt``: (its
    text, its speech tokens), a recording of the voice to speak with; None: the speaker's
    stored prompt, if the model has one. A zero-shot model needs one or the other."""
    ids = text_ids(bundle, text)
    speaker = resolve_speaker(bundle, speaker)
    if prompt is not None:
        if not prompt[1]:
            raise SynthesisInputError("the prompt has no speech tokens: give a recording of "
                                      "at least a second of speech")
        prompt_text, prompt_speech = text_ids(bundle, prompt[0]) + [0], list(prompt[1])
    elif speaker is not None and speaker in bundle.meta.get("prompts", {}):
        # the speaker's fixed prompt from training (training always conditions on one)
        stored = bundle.meta["prompts"][speaker]
        prompt_text, prompt_speech = list(stored["text"]) + [0], list(stored["tokens"])
    elif bundle.zero_shot:
        known = ", ".join(bundle.meta.get("prompts", {})) or "none"
        raise SynthesisInputError(
            f"this model is zero-shot: it speaks in the voice of an acoustic prompt, and has "
            f"no stored prompt for {speaker!r}; give a recording and its transcript "
            f"(--prompt-audio WAV --prompt-text TEXT), or a training speaker (--speaker; "
            f"stored prompts: {known})")
    else:
        prompt_text, prompt_speech = [], []
    durations = None
    if bundle.durations is not None:
        timing = (prompt_text[:-1], len(prompt_speech)) if prompt_speech else None
        durations = plan_durations(bundle, ids, speaker, timing, speaking_rate)
    example = build_sequence(bundle.vocab, speaker_index(bundle, speaker), prompt_text, ids,
                             prompt_speech, None, durations=durations)
    prefix = example.input_ids
    if durations is None:
        budget = max_new_tokens(bundle, len(ids), per_symbol)
    else:  # the plan, and room to end a little late
        budget = durations[0] + sum(durations[1]) + INSIDE
    if len(prefix) + budget > bundle.max_seq:
        raise TextTooLongError(
            f"text too long for the model: {len(ids)} symbols need up to {budget} speech tokens"
            f" after a {len(prefix)}-token prefix, beyond model.max_seq={bundle.max_seq}; "
            "split the text into sentences and synthesize them one by one")
    return Prefix(prefix, budget, example.frames, durations, tuple(ids))


def text_pieces(bundle: TTSBundle, text: str, speaker: str | None,
                prompt: tuple[str, list[int]] | None, per_symbol: float,
                speaking_rate: str = "prompt") -> list[tuple[str, Prefix]]:
    """A text as the pieces the model can take, each with its prefix: the whole text when it
    fits the model's context (``model.max_seq``), else its sentences, a sentence still too
    long at its commas, and a clause still too long in halves by words. Every piece has the
    same speaker and prompt, so they are spoken in one voice and can be joined."""
    try:
        return [(text, synthesis_prefix(bundle, text, speaker, prompt, per_symbol,
                                        speaking_rate))]
    except TextTooLongError:
        pass
    words = text.split()
    for boundary in (r"(?<=[.?!;:])\s+", r"(?<=,)\s+"):
        parts = [p for p in re.split(boundary, text.strip()) if p.strip()]
        if len(parts) > 1:
            break
    else:
        if len(words) < 2:
            raise SynthesisInputError(f"the word {text!r} alone is too long for the model")
        half = len(words) // 2
        parts = [" ".join(words[:half]), " ".join(words[half:])]
    return [piece for part in parts
            for piece in text_pieces(bundle, part, speaker, prompt, per_symbol, speaking_rate)]

