"""Keyed sampling: draws depend on (seed, utterance, position, draw) and nothing else."""

from __future__ import annotations

import torch

from vadusa.decoding.sampling import (
    SamplingConfig,
    draw_key,
    gumbel_noise,
    keyed_samples,
    processed_logprobs,
)


def test_noise_is_a_pure_function_of_its_key() -> None:
    a = gumbel_noise(1, 2, 3, draws=2, size=10)
    assert torch.equal(a, gumbel_noise(1, 2, 3, draws=2, size=10))
    assert torch.equal(a[:1], gumbel_noise(1, 2, 3, draws=1, size=10))  # draw 0 is draw 0
    for other in ((2, 2, 3), (1, 3, 3), (1, 2, 4)):
        assert not torch.equal(a, gumbel_noise(*other, draws=2, size=10))
    assert not torch.equal(a[0], a[1])


def test_gumbel_max_samples_the_distribution() -> None:
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
    counts = torch.zeros(4)
    for position in range(4000):
        noise = gumbel_noise(7, 0, position, draws=1, size=4)
        counts[keyed_samples(probs.log(), noise)] += 1
    freq = counts / counts.sum()
    assert torch.allclose(freq.double(), probs, atol=0.025)  # 4000 draws: sd <= 0.008


def test_processing_temperature_topk_topp() -> None:
    logits = torch.tensor([2.0, 1.0, 0.5, -1.0])
    greedy = processed_logprobs(logits, SamplingConfig(temperature=0))
    assert greedy.argmax() == 0 and torch.isinf(greedy[1:]).all()
    top2 = processed_logprobs(logits, SamplingConfig(top_k=2))
    assert torch.isfinite(top2[:2]).all() and torch.isinf(top2[2:]).all()
    assert torch.isclose(top2.exp().sum(), torch.tensor(1.0, dtype=torch.float64))
    p = logits.softmax(-1)  # 0.61, 0.22, 0.14, 0.03
    nucleus = processed_logprobs(logits, SamplingConfig(top_p=0.8))
    assert torch.isfinite(nucleus[:2]).all() and torch.isinf(nucleus[2:]).all(), p
    hot = processed_logprobs(logits, SamplingConfig(temperature=2.0)).exp()
    assert hot[0] < p[0]  # flatter


def test_every_seed_and_utterance_has_its_own_key() -> None:
    # the seed is mixed before the utterance: (s, u) and (s', u') with s ^ u == s' ^ u' once
    # shared their noise, so a new seed only reshuffled it across utterances
    keys = {draw_key(seed, utterance, 0, 0) for seed in range(16) for utterance in range(64)}
    assert len(keys) == 16 * 64
    a = gumbel_noise(7, 0, 3, draws=1, size=32)
    b = gumbel_noise(8, 15, 3, draws=1, size=32)  # 7 ^ 0 == 8 ^ 15
    assert not torch.equal(a, b)
