"""Where each text symbol is spoken: a small CTC phone recogniser over speech tokens, and the
forced alignment of a transcript against it.

The recogniser reads a family's own tokens (no audio, no outside model), so the same stage
aligns Whisper units, HuBERT units and EnCodec codes, and its durations come out in token
frames, the unit the AR model counts in:

    tokens (B, T) -> embedding -> convolution -> 2-layer BiLSTM -> (B, T, 1 + S) CTC log-probs

Its labels are the text symbols (label = symbol id + 1; 0 = CTC blank). Only *spoken* symbols
are targets: phones (or letters) and the punctuation that carries pauses; spaces, apostrophes
and stress marks have no frames of their own (their duration is 0).

Durations from a forced alignment: CTC is peaky (a symbol fires on a frame or two, blanks fill
the rest), so each spoken symbol owns the frames from its first aligned frame up to the next
spoken symbol's first frame; the frames before the first one are the leading silence, and the
last symbol (usually the final punctuation) owns the rest, trailing silence included. The
frames of an utterance are thus shared out exactly: ``lead + sum(durations) = T``.

Shapes: B batch, T token frames, S text symbols, N spoken symbols of one utterance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: symbols spoken together with their neighbours, never on their own frames
UNSPOKEN = (" ", "'", "ˈ", "ˌ")


def spoken(symbols: tuple[str, ...]) -> torch.Tensor:
    """(S,) bool: which symbols of a table own frames (CTC targets, non-zero durations)."""
    return torch.tensor([s not in UNSPOKEN for s in symbols])


@dataclass(frozen=True)
class AlignerConfig:
    n_tokens: int  # speech vocabulary
    n_symbols: int  # text symbols
    dim: int = 192
    hidden: int = 160
    kernel: int = 5
    dropout: float = 0.1


class PhoneRecognizer(nn.Module):
    """Speech tokens -> per-frame CTC log-probabilities over blank + text symbols."""

    def __init__(self, cfg: AlignerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_tokens, cfg.dim)
        self.conv = nn.Conv1d(cfg.dim, cfg.dim, cfg.kernel, padding=cfg.kernel // 2)
        self.lstm = nn.LSTM(cfg.dim, cfg.hidden, num_layers=2, batch_first=True,
                            bidirectional=True, dropout=cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(2 * cfg.hidden, 1 + cfg.n_symbols)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) right-padded, lengths (B,) -> log-probs (B, T, 1 + S).

        The padding is zeroed, not packed away: on CPUs a packed LSTM's backward pass is about
        five times slower, and batches of similar lengths (``bucketed_batches``) leave the
        backward direction only a short run of zeros before each utterance's end."""
        keep = (torch.arange(tokens.shape[1], device=tokens.device)[None]
                < lengths[:, None])[..., None]  # (B, T, 1)
        x = self.embed(tokens) * keep  # (B, T, dim)
        x = F.gelu(self.conv(x.transpose(1, 2))).transpose(1, 2) * keep  # via (B, dim, T)
        y, _ = self.lstm(self.dropout(x))  # (B, T, 2h)
        return self.out(self.dropout(y)).log_softmax(-1)


def ctc_targets(text: list[int], is_spoken: torch.Tensor) -> tuple[list[int], list[int]]:
    """-> (labels of the spoken symbols, their indices in ``text``)."""
    where = [i for i, s in enumerate(text) if bool(is_spoken[s])]
    return [text[i] + 1 for i in where], where


def greedy_labels(log_probs: torch.Tensor) -> list[int]:
    """(T, 1 + S) -> the CTC best path's labels: repeats merged, blanks dropped."""
    best = log_probs.argmax(-1).tolist()
    return [b for i, b in enumerate(best) if b != 0 and (i == 0 or best[i - 1] != b)]


class AlignmentError(ValueError):
    pass


def durations_from_alignment(first_frames: list[int], where: list[int], n_text: int,
                             n_frames: int) -> tuple[int, list[int]]:
    """First aligned frame of each spoken symbol (increasing) -> (lead, frames per text
    symbol): each spoken symbol owns the frames up to the next one's first frame, the last
    the rest of the utterance; unspoken symbols get 0."""
    durations = [0] * n_text
    ends = first_frames[1:] + [n_frames]
    for i, start, end in zip(where, first_frames, ends, strict=True):
        durations[i] = end - start
    return (first_frames[0] if first_frames else n_frames), durations


def force_align(log_probs: torch.Tensor, text: list[int], is_spoken: torch.Tensor
                ) -> tuple[int, list[int]]:
    """(T, 1 + S) log-probs of one utterance and its text -> (lead, durations) in frames.
    Raises AlignmentError when the text cannot fit the frames (CTC needs a frame per symbol
    and one more between two equal neighbours)."""
    import torchaudio.functional as AF  # noqa: PLC0415  (torchaudio only where it aligns)

    labels, where = ctc_targets(text, is_spoken)
    T = log_probs.shape[0]
    if not labels:
        return T, [0] * len(text)
    repeats = sum(a == b for a, b in zip(labels, labels[1:], strict=False))
    if len(labels) + repeats > T:
        raise AlignmentError(f"{len(labels)} spoken symbols do not fit {T} frames")
    path, scores = AF.forced_align(log_probs[None].float().cpu(),
                                   torch.tensor([labels], dtype=torch.int32), blank=0)
    spans = AF.merge_tokens(path[0], scores[0].exp())
    if len(spans) != len(labels):  # forced_align's path holds every target once
        raise AlignmentError(f"the alignment found {len(spans)} of {len(labels)} symbols")
    return durations_from_alignment([s.start for s in spans], where, len(text), T)
