"""The transformer's caller-owned positions and masks, and its static KV cache."""

from __future__ import annotations

import torch

from vadusa.model.transformer import Transformer, TransformerConfig, causal_mask


def tiny(seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    cfg = TransformerConfig(vocab_size=50, output_size=40, dim=32, layers=2, heads=4, max_seq=64)
    return Transformer(cfg).double().eval()


def test_cached_decoding_equals_full_recompute() -> None:
    model = tiny()
    tokens = torch.randint(0, 50, (2, 20))
    pos = torch.arange(20).expand(2, 20)
    full = model(tokens, pos, causal_mask(20).expand(2, 20, 20))
    model.setup_cache(batch=2, max_seq=64)
    slots = torch.arange(64)
    prefill = model(tokens[:, :12], pos[:, :12], (slots[None, :] <= slots[:12, None])
                    .expand(2, 12, 64))
    steps = [prefill]
    for t in range(12, 20):
        mask = (slots <= t).expand(2, 1, 64)
        steps.append(model(tokens[:, t:t + 1], pos[:, t:t + 1], mask))
    cached = torch.cat(steps, dim=1)
    assert torch.allclose(cached, full, atol=1e-10)


def test_positions_are_the_callers() -> None:
    """Shifting every position by a constant leaves causal attention unchanged (RoPE is
    relative), while permuting positions does not."""
    model = tiny()
    tokens = torch.randint(0, 50, (1, 10))
    mask = causal_mask(10)[None]
    base = model(tokens, torch.arange(10)[None], mask)
    shifted = model(tokens, torch.arange(7, 17)[None], mask)
    assert torch.allclose(base, shifted, atol=1e-9)
    scrambled = model(tokens, torch.arange(10).flip(0)[None], mask)
    assert (base - scrambled).abs().max() > 1e-6  # well above float64 noise (1e-9 above)


def test_compact_moves_exactly_the_given_entries() -> None:
    model = tiny()
    model.setup_cache(batch=1, max_seq=16)
    tokens = torch.randint(0, 50, (1, 8))
    model(tokens, torch.arange(8)[None], torch.ones(1, 8, 16, dtype=torch.bool).tril())
    cache = model.blocks[0].attn.cache
    before_k, before_v = cache.k.clone(), cache.v.clone()
    model.compact_cache(torch.tensor([5, 7]), torch.tensor([3, 4]))
    assert torch.equal(cache.k[:, :, 3], before_k[:, :, 5])
    assert torch.equal(cache.v[:, :, 4], before_v[:, :, 7])
    untouched = [0, 1, 2, 5, 6, 7]
    assert torch.equal(cache.k[:, :, untouched], before_k[:, :, untouched])
