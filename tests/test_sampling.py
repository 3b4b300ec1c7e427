"""Keyed sampling: draws depend on (seed, utterance, position, draw) and nothing else."""

from __future__ import annotations

import torch

from vadusa.decoding.sampling import (
    SamplingConfig,
    SpeechHead,
    draw_key,
    keyed_samples,
    keyed_uniforms,
    processed_logprobs,
    speech_bias,
    speech_only,
)


def test_uniforms_are_a_pure_function_of_their_key() -> None:
    a = keyed_uniforms(1, 2, range(3, 6), draws=2)  # (3 positions, 2 draws)
    assert a.shape == (3, 2) and a.dtype == torch.float64
    assert torch.equal(a, keyed_uniforms(1, 2, range(3, 6), draws=2))
    assert torch.equal(a[:, :1], keyed_uniforms(1, 2, range(3, 6), draws=1))  # draw 0 is draw 0
    assert torch.equal(a[1:2], keyed_uniforms(1, 2, [4], draws=2))  # a row is its position's
    assert torch.equal(a[:, 1:], keyed_uniforms(1, 2, range(3, 6), draws=1, first_draw=1))
    for other in ((2, 2), (1, 3)):
        assert not torch.equal(a, keyed_uniforms(*other, range(3, 6), draws=2))
    assert len(set(a.flatten().tolist())) == 6
    # the vectorised hash is the scalar key's top 53 bits, bit for bit
    for position, draw in ((3, 0), (5, 1)):
        want = (draw_key(1, 2, position, draw) >> 11) * 2.0 ** -53
        assert float(a[position - 3, draw]) == want
    assert ((a >= 0) & (a < 1)).all()


def test_inverse_cdf_samples_the_distribution() -> None:
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
    uniforms = keyed_uniforms(7, 0, range(4000), draws=1)  # (4000, 1)
    ids = keyed_samples(probs.log()[None].expand(4000, 4), uniforms)[:, 0]
    freq = torch.bincount(ids, minlength=4).double() / 4000
    assert torch.allclose(freq, probs, atol=0.025)  # 4000 draws: sd <= 0.008


def test_inverse_cdf_never_draws_a_token_without_mass() -> None:
    probs = torch.tensor([0.0, 0.6, 0.0, 0.4, 0.0], dtype=torch.float64)
    # the last is the largest uniform a key makes (53 bits): the CDF, divided by its total,
    # ends at exactly 1 above it
    u = torch.tensor([0.0, 0.3, 0.6, 0.9, 1.0 - 2.0 ** -53], dtype=torch.float64)
    assert keyed_samples(probs.log(), u).tolist() == [1, 1, 3, 3, 3]
    greedy = torch.tensor([-torch.inf, 0.0, -torch.inf], dtype=torch.float64)  # temperature 0
    assert keyed_samples(greedy, torch.tensor([0.0, 0.5, 0.999])).tolist() == [1, 1, 1]


def test_normalised_cdf_draws_what_scaled_uniforms_draw() -> None:
    # the sampler divides the CDF by its total; the earlier one multiplied u by the total and
    # kept the product below it: the same tokens on the same keys, zero-mass ids included
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(400, 50, generator=gen, dtype=torch.float64) * 3
    logits[torch.rand(400, 50, generator=gen) < 0.3] = -torch.inf
    logits[:, 0] = 0.0  # every row has some mass
    logprobs = logits.log_softmax(-1)
    u = keyed_uniforms(3, 1, range(400), 6)  # (400, 6)
    cdf = logprobs.exp().cumsum(-1)
    total = cdf[:, -1:]
    before = torch.searchsorted(cdf, torch.minimum(u * total, torch.nextafter(
        total, torch.zeros_like(total))), right=True)
    now = keyed_samples(logprobs, u)
    assert torch.equal(now, before)
    assert torch.isfinite(logprobs.gather(-1, now)).all()


def test_head_logits_fold_the_mask_and_the_temperature_into_one_product() -> None:
    for bias in (False, True):
        head = torch.nn.Linear(8, 12, bias=bias).double()
        hidden = torch.randn(3, 8, dtype=torch.float64)
        for sampling in (SamplingConfig(temperature=0.7), SamplingConfig()):
            # eos 9: bos 8 and pad 10, 11 masked
            folded = processed_logprobs(SpeechHead(head, 9, sampling)(hidden), sampling,
                                        scaled=True)
            plain = processed_logprobs(speech_only(head(hidden), 9), sampling)
            torch.testing.assert_close(folded, plain)
            assert torch.isinf(folded[:, [8, 10, 11]]).all()
            assert torch.isfinite(folded[:, :8]).all()
    assert torch.equal(speech_bias(12, 9, torch.float32, "cpu"),
                       speech_only(torch.zeros(12), 9))


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
    a = keyed_uniforms(7, 0, range(32), draws=1)
    b = keyed_uniforms(8, 15, range(32), draws=1)  # 7 ^ 0 == 8 ^ 15
    assert not torch.equal(a, b)
