"""The AR text-to-speech model: one decoder-only transformer over text, then speech tokens.

Sequence layout (VALL-E AR style, with an optional speaker token in front):

    [spk] [prompt text | target text] [bos] [prompt speech | target speech] [eos]

The acoustic prompt is another utterance of the same speaker (its text and tokens); the model
continues the prompt's speech with the target's. Loss is taken on the target speech tokens and
``eos`` only. All ids share one input vocabulary; the head predicts speech ids and specials:

    input ids:  [0, S) text symbols | [S, S + V + 3) speech tokens, bos, eos, pad |
                [S + V + 3, ... + N + 1) speakers, the last one "unknown"
    output ids: [0, V + 3) = speech token ids, bos = V, eos = V + 1, pad = V + 2

With durations (``model.alignment: duration``) every position also carries **frame features**
(``frame_features``): where in the target text the speech token it predicts lies, i.e. that
token's phone, the phones before and after it, and how far into and before the end of the phone
it is. They are a pure function of the position and of the utterance's durations (from the
aligner in training, from the duration model in synthesis), so AR decoding, tree verification
and training all see the same features at the same position.

Shapes: L sequence length, P text length, Q speech length (prompt + target), F frame features.
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


# Frame features: ids of the phone (segment) a position's predicted token belongs to; 0 marks a
# position with no target frame (text, bos, the prompt's speech).
NO_FRAME, LEAD, END = 0, 1, 2  # nothing; the silence before the first symbol; after the last
SEGMENT_OFFSET = 3  # text symbol s -> segment id s + 3
INSIDE = 32  # frames into / before the end of a phone are counted up to this, then saturate


def frame_feature_sizes(n_symbols: int) -> tuple[int, ...]:
    """Cardinalities of the F = 5 frame features: current, previous and next segment, frames
    since the segment began and frames until it ends (0 = no frame, k -> k + 1)."""
    return (n_symbols + SEGMENT_OFFSET,) * 3 + (INSIDE + 1,) * 2


def frame_features(text: list[int], lead: int, durations: list[int], rows: int
                   ) -> torch.Tensor:
    """(rows, F) features of output frames 0, 1, ... of one utterance, ``rows`` of them: frame k
    is the k-th speech token of the target; the frames from ``lead + sum(durations)`` on are
    past the end (where eos is due), with ``END`` as their segment.

    ``text`` (P,) symbol ids, ``durations`` (P,) frames per symbol (0 for symbols that are not
    spoken on their own: spaces, stress marks), ``lead`` frames of silence before the first."""
    if len(durations) != len(text):
        raise ValueError(f"{len(durations)} durations for {len(text)} text symbols")
    ids = torch.tensor([LEAD] + [SEGMENT_OFFSET + s for s in text])
    lengths = torch.tensor([lead] + list(durations))
    spoken = lengths > 0
    ids, lengths = ids[spoken], lengths[spoken]  # (G,) segments that own frames
    Q = int(lengths.sum())
    segment = torch.repeat_interleave(torch.arange(len(ids)), lengths)  # (Q,) segment of frame
    starts = lengths.cumsum(0) - lengths  # (G,)
    since = torch.arange(Q) - starts[segment]  # (Q,)
    until = lengths[segment] - 1 - since
    before = torch.cat([torch.tensor([LEAD]), ids[:-1]])  # (G,) the previous segment
    after = torch.cat([ids[1:], torch.tensor([END])])  # (G,) the next segment
    speech = torch.stack([ids[segment], before[segment], after[segment],
                          since.clamp_max(INSIDE - 1) + 1, until.clamp_max(INSIDE - 1) + 1],
                         dim=-1)  # (Q, F)
    n_end = max(0, rows - Q)
    last = int(ids[-1]) if len(ids) else LEAD
    end = torch.stack([torch.full((n_end,), END), torch.full((n_end,), last),
                       torch.full((n_end,), END),
                       torch.arange(n_end).clamp_max(INSIDE - 1) + 1, torch.ones(n_end,
                                                                               dtype=torch.long)],
                      dim=-1)  # (rows - Q, F)
    return torch.cat([speech, end])[:rows]


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
    # (L', F) frame features by position, L' >= L (a synthesis prefix's table runs on past the
    # prefix, over the positions decoding will fill); None without durations
    frames: torch.Tensor | None = None


def build_sequence(vocab: TTSVocab, speaker_index: int | None, prompt_text: list[int],
                   text: list[int], prompt_speech: list[int], speech: list[int] | None,
                   prompt_loss: bool = False,
                   durations: tuple[int, list[int]] | None = None) -> Example:
    """Assemble ``[spk] text [bos] speech`` (see module docstring). ``speech=None`` builds a
    synthesis prefix that ends with the prompt's speech tokens. ``prompt_loss`` makes the
    prompt's speech tokens targets too (the prompt is a real utterance of its text).
    ``durations`` (lead, per-symbol frames of ``text``) adds the frame features: in training
    they must add up to the speech's length; in synthesis they plan it, and the table covers
    the planned frames and ``INSIDE`` positions past them (later positions read its last row,
    ``Transformer.hidden``)."""
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
    frames = None
    if durations is not None:
        lead, per_symbol = durations
        planned = lead + sum(per_symbol)
        if speech is not None and planned != len(speech):
            raise ValueError(f"durations add up to {planned} frames, the speech has "
                             f"{len(speech)} tokens")
        rows = (len(input_ids) if speech is not None else first + 1 + planned + INSIDE) - first
        frames = torch.cat([torch.zeros(first, len(frame_feature_sizes(0)), dtype=torch.long),
                            frame_features(text, lead, per_symbol, rows)])  # (L', F)
    return Example(input_ids, targets, bos_at + 1, tuple(segments), frames)
