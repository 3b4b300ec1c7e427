"""A decoder-only transformer with a static KV cache, written to be read.

The caller owns positions and the attention mask: ``forward(tokens, input_pos, attn_mask)``.
Causal decoding, batched prefill and tree verification (VADUSA) are then the same call with
different masks; nothing here knows about trees.

Shape legend:
    B  batch                    T  new positions in this call
    S  cache length (max_seq)   C  model width (dim)
    S' the first S' <= S cache slots, those a call attends to
    H  attention heads          D  head width (C / H)
    V  output vocabulary
    F  per-position features      S_f rows of a feature table

Positions are rotary (RoPE): a position enters attention only as a rotation of queries and
keys, so a tree node at depth d simply gets position ``prefix + d``, whatever its slot.

Per-position input features (``frames``, e.g. the TTS model's text alignment, model/tts.py)
are another function of the position, like the rotation: the caller passes one table over
positions per sequence, and each new token adds the embeddings of its position's row, so a tree
node gets the features of its position, never those of its slot.

Training may ask for the attention weights of the first head of some layers (``probes``)
to put a loss on them (guided attention, ``training/tts.py``); decoding never does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class TransformerConfig:
    vocab_size: int  # input ids (text symbols, speech tokens, specials, speakers)
    output_size: int  # ids the head predicts (speech tokens + specials)
    dim: int = 256
    layers: int = 6
    heads: int = 4
    ffn_mult: int = 4
    max_seq: int = 1024
    dropout: float = 0.0
    rope_base: float = 10000.0
    # cardinality of each per-position input feature (``frames`` of ``hidden``); () = none
    frame_features: tuple[int, ...] = ()


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x * rsqrt(mean(x^2) + eps) * weight, fused: one kernel instead of five
        return F.rms_norm(x, self.weight.shape, self.weight, self.eps)


def rope_tables(head_dim: int, max_seq: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables (max_seq, D/2) for rotary positions."""
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(max_seq, dtype=torch.float64), inv_freq)  # (S, D/2)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs of channels of x (..., D) by angles cos, sin (..., D/2) that broadcast
    against x's leading dimensions."""
    x1, x2 = x[..., 0::2], x[..., 1::2]  # (..., D/2) each
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    rotated = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (..., D/2, 2)
    return rotated.flatten(-2)  # (..., D)


class KVCache(nn.Module):
    """Static (B, H, S, D) key/value buffers written by index (gpt-fast style)."""

    def __init__(self, batch: int, heads: int, max_seq: int, head_dim: int,
                 dtype: torch.dtype, device: torch.device) -> None:
        super().__init__()
        shape = (batch, heads, max_seq, head_dim)
        self.register_buffer("k", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v", torch.zeros(shape, dtype=dtype, device=device), persistent=False)

    def update(self, slots: torch.Tensor | slice, k: torch.Tensor, v: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v (B, H, T, D) at cache slots (T,) (a slice: contiguous slots, written
        as a view rather than by index); return the whole cache."""
        self.k[:, :, slots] = k
        self.v[:, :, slots] = v
        return self.k, self.v

    def compact(self, source: torch.Tensor, target: torch.Tensor) -> None:
        """Copy entries at slots ``source`` (N,) to slots ``target`` (N,): after tree
        verification, the accepted path moves into contiguous slots after the prefix."""
        self.k[:, :, target] = self.k[:, :, source].clone()
        self.v[:, :, target] = self.v[:, :, source].clone()


class Attention(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.heads, self.head_dim = cfg.heads, cfg.dim // cfg.heads
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim, bias=False)
        self.proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.dropout = cfg.dropout
        self.cache: KVCache | None = None

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                mask: torch.Tensor, slots: torch.Tensor | slice | None, probe: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-> output (B, T, C), and with ``probe`` head 0's attention weights (B, T, S').
        ``mask`` (B, T, S'): boolean (True = may attend) or additive (0 or -inf)."""
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.heads, self.head_dim)  # (B, T, 3, H, D)
        # queries and keys rotated in one call: (B, T, 2, H, D), angles (B, T, 1, 1, D/2)
        qk = apply_rope(qkv[:, :, :2], cos[:, :, None, None], sin[:, :, None, None])
        q, k = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2)  # (B, H, T, D)
        v = qkv[:, :, 2].transpose(1, 2)  # (B, H, T, D)
        if self.cache is not None and slots is not None:
            k, v = self.cache.update(slots, k, v)  # (B, H, S, D): attend over the cache
            # only the first S' slots the mask covers: the unwritten rest of a static cache
            # would cost attention work for keys that are masked out anyway
            k, v = k[:, :, :mask.shape[-1]], v[:, :, :mask.shape[-1]]  # (B, H, S', D)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask[:, None], dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, H, T, D) -> (B, T, C)
        probs = None
        if probe:  # the same weights SDPA used for head 0, spelled out so a loss can reach them
            scores = q[:, 0] @ k[:, 0].transpose(1, 2) / math.sqrt(self.head_dim)  # (B, T, S')
            probs = scores.masked_fill(~mask, float("-inf")).softmax(-1)
        return self.proj(y), probs


class FeedForward(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.up = nn.Linear(cfg.dim, cfg.ffn_mult * cfg.dim, bias=False)
        self.down = nn.Linear(cfg.ffn_mult * cfg.dim, cfg.dim, bias=False)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down(F.gelu(self.up(x))))


class Block(nn.Module):
    """Pre-norm: x + attn(norm(x)), then x + ffn(norm(x))."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.norm1, self.attn = RMSNorm(cfg.dim), Attention(cfg)
        self.norm2, self.ffn = RMSNorm(cfg.dim), FeedForward(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                mask: torch.Tensor, slots: torch.Tensor | slice | None, probe: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        h, probs = self.attn(self.norm1(x), cos, sin, mask, slots, probe)
        x = x + h
        return x + self.ffn(self.norm2(x)), probs


class Transformer(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.frame_embed = nn.ModuleList(nn.Embedding(n, cfg.dim) for n in cfg.frame_features)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.output_size, bias=False)
        cos, sin = rope_tables(cfg.dim // cfg.heads, cfg.max_seq, cfg.rope_base)
        self.register_buffer("rope_cos", cos.float(), persistent=False)
        self.register_buffer("rope_sin", sin.float(), persistent=False)
        self.apply(self._init)
        for block in self.blocks:  # scaled init of residual projections (GPT-2)
            for proj in (block.attn.proj, block.ffn.down):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * cfg.layers))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    # -- the KV cache ---------------------------------------------------------------------

    def setup_cache(self, batch: int, max_seq: int | None = None, keep: bool = False) -> None:
        """Static (B, H, S, D) caches in every layer. With ``keep``, the caches of each shape
        are kept and set up again by later calls (not zeroed: what a call may read, it
        wrote), so that a compiled step keeps reading the buffers it was compiled against,
        also when calls of two shapes take turns."""
        max_seq = max_seq or self.cfg.max_seq
        param = self.head.weight
        key = (batch, max_seq, param.dtype, param.device)
        kept = self.__dict__.setdefault("_kept_caches", {})
        if keep and key in kept:
            for block, cache in zip(self.blocks, kept[key], strict=True):
                block.attn.cache = cache
            return
        for block in self.blocks:
            block.attn.cache = KVCache(batch, self.cfg.heads, max_seq,
                                       self.cfg.dim // self.cfg.heads, param.dtype, param.device)
        if keep:
            kept[key] = [block.attn.cache for block in self.blocks]

    def clear_cache(self) -> None:
        for block in self.blocks:
            block.attn.cache = None

    def compact_cache(self, source: torch.Tensor, target: torch.Tensor) -> None:
        for block in self.blocks:
            assert block.attn.cache is not None
            block.attn.cache.compact(source, target)

    # -- forward --------------------------------------------------------------------------

    def hidden(self, tokens: torch.Tensor, input_pos: torch.Tensor, attn_mask: torch.Tensor,
               cache_slots: torch.Tensor | slice | None = None,
               probes: dict[int, torch.Tensor | None] | None = None,
               frames: torch.Tensor | None = None) -> torch.Tensor:
        """Last hidden states (B, T, C).

        tokens (B, T) ids; input_pos (B, T) rotary positions; attn_mask (B, T, S') boolean,
        True = may attend (or additive, 0 or -inf, built by the caller once), over the first
        S' cache slots when a cache is set up (S' <= the cache length; later slots are not
        attended at all), else over the T positions themselves (S' = T); cache_slots (T,)
        where the new keys and values are written, or a slice of contiguous slots (default:
        ``input_pos[0]``, i.e. slot = position); ``probes``, a dict keyed by layer index,
        receives head 0's attention weights (B, T, S') of those
        layers; ``frames`` (B or 1, S_f, F) integer features by position, required when the
        model was built with ``frame_features``: each token adds the embeddings of row
        ``input_pos`` (positions past the table read its last row)."""
        decoding = self.blocks[0].attn.cache is not None
        if decoding and cache_slots is None:
            cache_slots = input_pos[0]
        x = self.embed(tokens)  # (B, T, C)
        if decoding and attn_mask.dtype == torch.bool and not probes:
            # additive once per call, not a conversion inside every layer's attention
            attn_mask = torch.zeros(attn_mask.shape, dtype=x.dtype, device=x.device
                                    ).masked_fill_(~attn_mask, float("-inf"))
        if self.frame_embed:
            x = x + self.frame_embedding(frames, input_pos)
        cos, sin = self.rope_cos[input_pos], self.rope_sin[input_pos]  # (B, T, D/2)
        for i, block in enumerate(self.blocks):
            probe = probes is not None and i in probes
            x, probs = block(x, cos, sin, attn_mask, cache_slots, probe)
            if probe:
                probes[i] = probs
        return self.norm(x)

    def frame_embedding(self, frames: torch.Tensor | None, input_pos: torch.Tensor
                        ) -> torch.Tensor:
        """(B, T, C): the sum of the feature embeddings of each position's row of ``frames``."""
        if frames is None:
            raise ValueError("this model reads per-position frame features (its text "
                             "alignment): pass frames=, the table of the utterance")
        rows = input_pos.clamp_max(frames.shape[1] - 1)  # (B, T)
        if frames.shape[0] == 1:  # one table for every row of the batch
            picked = frames[0, rows]  # (B, T, F)
        else:
            picked = frames[torch.arange(len(rows), device=rows.device)[:, None], rows]
        return sum(embed(picked[..., f]) for f, embed in enumerate(self.frame_embed))

    def forward(self, tokens: torch.Tensor, input_pos: torch.Tensor, attn_mask: torch.Tensor,
                cache_slots: torch.Tensor | slice | None = None,
                probes: dict[int, torch.Tensor | None] | None = None,
                frames: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, T, V); arguments as in ``hidden``."""
        return self.head(self.hidden(tokens, input_pos, attn_mask, cache_slots, probes, frames))


def causal_mask(T: int, device: torch.device | None = None) -> torch.Tensor:
    """(T, T) lower-triangular boolean mask."""
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()
