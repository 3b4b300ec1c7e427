"""KV-cached AR decoding: equals recomputation, batches like single decoding, stops at eos."""

from __future__ import annotations

import torch
from torch import nn

from vadusa.decoding.ar import ar_decode, ar_decode_batch
from vadusa.decoding.sampling import (
    SamplingConfig,
    keyed_samples,
    keyed_uniforms,
    processed_logprobs,
    speech_only,
)
from vadusa.model.transformer import Transformer, TransformerConfig, causal_mask

OFFSET, V = 20, 13  # input ids [0, 20) text, [20, 33) speech; output ids: 10 units, bos, eos, pad
EOS = 11


def tiny(seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    cfg = TransformerConfig(vocab_size=OFFSET + V, output_size=V, dim=32, layers=2, heads=4,
                            max_seq=128)
    model = Transformer(cfg).double().eval()
    with torch.no_grad():
        model.head.weight.mul_(40)  # peaky distributions: different seeds, different tokens
    return model


def reference_decode(model: Transformer, prefix: torch.Tensor, max_new: int,
                     sampling: SamplingConfig, seed: int, utterance: int) -> list[int]:
    """No cache: recompute the whole sequence for every token."""
    ids, out = prefix.tolist(), []
    for t in range(max_new):
        x = torch.tensor(ids)[None]
        logits = model(x, torch.arange(len(ids))[None], causal_mask(len(ids))[None])[0, -1]
        drawn = keyed_uniforms(seed, utterance, [t], draws=1)[0]  # (1,): draw 0 at t
        token = int(keyed_samples(processed_logprobs(speech_only(logits, EOS), sampling),
                                  drawn)[0])
        if token == EOS:
            break
        out.append(token)
        ids.append(OFFSET + token)
    return out


def test_cached_equals_recompute_for_several_samplings() -> None:
    model = tiny()
    prefix = torch.randint(0, OFFSET + V, (9,))
    for sampling in (SamplingConfig(), SamplingConfig(temperature=0),
                     SamplingConfig(temperature=0.8, top_k=5, top_p=0.9)):
        got = ar_decode(model, prefix, speech_offset=OFFSET, eos=EOS, max_new=25,
                        sampling=sampling, seed=3, utterance=4)
        assert got.tokens == reference_decode(model, prefix, 25, sampling, 3, 4)
        assert all(0 <= t < EOS - 1 for t in got.tokens)  # never bos or pad
        # prefill + one forward per fed-back token (the last token is not fed back at the limit)
        assert got.forwards == len(got.tokens) + (1 if got.stopped else 0)


def test_batched_equals_one_by_one() -> None:
    model = tiny(1)
    prefixes = [torch.randint(0, OFFSET + V, (n,)) for n in (5, 11, 8)]
    sampling = SamplingConfig(temperature=1.0)
    batched = ar_decode_batch(model, prefixes, speech_offset=OFFSET, eos=EOS,
                              max_new=[20, 15, 25], sampling=sampling, seed=9,
                              utterances=[0, 1, 2])
    for u, (prefix, limit) in enumerate(zip(prefixes, (20, 15, 25), strict=True)):
        alone = ar_decode(model, prefix, speech_offset=OFFSET, eos=EOS, max_new=limit,
                          sampling=sampling, seed=9, utterance=u)
        assert batched[u].tokens == alone.tokens and batched[u].stopped == alone.stopped


def test_stops_at_eos_and_at_the_limit() -> None:
    model = tiny()
    bias = torch.zeros(V, dtype=torch.float64)
    head = nn.Linear(32, V, bias=True).double()
    head.weight.data.copy_(model.head.weight)
    model.head = head
    prefix = torch.randint(0, OFFSET, (6,))
    head.bias.data = bias.index_fill(0, torch.tensor([EOS]), 1e4)
    now = ar_decode(model, prefix, speech_offset=OFFSET, eos=EOS, max_new=30,
                    sampling=SamplingConfig(), seed=0, utterance=0)
    assert now.tokens == [] and now.stopped and now.forwards == 1
    head.bias.data = bias.index_fill(0, torch.tensor([EOS]), -1e4)
    never = ar_decode(model, prefix, speech_offset=OFFSET, eos=EOS, max_new=30,
                      sampling=SamplingConfig(), seed=0, utterance=0)
    assert len(never.tokens) == 30 and not never.stopped and never.forwards == 30
