"""MEDUSA-style draft heads: K cheap predictors of the tokens after the next one.

The base model's last hidden state at position t predicts token t+1 through its own head.
Draft head k (k = 1..K) reads the same hidden state and predicts token t+1+k, so one forward
pass of the base yields a guess for the next K+1 tokens, which the speculative decoder
(``vadusa.decoding.vadusa``) verifies in a single further pass.

Each head is a residual block ``x + SiLU(W x + b)`` whose ``W`` starts at zero, followed by a
projection to the output vocabulary that starts as a copy of the base head: at initialisation
every draft head predicts what the base predicts for t+1, a sensible first guess for t+1+k
since speech tokens often repeat. The K heads are independent modules (no shared weights).

At decoding time the heads run on one hidden state per step, where a dozen small kernel calls
cost more than the arithmetic; ``stacked`` packs the heads' weights once so that ``draft``
computes all K heads in two batched matrix products (same numbers as ``forward``).

Shapes: B batch, T positions, C model width, V output vocabulary, K heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResBlock(nn.Module):
    """x + SiLU(Linear(x)), the linear zero-initialised so the block starts as the identity."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.linear(x))


class DraftHead(nn.Module):
    def __init__(self, dim: int, output_size: int, base_head: nn.Linear) -> None:
        super().__init__()
        self.block = ResBlock(dim)
        self.proj = nn.Linear(dim, output_size, bias=False)
        with torch.no_grad():
            self.proj.weight.copy_(base_head.weight)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.proj(self.block(hidden))  # (B, T, V)


class DraftHeads(nn.Module):
    """K independent draft heads over the base model's final hidden states."""

    def __init__(self, n_heads: int, dim: int, output_size: int, base_head: nn.Linear) -> None:
        super().__init__()
        self.heads = nn.ModuleList(DraftHead(dim, output_size, base_head)
                                   for _ in range(n_heads))

    def __len__(self) -> int:
        return len(self.heads)

    def forward(self, hidden: torch.Tensor, n_heads: int | None = None) -> torch.Tensor:
        """hidden (B, T, C) -> logits (K, B, T, V) of the first ``n_heads`` heads (default all):
        entry k-1 predicts the token k+1 positions after each input position."""
        heads = self.heads[: n_heads or len(self.heads)]
        return torch.stack([head(hidden) for head in heads])  # (K, B, T, V)

    @torch.no_grad()
    def stacked(self, n_heads: int | None = None) -> StackedHeads:
        """The first ``n_heads`` heads' weights packed for ``StackedHeads.draft`` (a copy:
        take it again after the heads change). At least float32 whatever the heads' dtype: for
        one hidden state the batched products run faster in float32 than in bfloat16 on the
        CPU (124 against 215 us for 4 heads on the default machine)."""
        heads = self.heads[: n_heads or len(self.heads)]
        dtype = torch.promote_types(heads[0].proj.weight.dtype, torch.float32)
        block_weight = torch.stack([h.block.linear.weight.T for h in heads])  # (K, C, C)
        block_bias = torch.stack([h.block.linear.bias for h in heads])[:, None]  # (K, 1, C)
        proj_weight = torch.stack([h.proj.weight.T for h in heads])  # (K, C, V)
        return StackedHeads(block_weight.to(dtype), block_bias.to(dtype), proj_weight.to(dtype))


class StackedHeads:
    """K draft heads as three stacked tensors, for one hidden state at a time."""

    def __init__(self, block_weight: torch.Tensor, block_bias: torch.Tensor,
                 proj_weight: torch.Tensor) -> None:
        self.block_weight, self.block_bias = block_weight.contiguous(), block_bias
        self.proj_weight = proj_weight.contiguous()

    def draft(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (C,) -> logits (K, V): every head's guess, as ``DraftHeads.forward``."""
        K, C = self.block_bias.shape[0], hidden.shape[-1]
        hidden = hidden.to(self.block_bias.dtype)
        x = hidden.reshape(1, 1, C).expand(K, 1, C)  # the same input for every head
        x = x + F.silu(torch.baddbmm(self.block_bias, x, self.block_weight))  # (K, 1, C)
        return torch.bmm(x, self.proj_weight)[:, 0]  # (K, 1, V) -> (K, V)
