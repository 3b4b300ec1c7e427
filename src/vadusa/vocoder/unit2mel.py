"""Unit-to-mel: discrete speech units and a speaker -> the log-mels HiFi-GAN turns into sound.

    units (B, U) -> embedding + speaker          (B, U, D)
      speaker: index (B,) -> table               (B, S) -> linear (B, D)   speaker_input table
          or d-vector (B, 256) -> linear, GELU   (B, S) -> linear (B, D)   speaker_input dvector
                 -> conv block                   (B, U, D)   local context of each unit
                 -> transformer blocks           (B, U, D)   context: prosody, co-articulation
                 -> upsample by time             (B, M, D)   each mel frame reads its unit
                 -> conv blocks                  (B, M, D)   smooth the copied unit frames
                 -> linear                       (B, M, N_MELS) log-mels

The transformer runs at the unit rate, not the mel rate: at 50 Hz units that is 1.7x fewer
frames, and its cost is most of the network's (2.4x faster training steps than the same
blocks at the mel rate, measured on 2 CPU cores), so the same wall time buys twice the steps.

The upsampling is a lookup by time, not a learned stride, so one network works for any unit
frame rate (25, 50, 75 Hz...): mel frame ``i`` covers samples ``[i * 256, (i + 1) * 256)`` at
22.05 kHz (see ``hifigan``) and reads the unit playing at its centre,
``floor((i + 0.5) * 256 / 22050 * frame_rate)``. A training crop that starts at mel frame
``m0`` reads units relative to the unit under its first frame, so a crop sees exactly the
units the whole utterance would.

The speaker is either an index into a learned table of the training voices (``table``: a
closed set) or the GE2E d-vector of another utterance of the voice, the acoustic prompt
(``dvector``: any voice, heard or not, ``vadusa.data.dvectors``). The d-vector is normalized
(GE2E compares directions only) and mapped to S dims where the table would have been looked
up: the rest of the network is the same in both modes.

Batches are padded; ``mask`` (True = a real frame) keeps padding out: padded frames are zeroed
before every convolution (so a short utterance sees the same zeros past its end as it would
alone) and are never attended to.

Shapes: B batch, U unit frames, M mel frames, D model dim, H heads, S speaker dim,
N_MELS 80.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vadusa.data.mel import HOP_LENGTH, N_MELS, SAMPLE_RATE
from vadusa.tokenizers.base import N_SPECIAL

MEL_RATE = SAMPLE_RATE / HOP_LENGTH  # mel frames per second, ~86.13
SPEAKER_INPUTS = ("table", "dvector")  # = VocoderConfig.speaker_conditioning's values
DVECTOR_DIM = 256  # GE2E d-vectors (vadusa.data.dvectors)


def units_per_mel_frame(frame_rate: float) -> float:
    return HOP_LENGTH * frame_rate / SAMPLE_RATE


def mel_frames_for_units(num_units: int, frame_rate: float) -> int:
    """Mel frames that cover ``num_units`` units: the same duration, at least one frame."""
    return max(1, round(num_units / units_per_mel_frame(frame_rate)))


def unit_index(mel_start: torch.Tensor, num_frames: int, frame_rate: float) -> torch.Tensor:
    """Which unit each mel frame reads: (B,) first mel frames -> (B, num_frames) unit indices,
    relative to the unit under each first frame. Computed in float64 so that frame rates
    like 50 Hz give exact integers."""
    r = units_per_mel_frame(frame_rate)
    start = mel_start.to(torch.float64)[:, None]  # (B, 1)
    frames = torch.arange(num_frames, dtype=torch.float64, device=mel_start.device)  # (M,)
    absolute = torch.floor((start + frames + 0.5) * r + 1e-9)  # (B, M)
    first = torch.floor((start + 0.5) * r + 1e-9)  # (B, 1)
    return (absolute - first).long()


def sinusoids(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """(length, dim) sinusoidal positions. Fixed, not learned: training crops are at most
    ``max_seconds`` long, but whole utterances at inference may be longer."""
    position = torch.arange(length, dtype=torch.float32, device=device)[:, None]  # (M, 1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device)
                     * (-math.log(10000.0) / dim))  # (D/2,)
    angles = position * freq  # (M, D/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1)  # (M, D)


class ConvBlock(nn.Module):
    """Pre-norm residual convolution over time."""

    def __init__(self, dim: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.conv = nn.Conv1d(dim, dim, kernel, padding="same")  # M frames in, M out
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm(x).masked_fill(~mask[..., None], 0.0)  # padding must not leak in
        h = self.conv(h.transpose(1, 2)).transpose(1, 2)  # (B, M, D) -> (B, D, M) -> (B, M, D)
        return x + self.drop(F.gelu(h))


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, M, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)  # 3 x (B, M, D)
        # (B, M, D) -> (B, M, H, D/H) -> (B, H, M, D/H)
        q, k, v = (t.view(B, M, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))
        keys = mask[:, None, None, :]  # (B, 1, 1, M): every query may attend to real frames only
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keys,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, M, D)  # (B, H, M, D/H) -> (B, M, D)
        return self.drop(self.proj(y))


class FeedForward(nn.Module):
    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.up = nn.Linear(dim, 4 * dim)
        self.down = nn.Linear(4 * dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.down(F.gelu(self.up(x))))


class Block(nn.Module):
    """Pre-norm transformer encoder layer."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.ffn(self.norm2(x))


class Unit2Mel(nn.Module):
    """``speaker_input``: ``table`` (``n_speakers`` learned vectors, speakers given by index)
    or ``dvector`` (speakers given as (B, 256) d-vectors; ``n_speakers`` is then only
    recorded: how many voices it was trained on)."""

    def __init__(self, vocab_size: int, n_speakers: int, frame_rate: float, dim: int = 256,
                 layers: int = 4, heads: int = 4, conv_kernel: int = 5, speaker_dim: int = 64,
                 unit_convs: int = 1, mel_convs: int = 2, dropout: float = 0.0,
                 speaker_input: str = "table") -> None:
        super().__init__()
        if speaker_input not in SPEAKER_INPUTS:
            raise ValueError(f"speaker_input {speaker_input!r} is not one of {SPEAKER_INPUTS}")
        # everything needed to rebuild the network, for the checkpoint's meta (one written
        # before speaker_input existed rebuilds with the default, its table)
        self.hparams: dict[str, Any] = dict(
            vocab_size=vocab_size, n_speakers=n_speakers, frame_rate=float(frame_rate), dim=dim,
            layers=layers, heads=heads, conv_kernel=conv_kernel, speaker_dim=speaker_dim,
            unit_convs=unit_convs, mel_convs=mel_convs, dropout=dropout,
            speaker_input=speaker_input)
        self.vocab_size = vocab_size
        self.pad_id = vocab_size + 2  # bos, eos, pad follow the vocabulary (tokenizers.base)
        self.frame_rate = float(frame_rate)
        self.speaker_input = speaker_input
        self.units = nn.Embedding(vocab_size + N_SPECIAL, dim, padding_idx=self.pad_id)
        # (created in the same order in both modes: a table model's initial weights, and so its
        # training, are those of the network before d-vectors existed)
        self.speakers: nn.Module = (
            nn.Embedding(n_speakers, speaker_dim) if speaker_input == "table"
            else nn.Sequential(nn.Linear(DVECTOR_DIM, speaker_dim), nn.GELU()))
        self.speaker_proj = nn.Linear(speaker_dim, dim)
        self.unit_convs = nn.ModuleList(ConvBlock(dim, conv_kernel, dropout)
                                        for _ in range(unit_convs))
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(layers))
        self.mel_convs = nn.ModuleList(ConvBlock(dim, conv_kernel, dropout)
                                       for _ in range(mel_convs))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, N_MELS)

    def forward(self, units: torch.Tensor, unit_lengths: torch.Tensor, speakers: torch.Tensor,
                mel_lengths: torch.Tensor | None = None,
                mel_start: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """units (B, U) long, unit_lengths (B,), speakers (B,) speaker indices (``table``) or
        (B, 256) d-vectors (``dvector``) -> log-mels (B, M, N_MELS) and mask (B, M), True on
        real frames.

        ``mel_lengths`` defaults to the frames that last as long as the units; a training crop
        passes its target's length and its first frame ``mel_start`` (default 0)."""
        B, U = units.shape
        if mel_lengths is None:
            mel_lengths = torch.tensor([mel_frames_for_units(int(n), self.frame_rate)
                                        for n in unit_lengths], device=units.device)
        if mel_start is None:
            mel_start = torch.zeros(B, dtype=torch.long, device=units.device)
        unit_mask = torch.arange(U, device=units.device)[None, :] < unit_lengths[:, None]  # (B, U)

        x = self.units(units) + self.speaker(speakers)[:, None, :]  # (B, U, D)
        for conv in self.unit_convs:
            x = conv(x, unit_mask)
        x = x + sinusoids(U, x.shape[2], x.device)
        for block in self.blocks:
            x = block(x, unit_mask)

        M = int(mel_lengths.max())
        mask = torch.arange(M, device=units.device)[None, :] < mel_lengths[:, None]  # (B, M)
        # the time lookup; the last unit repeats if the target runs a frame past the units
        index = unit_index(mel_start, M, self.frame_rate)  # (B, M)
        index = torch.minimum(index, unit_lengths[:, None] - 1).clamp(min=0)
        index = index.masked_fill(~mask, 0)
        index = index[..., None].expand(-1, -1, x.shape[2])  # (B, M) -> (B, M, D)
        x = torch.gather(x, 1, index)  # (B, U, D) -> (B, M, D)
        for conv in self.mel_convs:
            x = conv(x, mask)
        return self.out(self.norm(x)), mask  # (B, M, N_MELS)

    def speaker(self, speakers: torch.Tensor) -> torch.Tensor:
        """(B,) indices or (B, 256) d-vectors -> (B, D), what every unit frame adds."""
        if self.speaker_input == "table":
            if speakers.dim() != 1 or speakers.is_floating_point():
                raise ValueError(f"this network looks voices up in its table of "
                                 f"{self.hparams['n_speakers']}: it takes (B,) speaker "
                                 f"indices, not a tensor of shape {tuple(speakers.shape)}")
            return self.speaker_proj(self.speakers(speakers))  # (B,) -> (B, S) -> (B, D)
        if speakers.shape[1:] != (DVECTOR_DIM,):
            raise ValueError(f"this network is conditioned on d-vectors: it takes "
                             f"(B, {DVECTOR_DIM}) speakers, not shape {tuple(speakers.shape)}")
        dvectors = F.normalize(speakers.float(), dim=1)  # (B, 256), unit length
        return self.speaker_proj(self.speakers(dvectors))  # (B, 256) -> (B, S) -> (B, D)

    @torch.inference_mode()
    def utterance_mel(self, units: torch.Tensor, speaker: int | torch.Tensor) -> torch.Tensor:
        """One utterance: (U,) unit ids and a speaker, an index (``table``) or a (256,)
        d-vector (``dvector``) -> (N_MELS, M) log-mels, M frames lasting as long as the
        units."""
        device = self.out.weight.device
        speakers = (torch.as_tensor(speaker, dtype=torch.float32, device=device)[None]
                    if self.speaker_input == "dvector"  # (256,) -> (1, 256)
                    else torch.tensor([speaker], device=device))  # (1,)
        mel, _ = self(units.to(device, torch.long)[None],  # (U,) -> (1, U)
                      torch.tensor([len(units)], device=device), speakers)  # (1, M, N_MELS)
        return mel[0].T.float()  # (M, N_MELS) -> (N_MELS, M)


def mel_loss(predicted: torch.Tensor, target: torch.Tensor,
             mask: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """L1 + L2 over real frames: (B, M, N_MELS) x 2, (B, M) -> scalar, and its parts."""
    valid = mask[..., None].expand_as(target)  # (B, M) -> (B, M, N_MELS)
    diff = (predicted.float() - target)[valid]  # (real frames * N_MELS,)
    l1, l2 = diff.abs().mean(), diff.square().mean()
    return l1 + l2, {"l1": l1.item(), "l2": l2.item()}
