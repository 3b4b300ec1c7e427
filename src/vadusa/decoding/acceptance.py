"""Acceptance rules: does the base model accept a draft token at one position?

Every rule sees the base model's processed log-probabilities at the draft's position
(temperature, top-k, top-p applied; ``sampling.processed_logprobs``) and the keyed uniforms
of that position (``sampling.keyed_uniforms``), so all of them are pure functions of
(model, seed, utterance, position).

- ``tolerance`` (the paper's): the base head samples tau times (draws 0..tau-1 of the
  position's key); the draft token is accepted iff it is among the samples, so
  P(accept c) = 1 - (1 - p(c))^tau. tau = 1 is lossless and, with the same keys, emits exactly
  the tokens AR decoding emits. Greedy decoding is tau = 1 at temperature 0. The end of
  speech is the exception (``accepted_by_parent``): eos is accepted only where draw 0 is eos,
  and then nothing else is, so utterances end where AR would end them.
- ``typical`` (MEDUSA-2's typical acceptance, a comparison point): accept c iff
  p(c) > min(epsilon, delta * exp(-H(p))), H the entropy of p. Lossy; no samples needed.

Shapes: N nodes verified at once, V output vocabulary, T draws (tau).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vadusa.decoding.sampling import keyed_samples

RULES = ("tolerance", "typical")


@dataclass(frozen=True)
class AcceptRule:
    name: str = "tolerance"
    tau: int = 1  # tolerance: samples of the base head
    epsilon: float = 0.09  # typical: hard threshold (MEDUSA's default posterior_threshold)
    delta: float = 0.3  # typical: entropy-scaled threshold (MEDUSA's posterior_alpha)

    def __post_init__(self) -> None:
        if self.name not in RULES:
            raise ValueError(f"unknown acceptance rule {self.name!r} (choose from {RULES})")
        if self.tau < 1:
            raise ValueError(f"tau must be at least 1, got {self.tau}")

    @property
    def draws(self) -> int:
        """Keyed draws per position the rule consumes (draw 0 is also the bonus sample)."""
        return self.tau if self.name == "tolerance" else 1


def accepted(rule: AcceptRule, tokens: torch.Tensor, logprobs: torch.Tensor,
             uniforms: torch.Tensor) -> torch.Tensor:
    """tokens (N,) drafts; logprobs (N, V) of the base at each draft's position; uniforms
    (N, T) the position's keyed draws -> (N,) bool, accepted or not."""
    if rule.name == "tolerance":
        samples = keyed_samples(logprobs, uniforms[:, :rule.tau])  # (N, T)
        return (samples == tokens[:, None]).any(-1)
    probs = logprobs.exp()
    entropy = -(probs * logprobs.clamp_min(-1e4)).sum(-1)  # (N,)
    threshold = torch.minimum(torch.full_like(entropy, rule.epsilon),
                              rule.delta * torch.exp(-entropy))
    return probs.gather(-1, tokens[:, None])[:, 0] > threshold


def accepted_by_parent(rule: AcceptRule, tokens: torch.Tensor, parent_of: torch.Tensor,
                       logprobs: torch.Tensor, uniforms: torch.Tensor, eos: int | None = None,
                       samples: torch.Tensor | None = None) -> torch.Tensor:
    """``accepted`` with each distribution read once: tokens (N,) drafts; parent_of (N,) the
    index of each draft's parent among the P parents; logprobs (P, V) of the base at each
    parent's children's position and uniforms (P, T) that position's keyed draws -> (N,) bool.
    Children of one parent sit at one position and share its distribution and draws, so the
    tolerance rule samples tau tokens per parent (not per child) and looks each child up among
    its parent's samples: the same decisions as ``accepted`` on the expanded rows.

    With ``eos``, under the tolerance rule the end of speech follows the base model's own
    rule whatever tau is: a position ends iff its draw 0 (AR's sample there) is eos. A
    drafted eos is accepted only then, and any other draft is refused then, so an utterance
    ends where AR decoding with the same keys would end it, not about tau times as often.
    tau = 1 decides as before.

    ``samples`` (P, T): the tolerance rule's draws, when the caller has sampled them already
    (``keyed_samples(logprobs, uniforms[:, :tau])``; VADUSA's pass also reads its bonus token
    there)."""
    if rule.name != "tolerance":
        return accepted(rule, tokens, logprobs[parent_of], uniforms[parent_of])
    if samples is None:
        samples = keyed_samples(logprobs, uniforms[:, :rule.tau])  # (P, T)
    if eos is not None:
        # the samples as the end-of-speech rule reads them: a position whose draw 0 is eos
        # reads eos in every draw (only a drafted eos is accepted there), any other reads -1
        # for an eos draw (a drafted eos is never accepted there)
        samples = torch.where(samples[:, :1] == eos, eos,
                              samples.masked_fill(samples == eos, -1))  # (P, T)
    return (samples[parent_of] == tokens[:, None]).any(-1)  # (N,)


def sample(logprobs: torch.Tensor, uniforms: torch.Tensor) -> int:
    """The base model's own token at one position from its (T,) uniforms: draw 0 (as AR
    decoding)."""
    return int(keyed_samples(logprobs, uniforms[:1])[0])
