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

``HydraHeads`` (``heads.kind: hydra``; Ankner et al. 2024, arXiv 2402.05109) make the heads
sequentially dependent: head k also reads the embeddings of the k tokens between the hidden
state and its guess (the base's token at t+1 and the drafts for t+2..t+k), so a head knows
which path of the tree it extends. Its block is ``h + SiLU(W [h; e_1; ..; e_k] + b)`` with
``W`` zero at the start: it begins as the MEDUSA head above. In a tree, head k runs once per
parent node at depth k - 1, on that node's path (``decoding/vadusa.py``).

``SharedHeads`` (``heads.kind: shared``) keep the residual blocks and drop the K projections:
every head projects through the base's own head, so a decoding pass reads one V x C matrix,
the one its verification has just read, for all its drafts. ``heads.rank`` r > 0 gives each
head a low-rank correction to that head, ``x A_k B_k`` with A_k (C, r) and B_k (r, V) (B
zero at the start, as LoRA's): r (C + V) numbers per head instead of C V.

Shapes: B batch, T positions, C model width, V output vocabulary, K heads, r correction rank.
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


KINDS = ("medusa", "hydra", "shared")


class DraftHeads(nn.Module):
    """K independent draft heads over the base model's final hidden states."""

    kind = "medusa"

    def __init__(self, n_heads: int, dim: int, output_size: int, base_head: nn.Linear) -> None:
        super().__init__()
        self.heads = nn.ModuleList(DraftHead(dim, output_size, base_head)
                                   for _ in range(n_heads))

    def __len__(self) -> int:
        return len(self.heads)

    def forward(self, hidden: torch.Tensor, n_heads: int | None = None,
                tokens: torch.Tensor | None = None) -> torch.Tensor:
        """hidden (B, T, C) -> logits (K, B, T, V) of the first ``n_heads`` heads (default all):
        entry k-1 predicts the token k+1 positions after each input position. ``tokens``
        (read by ``HydraHeads`` only) are ignored."""
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
        proj_weight = torch.stack([h.proj.weight.T for h in heads])  # (K, C, V)
        return StackedHeads.of([h.block for h in heads], proj_weight.to(dtype), dtype)


class HydraHead(nn.Module):
    """Head k: proj(h + SiLU(W [h; e_1; ..; e_k] + b)), W zero-initialised."""

    def __init__(self, dim: int, depth: int, output_size: int, base_head: nn.Linear) -> None:
        super().__init__()
        self.linear = nn.Linear(dim * (depth + 1), dim)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.proj = nn.Linear(dim, output_size, bias=False)
        with torch.no_grad():
            self.proj.weight.copy_(base_head.weight)

    def forward(self, hidden: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """hidden (..., C), context (..., k C) the path's token embeddings -> (..., V)."""
        x = torch.cat([hidden, context], -1)  # (..., (k + 1) C)
        return self.proj(hidden + F.silu(self.linear(x)))


class HydraHeads(nn.Module):
    """K sequentially dependent draft heads: head k reads the hidden state at t and the
    embeddings of the tokens at t+1..t+k (output ids, in a table of their own that starts as
    a copy of the base's speech-token embeddings)."""

    kind = "hydra"

    def __init__(self, n_heads: int, dim: int, output_size: int, base_head: nn.Linear,
                 embedding: torch.Tensor | None = None) -> None:
        super().__init__()
        self.embed = nn.Embedding(output_size, dim)
        if embedding is not None:  # (V, C): the base's input rows of the output ids
            with torch.no_grad():
                self.embed.weight.copy_(embedding)
        self.heads = nn.ModuleList(HydraHead(dim, k, output_size, base_head)
                                   for k in range(1, n_heads + 1))
        self.pad = output_size - 1  # the pad output id stands in past the end

    def __len__(self) -> int:
        return len(self.heads)

    def forward(self, hidden: torch.Tensor, n_heads: int | None = None,
                tokens: torch.Tensor | None = None) -> torch.Tensor:
        """hidden (B, T, C) and tokens (B, T), the output id each position's base head is to
        emit (position i's token is the one at i + 1; -100 and ids past the end read as pad)
        -> logits (K, B, T, V): entry k-1 at i guesses the token at i + k + 1 from tokens
        i..i+k-1 (teacher forcing)."""
        if tokens is None:
            raise ValueError("hydra heads read the tokens before their guess: pass tokens")
        K = n_heads or len(self.heads)
        B, T, C = hidden.shape
        ids = torch.where(tokens < 0, self.pad, tokens)  # (B, T)
        ids = F.pad(ids, (0, K), value=self.pad)  # (B, T + K)
        emb = self.embed(ids).to(hidden.dtype)  # (B, T + K, C)
        out = []
        for k, head in enumerate(self.heads[:K], start=1):
            context = torch.cat([emb[:, j:j + T] for j in range(k)], -1)  # (B, T, k C)
            out.append(head(hidden, context))
        return torch.stack(out)  # (K, B, T, V)

    @torch.no_grad()
    def stacked(self, n_heads: int | None = None) -> StackedHydra:
        """The first ``n_heads`` heads packed for decoding (a copy: take it again after the
        heads change)."""
        return StackedHydra(self, n_heads or len(self.heads))


class StackedHydra:
    """Hydra heads packed for decoding one hidden state at a time. Head k's block input
    ``W [h; e_1; ..; e_k] + b`` splits into ``W_h h + b`` (the same for every node: computed
    once per pass for all heads in one batched product) and ``sum_j W_j e_j``; each ``W_j E^T``
    is precomputed as a (V, C) table, so a path's share is a sum of k rows instead of a product
    (``step``: the numbers of ``HydraHeads.forward`` up to float rounding)."""

    def __init__(self, heads: HydraHeads, n_heads: int) -> None:
        dtype = torch.promote_types(heads.embed.weight.dtype, torch.float32)
        E = heads.embed.weight.detach().to(dtype)  # (V, C)
        C = E.shape[1]
        mods = heads.heads[:n_heads]
        self.hidden_weight = torch.stack([m.linear.weight[:, :C].T for m in mods]
                                         ).detach().to(dtype).contiguous()  # (K, C, C)
        self.bias = torch.stack([m.linear.bias for m in mods])[:, None].detach().to(dtype)
        # tables[k - 1]: (k V, C), rows j V .. (j + 1) V - 1 the contribution of token e_{j+1}
        # to head k's block, so a path's share is a sum of k rows picked by one index
        V = E.shape[0]
        self.tables = [torch.cat([E @ m.linear.weight[:, C * (j + 1):C * (j + 2)].detach()
                                  .to(dtype).T for j in range(k)])
                       for k, m in enumerate(mods, start=1)]  # (k V, C) each
        self.offsets = [torch.arange(k, device=E.device) * V
                        for k in range(1, n_heads + 1)]  # (k,): each token's block of rows
        self.proj = [m.proj.weight.detach().to(dtype).T.contiguous() for m in mods]  # (C, V)
        self.dtype = dtype

    def hidden_part(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (C,) -> (K, C): ``W_h h + b`` of every head."""
        K, C = self.bias.shape[0], hidden.shape[-1]
        x = hidden.to(self.dtype).reshape(1, 1, C).expand(K, 1, C)  # the same for every head
        return torch.baddbmm(self.bias, x, self.hidden_weight)[:, 0]  # (K, 1, C) -> (K, C)

    def step(self, k: int, hidden: torch.Tensor, share: torch.Tensor, path: torch.Tensor,
             bias: torch.Tensor | None = None) -> torch.Tensor:
        """Head k on P paths: hidden (C,) in ``dtype``, share (C,) head k's row of
        ``hidden_part``, path (P, k) output ids -> (P, V) logits; ``bias`` (V,), if given, is
        added in the projection."""
        z = self.tables[k - 1][path + self.offsets[k - 1]].sum(1)  # (P, k, C) -> (P, C)
        x = hidden + F.silu(z + share)  # (P, C)
        if bias is None:
            return x @ self.proj[k - 1]  # (P, V)
        return torch.addmm(bias, x, self.proj[k - 1])  # (P, V)


class SharedHeads(DraftHeads):
    """K MEDUSA residual blocks that project through the base model's own head (``heads.kind:
    shared``): head k is ``base_head(x + SiLU(W_k x + b_k))``. A pass then reads one V x C
    matrix for all its drafts, the one its verification has just read, instead of K copies
    (on a CPU each is a cold read from memory after the forward). In joint training the base
    head learns for both; frozen, only the blocks learn."""

    kind = "shared"

    def __init__(self, n_heads: int, dim: int, output_size: int, base_head: nn.Linear,
                 rank: int = 0) -> None:
        nn.Module.__init__(self)
        if base_head.out_features != output_size:
            raise ValueError(f"the base head predicts {base_head.out_features} ids, not "
                             f"{output_size}")
        self.blocks = nn.ModuleList(ResBlock(dim) for _ in range(n_heads))
        # a tuple, not a submodule: its weights are the base model's, saved and moved there
        self.base = (base_head,)
        self.rank = rank
        if rank:  # the correction starts at zero (up), its input side random (down)
            self.down = nn.Parameter(torch.randn(n_heads, dim, rank) / dim ** 0.5)  # (K, C, r)
            self.up = nn.Parameter(torch.zeros(n_heads, rank, output_size))  # (K, r, V)

    def __len__(self) -> int:
        return len(self.blocks)

    def forward(self, hidden: torch.Tensor, n_heads: int | None = None,
                tokens: torch.Tensor | None = None) -> torch.Tensor:
        """As ``DraftHeads.forward``: hidden (B, T, C) -> logits (K, B, T, V)."""
        blocks = self.blocks[: n_heads or len(self.blocks)]
        xs = torch.stack([block(hidden) for block in blocks])  # (K, B, T, C)
        logits = self.base[0](xs)  # (K, B, T, V)
        if not self.rank:
            return logits
        K = len(blocks)
        low = torch.einsum("kbtc,kcr->kbtr", xs, self.down[:K].to(xs.dtype))  # (K, B, T, r)
        return logits + torch.einsum("kbtr,krv->kbtv", low, self.up[:K].to(xs.dtype))

    @torch.no_grad()
    def stacked(self, n_heads: int | None = None) -> StackedHeads:
        """As ``DraftHeads.stacked``; the projection is the base head's transposed weight, a
        view of it (not a copy) where it is float32 already."""
        blocks = self.blocks[: n_heads or len(self.blocks)]
        head = self.base[0]
        if head.bias is not None:
            raise ValueError("shared heads project through a base head without a bias")
        dtype = torch.promote_types(head.weight.dtype, torch.float32)
        low = None
        if self.rank:
            K = len(blocks)
            low = (self.down[:K].detach().to(dtype).contiguous(),  # (K, C, r)
                   self.up[:K].detach().to(dtype).contiguous())  # (K, r, V)
        return StackedHeads.of(list(blocks), head.weight.detach().to(dtype).T,  # (C, V): all K
                               dtype, low)


def make_heads(kind: str, n_heads: int, dim: int, output_size: int, base_head: nn.Linear,
               embedding: torch.Tensor | None = None, rank: int = 0) -> DraftHeads | HydraHeads:
    """The draft heads of ``kind`` (``KINDS``); ``embedding`` (V, C) seeds Hydra's table;
    ``rank``: the shared heads' correction (read by ``kind: shared`` only)."""
    if kind == "medusa":
        return DraftHeads(n_heads, dim, output_size, base_head)
    if kind == "shared":
        return SharedHeads(n_heads, dim, output_size, base_head, rank)
    if kind == "hydra":
        return HydraHeads(n_heads, dim, output_size, base_head, embedding)
    raise ValueError(f"unknown draft heads kind {kind!r} (choose from {KINDS})")


class StackedHeads:
    """K draft heads as stacked tensors, for one hidden state at a time; the projection
    (K, C, V) per head, or (C, V) shared by all (``SharedHeads``: kept as given, a view of the
    base head's weight) with, optionally, the heads' low-rank corrections ``low``: (K, C, r)
    and (K, r, V)."""

    def __init__(self, block_weight: torch.Tensor, block_bias: torch.Tensor,
                 proj_weight: torch.Tensor,
                 low: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        self.block_weight, self.block_bias = block_weight.contiguous(), block_bias
        self.proj_weight = proj_weight.contiguous() if proj_weight.dim() == 3 else proj_weight
        if low is not None and proj_weight.dim() != 2:
            raise ValueError("a low-rank correction goes with one shared projection")
        self.low = low

    @classmethod
    def of(cls, blocks: list[ResBlock], proj_weight: torch.Tensor, dtype: torch.dtype,
           low: tuple[torch.Tensor, torch.Tensor] | None = None) -> StackedHeads:
        """The heads' residual blocks packed in ``dtype`` beside their projection."""
        block_weight = torch.stack([b.linear.weight.T for b in blocks])  # (K, C, C)
        block_bias = torch.stack([b.linear.bias for b in blocks])[:, None]  # (K, 1, C)
        return cls(block_weight.to(dtype), block_bias.to(dtype), proj_weight, low)

    def draft(self, hidden: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """hidden (C,) -> logits (K, V): every head's guess, as ``DraftHeads.forward``;
        ``bias`` (V,), if given, is added in the projection."""
        K, C = self.block_bias.shape[0], hidden.shape[-1]
        if hidden.dtype != self.block_bias.dtype:
            hidden = hidden.to(self.block_bias.dtype)
        x = hidden.expand(K, 1, C)  # (C,) -> (K, 1, C): the same input for every head
        x = x + F.silu(torch.baddbmm(self.block_bias, x, self.block_weight))  # (K, 1, C)
        if self.proj_weight.dim() == 2:  # one projection for every head: (K, C) @ (C, V)
            if bias is None:
                shared = x[:, 0] @ self.proj_weight  # (K, V)
            else:
                shared = torch.addmm(bias, x[:, 0], self.proj_weight)  # (K, V)
            if self.low is None:
                return shared
            down, up = self.low
            low = torch.bmm(x, down)  # (K, 1, C) @ (K, C, r) -> (K, 1, r)
            return torch.baddbmm(shared[:, None], low, up)[:, 0]  # (K, 1, V) -> (K, V)
        if bias is None:
            return torch.bmm(x, self.proj_weight)[:, 0]  # (K, 1, V) -> (K, V)
        return torch.baddbmm(bias, x, self.proj_weight)[:, 0]  # (K, 1, V) -> (K, V)
