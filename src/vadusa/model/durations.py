"""The duration model: text symbols (+ speaker) -> frames per symbol, what the AR model's
alignment plans with at synthesis (FastSpeech's variance predictor, with a speaker).

    [start] + symbols (B, 1 + P) -> embeddings + speaker -> convolutions -> (B, 1 + P)

Output 0 (the ``start`` slot) is the leading silence, output 1 + j the frames of symbol j; they
are regressed as log(1 + frames). Unspoken symbols (spaces, stress marks: model/aligner.py)
always get 0, spoken ones at least 1 (the aligner gives each at least one frame).

The model remembers which symbols it saw in training: a text with another one gets a
``DurationInputError`` naming it, since its duration would be a guess from an untrained
embedding.

Shapes: B batch, P text symbols, C width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

#: a prompt may speak at most this much faster (or slower) than the voice it is compared with
MAX_RATE = 2.0


class DurationInputError(ValueError):
    pass


@dataclass(frozen=True)
class DurationConfig:
    n_symbols: int
    n_speakers: int  # one more id stands for "unknown speaker"
    dim: int = 256
    layers: int = 3
    kernel: int = 5
    dropout: float = 0.1


class ConvBlock(nn.Module):
    """x + dropout(LayerNorm(ReLU(conv(x)))), over (B, P, C)."""

    def __init__(self, dim: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv((x * keep).transpose(1, 2))).transpose(1, 2)  # (B, P, C)
        return x + self.dropout(self.norm(h))


class DurationModel(nn.Module):
    def __init__(self, cfg: DurationConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_symbols + 2, cfg.dim)  # + start, + padding
        self.speaker = nn.Embedding(cfg.n_speakers + 1, cfg.dim)
        self.blocks = nn.ModuleList(ConvBlock(cfg.dim, cfg.kernel, cfg.dropout)
                                    for _ in range(cfg.layers))
        self.out = nn.Linear(cfg.dim, 1)

    @property
    def start(self) -> int:
        return self.cfg.n_symbols

    @property
    def pad(self) -> int:
        return self.cfg.n_symbols + 1

    def forward(self, inputs: torch.Tensor, speakers: torch.Tensor) -> torch.Tensor:
        """inputs (B, 1 + P) ids (start first, right-padded with ``pad``), speakers (B,) ->
        (B, 1 + P) predicted log(1 + frames)."""
        keep = (inputs != self.pad)[..., None].float()  # (B, 1 + P, 1)
        x = self.embed(inputs) + self.speaker(speakers)[:, None]  # (B, 1 + P, C)
        for block in self.blocks:
            x = block(x, keep)
        return self.out(x)[..., 0]

    def inputs(self, text: list[int]) -> torch.Tensor:
        """(1 + P,) the model's input ids for one text."""
        return torch.tensor([self.start] + list(text))

    @torch.no_grad()
    def predict(self, text: list[int], speaker: int, is_spoken: torch.Tensor,
                rate: float = 1.0) -> tuple[int, list[int]]:
        """-> (lead, frames per symbol) for one text; ``rate`` > 1 speaks faster."""
        device = self.out.weight.device
        log_frames = self(self.inputs(text)[None].to(device),
                          torch.tensor([speaker], device=device))[0].float().cpu()  # (1 + P,)
        frames = (log_frames.exp() - 1).clamp_min(0) / rate
        frames = frames.round().long()
        frames[1:] = torch.where(is_spoken[torch.tensor(text, dtype=torch.long)],
                                 frames[1:].clamp_min(1), torch.zeros_like(frames[1:]))
        return int(frames[0]), frames[1:].tolist()

    def prompt_rate(self, text: list[int], frames: int, speaker: int, is_spoken: torch.Tensor
                    ) -> float:
        """How much faster than ``speaker``'s timing a recording of ``text`` lasting ``frames``
        speaks: the frames the model plans for the text over the frames it took. A new voice's
        speaking rate, read off its prompt; clamped to [1 / MAX_RATE, MAX_RATE], since a
        prompt of a few words is a noisy measure."""
        if not text or frames <= 0:
            return 1.0
        lead, durations = self.predict(text, speaker, is_spoken)
        rate = (lead + sum(durations)) / frames
        return float(min(MAX_RATE, max(1 / MAX_RATE, rate)))
