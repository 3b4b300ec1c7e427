"""The AR model's training sequences, shared by base training (``training/tts.py``) and draft
heads (``training/heads.py``): a split's utterances with their text, speech tokens, speakers,
prompt choices and durations; padded batches; the token noise; and the losses (cross-entropy
and the guided-attention penalty, explained in ``training/tts.py``).

Shapes: B batch, L padded sequence length, V output vocabulary, F frame features.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vadusa.data.durations import Durations, read_durations
from vadusa.data.manifest import manifest_path, read_manifest
from vadusa.data.text import SymbolTable
from vadusa.model.transformer import causal_mask
from vadusa.model.tts import Example, TTSVocab, build_sequence
from vadusa.tokenizers.store import TokenSplit


class TTSTrainError(ValueError):
    pass


@dataclass(frozen=True)
class Utterance:
    id: str
    speaker: int  # index into the speaker table
    text: list[int]  # symbol ids of the normalized text
    tokens: np.ndarray  # (Q,) speech token ids
    seconds: float
    durations: Durations | None = None  # frames per symbol (with durations)


class TTSData:
    """One split as training sequences: text ids, speech tokens, speakers, prompt choices,
    and with ``durations_dir`` (``vadusa align``'s output) each utterance's durations.

    ``speakers`` are the training speakers, whose index is their speaker embedding. With
    ``open_speakers`` (a model without a speaker embedding: it knows a voice from its prompt
    alone) utterances of other speakers are kept too, with indices past the training
    speakers': a dev split of unseen voices (LibriTTS) then measures the zero-shot model."""

    def __init__(self, corpus_dir: Path, tokens_dir: Path, split: str, symbols: SymbolTable,
                 speakers: list[str], prompt_max_seconds: float,
                 durations_dir: Path | None = None, open_speakers: bool = False) -> None:
        store = TokenSplit(tokens_dir, split)
        records = {r.id: r for r in read_manifest(manifest_path(corpus_dir, split))}
        index = {name: i for i, name in enumerate(speakers)}
        self.n_known = len(speakers)
        if open_speakers:
            others = sorted({r.speaker for r in records.values()} - set(index))
            index |= {name: len(speakers) + i for i, name in enumerate(others)}
        timing = None if durations_dir is None else read_durations(durations_dir, split)
        self.items: list[Utterance] = []
        for utt_id, tokens in store:
            rec = records.get(utt_id)
            if rec is None or rec.speaker not in index or len(tokens) == 0:
                continue  # tokens of another corpus version, or an unknown speaker
            text = symbols.encode(rec.normalized_text)
            durations = None
            if timing is not None:
                durations = timing.get(utt_id)
                if durations is None:
                    continue  # aligned before the corpus changed: nothing to learn from
                if len(durations.durations) != len(text) or durations.frames != len(tokens):
                    raise TTSTrainError(
                        f"{utt_id}: the durations in {durations_dir} do not fit its text and "
                        f"tokens ({len(durations.durations)} symbols and {durations.frames} "
                        f"frames, against {len(text)} and {len(tokens)}); rerun `vadusa align`")
            self.items.append(Utterance(utt_id, index[rec.speaker], text, tokens,
                                        rec.duration, durations))
        if not self.items:
            hint = ("" if open_speakers else "; a split of voices unseen in training needs a "
                    "model without a speaker embedding (model.speaker_embedding: false, "
                    "model.prompt: true)")
            raise TTSTrainError(f"no usable {split} utterances in {tokens_dir} for the "
                                f"speakers of the training split{hint}")
        self.prompts: dict[int, list[int]] = {}
        for i, utt in enumerate(self.items):
            if utt.seconds <= prompt_max_seconds:
                self.prompts.setdefault(utt.speaker, []).append(i)

    def __len__(self) -> int:
        return len(self.items)

    def example(self, i: int, vocab: TTSVocab, rng: random.Random, use_prompt: bool,
                use_speaker: bool, prompt_loss: bool = False,
                text_of: int | None = None) -> Example:
        """Utterance i as a sequence; ``text_of`` puts another utterance's text in front of
        its speech (a probe of how much the model reads the text; not with durations)."""
        utt = self.items[i]
        if use_speaker and utt.speaker >= self.n_known:
            raise TTSTrainError(f"{utt.id}: its speaker has no embedding (unseen in training)")
        durations = None
        if utt.durations is not None and text_of is None:
            durations = (utt.durations.lead, list(utt.durations.durations))
        text = utt.text if text_of is None else self.items[text_of].text
        prompt_text: list[int] = []
        prompt_speech: list[int] = []
        candidates = [j for j in self.prompts.get(utt.speaker, []) if j != i]
        if use_prompt and candidates:
            prompt = self.items[rng.choice(candidates)]
            prompt_text, prompt_speech = prompt.text + [0], prompt.tokens.tolist()  # 0 = space
        return build_sequence(vocab, utt.speaker if use_speaker else None, prompt_text,
                              text, prompt_speech, utt.tokens.tolist(), prompt_loss, durations)

    def default_prompts(self, speakers: list[str]) -> dict[str, dict[str, Any]]:
        """One fixed prompt per speaker, stored in ``base.pt`` so that decoding a text for a
        known speaker is conditioned the way training was: the speaker's shortest prompt-length
        utterance (ties broken by id, so the choice is reproducible)."""
        prompts = {}
        for speaker, indices in self.prompts.items():
            if speaker >= self.n_known:
                continue  # a voice unseen in training: nothing of it is stored
            best = min(indices, key=lambda i: (self.items[i].seconds, self.items[i].id))
            utt = self.items[best]
            prompts[speakers[speaker]] = {"id": utt.id, "text": list(utt.text),
                                          "tokens": utt.tokens.tolist()}
        return prompts

    def lengths(self, prompt_allowance: int) -> list[int]:
        """Sequence lengths for bucketing (the prompt's length is not known in advance)."""
        return [len(u.text) + len(u.tokens) + 3 + prompt_allowance for u in self.items]


def collate(examples: list[Example], pad_input: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to (B, L) inputs and (B, L) targets (-100 = no loss)."""
    L = max(len(e.input_ids) for e in examples)
    inputs = torch.full((len(examples), L), pad_input, dtype=torch.long)
    targets = torch.full((len(examples), L), -100, dtype=torch.long)
    for b, e in enumerate(examples):
        inputs[b, :len(e.input_ids)] = e.input_ids
        targets[b, :len(e.targets)] = e.targets
    return inputs, targets


def collate_frames(examples: list[Example]) -> torch.Tensor | None:
    """(B, L, F) frame features of a batch, zero-padded (padding positions carry no loss);
    None when the examples have none."""
    if examples[0].frames is None:
        return None
    L = max(len(e.input_ids) for e in examples)
    frames = torch.zeros(len(examples), L, examples[0].frames.shape[1], dtype=torch.long)
    for b, e in enumerate(examples):
        frames[b, :len(e.input_ids)] = e.frames[:len(e.input_ids)]
    return frames


def corrupt_speech(inputs: torch.Tensor, vocab: TTSVocab, rate: float,
                   generator: torch.Generator) -> torch.Tensor:
    """Replace a fraction ``rate`` of the speech-token inputs (B, L) by random speech tokens;
    targets stay clean. The model can then trust its own history only so far and must read
    the text to know what comes next (Tacotron's always-on pre-net dropout, for tokens): this
    is what keeps a small model on the text when it runs on its own imperfect samples."""
    if rate <= 0:
        return inputs
    speech = (inputs >= vocab.speech_offset) & (inputs < vocab.speech_offset + vocab.n_units)
    hit = speech & (torch.rand(inputs.shape, generator=generator) < rate)
    noise = vocab.speech_offset + torch.randint(vocab.n_units, inputs.shape, generator=generator)
    return torch.where(hit, noise, inputs)


def guide_penalty(examples: list[Example], L: int, sigma: float
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The guided-attention penalty of each query over each key, (B, L, L), and the queries it
    applies to, (B, L) (see ``training/tts.py``'s docstring)."""
    W = torch.ones(len(examples), L, L)
    rows = torch.zeros(len(examples), L, dtype=torch.bool)
    for b, e in enumerate(examples):
        for t0, t1, q0, q1 in e.segments:
            if t1 <= t0 or q1 <= q0:
                continue
            text = (torch.arange(t1 - t0) + 0.5) / (t1 - t0)  # (P,) place in the text
            query = (torch.arange(q1 - q0) + 0.5) / (q1 - q0)  # (Q,) place in the speech
            distance = query[:, None] - text[None, :]  # (Q, P)
            W[b, q0:q1, t0:t1] = 1 - torch.exp(-distance.square() / (2 * sigma ** 2))
            rows[b, q0:q1] = True
    return W, rows


def sequence_loss(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                  guide: tuple[torch.Tensor, torch.Tensor] | None = None,
                  guide_layers: tuple[int, ...] = (), frames: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean CE over target positions, the count of correct top-1 predictions, and the mean
    guided-attention penalty of ``guide_layers`` (0 without ``guide``).

    Right padding needs no key mask: under the causal mask a real position never sees a pad
    that comes after it, and pad positions carry no loss."""
    B, L = inputs.shape
    pos = torch.arange(L, device=inputs.device).expand(B, L)
    probes = {i: None for i in guide_layers} if guide is not None else None
    logits = model(inputs, pos, causal_mask(L, inputs.device).expand(B, L, L),
                   probes=probes, frames=frames)  # (B, L, V)
    valid = targets != -100
    loss = F.cross_entropy(logits[valid].float(), targets[valid])
    correct = (logits[valid].argmax(-1) == targets[valid]).sum()
    guide_loss = torch.zeros((), device=inputs.device)
    if guide is not None and probes:
        W, rows = guide
        for probs in probes.values():  # (B, L, L) each
            guide_loss = guide_loss + (probs.float() * W).sum(-1)[rows].mean() / len(probes)
    return loss, correct, guide_loss
