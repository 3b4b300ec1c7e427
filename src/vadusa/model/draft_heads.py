"""MEDUSA-style draft heads: K cheap predictors of the tokens after the next one.

The base model's last hidden state at position t predicts token t+1 through its own head.
Draft head k (k = 1..K) reads the same hidden state and predicts token t+1+k, so one forward
pass of the base yields a guess for the next K+1 tokens, which the speculative decoder
(``vadusa.decoding.vadusa``) verifies in a single further pass.

Each head is a residual block ``x + SiLU(W x + b)`` whose ``W`` starts at zero, followed by a
projection to the output vocabulary that starts as a copy of the base head: at initialisation
every draft head predicts what the base predicts for t+1, a sensible first guess for t+1+k
since speech tokens often repeat. The K heads are independent modules (no shared weights).

Shapes: B batch, T positions, C model width, V output vocabulary, K heads.
"""

from __future__ import annotations

import torch
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
