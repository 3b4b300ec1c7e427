"""The AR text-to-speech model: one decoder-only transformer over text, then speech tokens.

Sequence layout (VALL-E AR style, with an optional speaker token in front):

    [spk] [prompt text | target text] [bos] [prompt speech | target speech] [eos]

The acoustic prompt is another utterance of the same speaker (its text and tokens); the model
continues the prompt's speech with the target's. Loss is taken on the target speech tokens and
``eos`` only. All ids share one input vocabulary; the head predicts speech ids and specials:

    input ids:  [0, S) text symbols | [S, S + V + 3) speech tokens, bos, eos, pad |
                [S + V + 3, ... + N + 1) speakers, the last one "unknown"
    output ids: [0, V + 3) = speech token ids, bos = V, eos = V + 1, pad = V + 2

Shapes: L sequence length, P text length, Q speech length (prompt + target).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TTSVocab:
    n_symbols: int  # text symbols (vadusa.data.text.SymbolTable)
    n_units: int  # speech vocabulary V (k-means clusters, codebook size)
    n_speakers: int  # training speakers; one more id stands for "unknown speaker"

    @property
    def speech_offset(self) -> int:
        return self.n_symbols

    @property
    def bos(self) -> int:  # output id
        return self.n_units

    @property
    def eos(self) -> int:  # output id
        return self.n_units + 1

    @property
    def pad(self) -> int:  # output id
        return self.n_units + 2

    @property
    def output_size(self) -> int:
        return self.n_units + 3

    @property
    def speaker_offset(self) -> int:
        return self.n_symbols + self.output_size

    @property
    def unknown_speaker(self) -> int:
        return self.n_speakers  # speaker index

    @property
    def input_size(self) -> int:
        return self.speaker_offset + self.n_speakers + 1

    def speech_input(self, ids: torch.Tensor) -> torch.Tensor:
        """Output ids (speech tokens and specials) -> input ids."""
        return ids + self.speech_offset

    def speaker_input(self, speaker_index: int) -> int:
        return self.speaker_offset + speaker_index


@dataclass(frozen=True)
class Example:
    """One training or synthesis sequence, before batching."""

    input_ids: torch.Tensor  # (L,) input ids
    targets: torch.Tensor  # (L,) output id to predict at each position, -100 = no loss
    speech_start: int  # index of the first speech position (after bos)
    # which text each stretch of speech says: (text start, text end, first query, last query
    # + 1), the queries being the positions that predict that stretch's tokens; the prompt's
    # segment (if any) comes first. Training uses them for guided attention.
    segments: tuple[tuple[int, int, int, int], ...] = ()


def build_sequence(vocab: TTSVocab, speaker_index: int | None, prompt_text: list[int],
                   text: list[int], prompt_speech: list[int], speech: list[int] | None,
                   prompt_loss: bool = False) -> Example:
    """Assemble ``[spk] text [bos] speech`` (see module docstring). ``speech=None`` builds a
    synthesis prefix that ends with the prompt's speech tokens. ``prompt_loss`` makes the
    prompt's speech tokens targets too (the prompt is a real utterance of its text)."""
    head = [] if speaker_index is None else [vocab.speaker_input(speaker_index)]
    text_ids = head + list(prompt_text) + list(text)  # (P,)
    speech_out = [vocab.bos] + list(prompt_speech) + (
        [] if speech is None else list(speech) + [vocab.eos])
    input_ids = torch.tensor(text_ids + [vocab.speech_offset + t for t in speech_out])
    targets = torch.full((len(input_ids),), -100)
    bos_at = len(text_ids)
    first = bos_at + len(prompt_speech)  # position of the last prompt token or bos
    segments = []
    if prompt_speech:
        segments.append((len(head), len(head) + len(prompt_text), bos_at, first))
    if speech is not None:
        # position i predicts token i + 1; train on the target speech tokens and eos
        targets[first:len(input_ids) - 1] = torch.tensor(list(speech) + [vocab.eos])
        if prompt_loss and prompt_speech:
            targets[bos_at:first] = torch.tensor(list(prompt_speech))
        segments.append((len(head) + len(prompt_text), bos_at, first, len(input_ids) - 1))
    return Example(input_ids, targets, bos_at + 1, tuple(segments))
