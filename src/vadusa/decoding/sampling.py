"""Sampling with keyed randomness: every draw is a pure function of
(seed, utterance, position, draw index).

We sample by Gumbel-max: ``argmax(log p + g)`` with Gumbel noise ``g`` generated from a
counter-based generator (Philox) keyed by the draw's coordinates: the stream keyed by
(seed, utterance, position) gives draw 0 in its first V numbers, draw 1 in the next V, and so
on, so one generator serves every draw of a position (making one costs more than drawing
from it, and a speculative decoder needs tau draws per position). AR decoding uses draw 0 at
every position; a speculative decoder that verifies position ``t`` draws the same noise, so
with tolerance 1 it emits exactly the AR token, and with tolerance tau it uses draws
0..tau-1. Decoding order, batch composition and tree shape cannot change a sample.

Shapes: V output vocabulary, N draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 1.0  # 0 = greedy (argmax)
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1 = off


def draw_key(seed: int, utterance: int, position: int, draw: int) -> int:
    """A 64-bit key mixing the four coordinates (splitmix64 finalizer on each step). The seed
    is mixed on its own first: were it XORed with the utterance index directly, (seed s,
    utterance u) would share its randomness with every (s', u') where s ^ u == s' ^ u', and a
    new seed would mostly reshuffle which utterance gets which noise."""
    x = 0
    for value in (seed, utterance, position, draw):
        x = (x ^ (value & _MASK64)) * 0x9E3779B97F4A7C15 & _MASK64
        x = (x ^ (x >> 31)) * 0xBF58476D1CE4E5B9 & _MASK64
        x ^= x >> 29
    return x


def gumbel_noise(seed: int, utterance: int, position: int, draws: int, size: int
                 ) -> torch.Tensor:
    """(N, V) float64 Gumbel noise for draws 0..N-1 at one position of one utterance; draw d
    is block d of the position's stream, whatever N is."""
    generator = np.random.Generator(np.random.Philox(key=draw_key(seed, utterance, position,
                                                                  0)))
    u = generator.random(draws * size).reshape(draws, size)  # uniform in [0, 1)
    return torch.from_numpy(-np.log(-np.log(np.clip(u, 1e-300, 1 - 1e-16))))  # (N, V)


def processed_logprobs(logits: torch.Tensor, sampling: SamplingConfig) -> torch.Tensor:
    """(..., V) logits -> (..., V) log-probabilities after temperature, top-k, top-p
    (filtered entries are -inf). With temperature 0 the argmax gets all the mass."""
    logits = logits.double()
    if sampling.temperature == 0:
        best = logits.argmax(-1, keepdim=True)
        return torch.full_like(logits, -torch.inf).scatter(-1, best, 0.0)
    logits = logits / sampling.temperature
    if sampling.top_k > 0 and sampling.top_k < logits.shape[-1]:
        kth = logits.topk(sampling.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -torch.inf)
    if sampling.top_p < 1.0:
        sorted_logits, order = logits.sort(-1, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop_sorted = cumulative - sorted_logits.softmax(-1) >= sampling.top_p  # keep the first
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, -torch.inf)
    return logits.log_softmax(-1)


def speech_only(logits: torch.Tensor, eos: int) -> torch.Tensor:
    """Mask every output id past the speech tokens except ``eos`` (bos and pad are inputs
    only): (..., V) -> (..., V). Speech tokens are the ids below ``eos - 1`` (= bos)."""
    masked = logits.clone()
    masked[..., eos - 1] = -torch.inf  # bos
    masked[..., eos + 1:] = -torch.inf  # pad
    return masked


def keyed_samples(logprobs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Gumbel-max: (V,) log-probabilities and (N, V) noise -> (N,) sampled ids."""
    return (logprobs[None].to(noise.dtype) + noise).argmax(-1)
