"""Sampling with keyed randomness: every draw is a pure function of
(seed, utterance, position, draw index).

We sample by inverse CDF: draw d at output position t is a uniform ``u`` in [0, 1) made by
hashing the key (seed, utterance, t, d) (splitmix64 rounds, ``draw_key``), and the token is
the first id whose cumulative probability exceeds ``u``. A draw costs one hash per position
and draw, not V random numbers, and the hashes of a whole utterance come in one vectorised
call (``keyed_uniforms``), so a speculative decoder that needs tau draws per position reads
them in place. AR decoding uses draw 0 at every position; a speculative decoder that
verifies position ``t`` reads the same uniform, so with tolerance 1 it emits exactly the AR
token, and with tolerance tau it uses draws 0..tau-1. Decoding order, batch composition and
tree shape cannot change a sample.

Shapes: V output vocabulary, P positions, N draws.
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


def _mix(x: np.ndarray, value: np.ndarray) -> np.ndarray:
    """One step of ``draw_key`` on uint64 arrays (numpy wraps uint64 products mod 2^64)."""
    x = (x ^ value) * np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9)
    return x ^ (x >> np.uint64(29))


def keyed_uniforms(seed: int, utterance: int, positions: range | list[int], draws: int,
                   first_draw: int = 0) -> torch.Tensor:
    """(P, N) float64 uniforms in [0, 1): row p, column d is draw ``first_draw + d`` at
    ``positions[p]``, the top 53 bits of ``draw_key`` (so bit-identical to the scalar key)."""
    x = np.array(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for value in (seed, utterance):
            x = _mix(x, np.array(value & _MASK64, dtype=np.uint64))
        pos = np.array([p & _MASK64 for p in positions], dtype=np.uint64)[:, None]  # (P, 1)
        draw = np.array([(first_draw + d) & _MASK64 for d in range(draws)],
                        dtype=np.uint64)[None, :]  # (1, N)
        x = _mix(_mix(x, pos), draw)  # (P, N)
    return torch.from_numpy((x >> np.uint64(11)).astype(np.float64) * 2.0 ** -53)


def processed_logprobs(logits: torch.Tensor, sampling: SamplingConfig, scaled: bool = False
                       ) -> torch.Tensor:
    """(..., V) logits -> (..., V) log-probabilities after temperature, top-k, top-p
    (filtered entries are -inf). With temperature 0 the argmax gets all the mass. ``scaled``:
    the logits are divided by the temperature already (``SpeechHead``)."""
    logits = logits.double()
    if sampling.temperature == 0:
        best = logits.argmax(-1, keepdim=True)
        return torch.full_like(logits, -torch.inf).scatter(-1, best, 0.0)
    if not scaled and sampling.temperature != 1.0:
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


def speech_bias(size: int, eos: int, dtype: torch.dtype, device: torch.device | str
                ) -> torch.Tensor:
    """(V,) additive mask with ``speech_only``'s effect: 0 on speech tokens and eos, -inf on
    bos and pad. Added to logits (or passed as the bias of the head's ``addmm``), it masks in
    one operation instead of a copy and two writes per call."""
    return speech_only(torch.zeros(size, dtype=dtype, device=device), eos)


class SpeechHead:
    """The base head as decoders read it: hidden (R, C) -> (R, V) speech logits (bos and pad
    at -inf, the ``speech_bias``) divided by the sampling temperature, in one ``addmm`` per
    call (the mask and the temperature folded into its bias and scale, the transposed
    weight taken once). Pass its logits on with ``processed_logprobs(..., scaled=True)``."""

    def __init__(self, head: torch.nn.Linear, eos: int, sampling: SamplingConfig) -> None:
        self.scale = 1.0
        if sampling.temperature not in (0.0, 1.0):
            self.scale = 1.0 / sampling.temperature
        weight = head.weight
        self.weight_t = weight.T  # (C, V): a view of the live weight
        self.bias = speech_bias(weight.shape[0], eos, weight.dtype, weight.device)  # (V,)
        if head.bias is not None:  # (the speech bias's 0 and -inf need no scaling)
            self.bias = self.bias + head.bias.detach() * self.scale

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, hidden, self.weight_t, alpha=self.scale)


def keyed_samples(logprobs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF sampling: (..., V) log-probabilities and (..., N) uniforms in [0, 1) ->
    (..., N) sampled ids (leading dimensions shared). The first id whose cumulative
    probability, divided by the total, exceeds ``u``; ids of zero probability are never
    drawn. No host synchronisation (a decoder on a GPU keeps sampling on the device)."""
    if logprobs.dtype != torch.float64:  # (a check on the host, no call when it is)
        logprobs = logprobs.double()
    cdf = logprobs.exp().cumsum(-1)  # (..., V)
    # divided by its own last entry the CDF ends at exactly 1 (x / x is exact), above every
    # u < 1, so no draw falls past it; a zero-probability id repeats its predecessor's entry
    # and is never the first to exceed u
    cdf = cdf / cdf[..., -1:]  # (..., V)
    if uniforms.dtype != torch.float64:
        uniforms = uniforms.double()
    return torch.searchsorted(cdf, uniforms, right=True)
