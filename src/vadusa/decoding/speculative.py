"""Draft-model speculative decoding (Leviathan et al. 2023; Chen et al. 2023): a small draft
transformer proposes gamma tokens, the target verifies them all in one forward pass, and
speculative sampling keeps every emitted token distributed exactly as the target's own.

The prefill is the target's alone and emits its first token as AR decoding would. Then one
step, with n tokens emitted so far (the last of them not yet fed to the target):

1. propose: the draft catches up on the emitted tokens it has not seen yet in one causal pass
   (the whole prefix the first time, then one or two tokens), then samples g <= gamma tokens
   d_0 .. d_{g-1} at output positions n .. n + g - 1, one forward each through its own KV
   cache; q_i is its distribution at position n + i. It stops early after proposing eos and
   never proposes past the length limit.
2. verify: one target forward over [out[n-1], d_0, .., d_{g-1}] at sequence positions
   L + n - 1 .. L + n + g - 1, causal among themselves, over the target's KV cache: its g + 1
   rows are p_0 .. p_g, the target's distributions at output positions n .. n + g.
3. speculative sampling: for i = 0, 1, ..: accept d_i with probability min(1, p_i(d_i) /
   q_i(d_i)); at the first rejection emit a sample of normalize(max(0, p_i - q_i)) instead and
   stop; if all g are accepted, emit a bonus sample of p_g. Whatever the draft, each emitted
   token is then distributed as the target's (Leviathan et al., appendix A.1); the draft only
   decides how many come per target forward.
4. roll back: both models write the keys and values of sequence entry e at cache slot e, and a
   query at position e attends to slots <= e only. Each pass writes a contiguous run of slots
   starting at the first entry its model has not seen correctly, so the entries of rejected
   drafts are overwritten before any query could see them; nothing needs erasing.

Keyed randomness (decoding/sampling.py), per output position t of an utterance:

- the draft's proposal at t and the target's own samples at t (the prefill's first token, a
  bonus token) use draw 0 of t, the uniform AR decoding uses at t. So the draft samples as
  AR decoding with the draft model would, and with draft = target every proposal is the
  target's AR token, is accepted (p = q), and the output is AR decoding's, token for token.
- the acceptance uniform and the residual sample at t are draws 2^40 and 2^40 + 1 of t's key
  (``SPECULATIVE_DRAW``); AR and VADUSA decoding use draws 0..tau-1, so the two never share
  a number.

A position's numbers decide its own token only: the tokens before t are functions of the
numbers of positions before t, so at t every draw is fresh, also when a proposal made at t
in an earlier step was rolled back. At temperature 0, p and q are one-hot: a draft equal to
the target's argmax is accepted (1 >= u), any other rejected (p(d) = 0) and replaced by the
residual's only token, the target's argmax: greedy output is AR's, whatever the draft.

Shapes: L prefix length, S cache slots, T tokens in one pass, V output vocabulary.
"""

from __future__ import annotations

import copy
import time

import torch

from vadusa.decoding.ar import DecodeResult
from vadusa.decoding.sampling import (
    SamplingConfig,
    keyed_samples,
    keyed_uniforms,
    processed_logprobs,
    speech_only,
)
from vadusa.model.transformer import Transformer

#: The draw index of a position's acceptance uniform (the residual sample's is the next one):
#: far past the draws 0..tau-1 of AR and VADUSA decoding.
SPECULATIVE_DRAW = 1 << 40


def speculative_draws(seed: int, utterance: int, position: int) -> tuple[float, torch.Tensor]:
    """The acceptance uniform in [0, 1) and the (1,) uniform of the residual sample at one
    output position of one utterance (``sampling.keyed_uniforms``)."""
    u = keyed_uniforms(seed, utterance, [position], 2, first_draw=SPECULATIVE_DRAW)[0]  # (2,)
    return float(u[0]), u[1:]


def accepts(p: torch.Tensor, q: torch.Tensor, token: int, u: float) -> bool:
    """Accept the draft's ``token`` with probability min(1, p(token) / q(token)), for p and q
    (V,) probabilities of target and draft: u < p / q, written without the division (the
    draft sampled ``token``, so q(token) > 0)."""
    return u * float(q[token]) < float(p[token])


def residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(V,) log-probabilities of normalize(max(0, p - q)), what a rejected position samples.
    Rejection needs p(token) < q(token), so some other token has p > q; should rounding leave
    no mass at all (p = q to the last bit), the target's own p is the right distribution."""
    mass = (p - q).clamp_min(0)  # (V,)
    if float(mass.sum()) <= 0:
        return p.log()
    return (mass / mass.sum()).log()


def causal_over_cache(first: int, count: int, device: torch.device) -> torch.Tensor:
    """(1, T, first + T) mask for T = ``count`` new entries at positions first.. over a cache
    whose slots equal positions: each sees the slots up to its own."""
    positions = torch.arange(first, first + count, device=device)  # (T,)
    slots = torch.arange(first + count, device=device)  # (first + T,)
    return (slots[None, :] <= positions[:, None])[None]


class DraftModelDecoder:
    """Speculative decoding of one utterance at a time with a separate, smaller draft model
    of the same vocabulary."""

    def __init__(self, target: Transformer, draft: Transformer, sampling: SamplingConfig, *,
                 speech_offset: int, eos: int, gamma: int) -> None:
        if gamma < 1:
            raise ValueError(f"the draft must propose at least one token per step, got "
                             f"gamma={gamma}")
        if draft.cfg.output_size != target.cfg.output_size:
            raise ValueError(f"the draft predicts {draft.cfg.output_size} output ids, the "
                             f"target {target.cfg.output_size}: they need one vocabulary")
        if draft is target:  # each keeps its own KV cache, so one module cannot be both
            draft = copy.deepcopy(target)
        self.target, self.draft, self.sampling = target, draft, sampling
        self.speech_offset, self.eos, self.gamma = speech_offset, eos, gamma

    def _logprobs(self, logits: torch.Tensor) -> torch.Tensor:
        """(..., V) logits of either model -> (..., V) float64 log-probabilities on the CPU,
        processed as the sampling config says (speech tokens and eos only)."""
        return processed_logprobs(speech_only(logits, self.eos), self.sampling).cpu()

    @torch.inference_mode()
    def decode(self, prefix: torch.Tensor, *, max_new: int, seed: int, utterance: int,
               frames: torch.Tensor | None = None) -> DecodeResult:
        """prefix (L,) input ids -> up to ``max_new`` output ids, sampled as the target would
        sample them; ``forwards`` counts the target's passes (the draft's are extra, cheap).
        ``frames`` (S_f, F): the utterance's frame features, for models that read them (the
        draft is trained with the target's config, so both read the same table)."""
        target, draft = self.target, self.draft
        device = target.head.weight.device
        table = None if frames is None else frames[None].to(device)  # (1, S_f, F)
        start = time.perf_counter()
        L = len(prefix)
        S = L + max_new  # every sequence entry a model may be fed: prefix + output
        target.setup_cache(batch=1, max_seq=S)
        draft.setup_cache(batch=1, max_seq=S)
        sequence = torch.zeros(S, dtype=torch.long, device=device)  # prefix, then output
        sequence[:L] = prefix.to(device)
        drawn = keyed_uniforms(seed, utterance, range(max_new + 1), 1)  # (max_new + 1, 1)

        # prefill: the target's own first token, draw 0 of position 0 (as AR decoding)
        logits = target(sequence[None, :L], torch.arange(L, device=device)[None],
                        causal_over_cache(0, L, device), frames=table)[0, -1]  # (V,)
        first = int(keyed_samples(self._logprobs(logits), drawn[0])[0])
        stopped = first == self.eos
        out: list[int] = []
        if not stopped and max_new > 0:
            out.append(first)
            sequence[L] = self.speech_offset + first
        forwards, accept_lengths = 1, [len(out)]
        seen = 0  # sequence entries the draft's cache holds correctly

        while not stopped and len(out) < max_new:
            n = len(out)

            # propose: catch up on entries [seen, L + n), then sample g drafts one by one
            logits = draft(sequence[None, seen:L + n],
                           torch.arange(seen, L + n, device=device)[None],
                           causal_over_cache(seen, L + n - seen, device),
                           frames=table)[0, -1]  # (V,)
            drafts: list[int] = []
            q: list[torch.Tensor] = []  # the draft's (V,) probabilities at each proposal
            for i in range(min(self.gamma, max_new - n)):
                if drafts:  # feed the previous proposal, at entry L + n + i - 1
                    e = L + n + i - 1
                    logits = draft(sequence[None, e:e + 1],
                                   torch.tensor([[e]], device=device),
                                   causal_over_cache(e, 1, device), frames=table)[0, -1]
                logq = self._logprobs(logits)  # (V,)
                token = int(keyed_samples(logq, drawn[n + i])[0])
                drafts.append(token)
                q.append(logq.exp())
                sequence[L + n + i] = self.speech_offset + token
                if token == self.eos:  # nothing follows eos worth proposing
                    break
            seen = L + n + len(drafts) - 1  # the last proposal was never fed

            # verify: the last emitted token and every draft in one causal target pass
            c, T = L + n - 1, 1 + len(drafts)  # entry of the last emitted token; pass length
            logits = target(sequence[None, c:c + T], torch.arange(c, c + T, device=device)[None],
                            causal_over_cache(c, T, device), frames=table)[0]  # (T, V)
            logp = self._logprobs(logits)  # (T, V): row i is the target at position n + i
            p = logp.exp()
            forwards += 1

            # speculative sampling: the accepted drafts, then one token of the target's
            emitted: list[int] = []
            for i, token in enumerate(drafts):
                u, noise = speculative_draws(seed, utterance, n + i)
                if not accepts(p[i], q[i], token, u):  # the residual's token instead
                    emitted.append(int(keyed_samples(residual(p[i], q[i]), noise)[0]))
                    accepted = i
                    break
                emitted.append(token)
            else:  # all accepted: the bonus token at n + g, if there is room for one
                accepted = g = len(drafts)
                if drafts[-1] != self.eos and n + g < max_new:
                    emitted.append(int(keyed_samples(
                        logp[g], drawn[n + g])[0]))
            if self.eos in emitted:
                emitted = emitted[:emitted.index(self.eos)]
                stopped = True

            # roll back: the draft's entries past the first wrong proposal are stale
            seen = min(seen, L + n + accepted)
            for j, token in enumerate(emitted):
                sequence[L + n + j] = self.speech_offset + token
            out += emitted
            accept_lengths.append(len(emitted))
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        target.clear_cache()
        draft.clear_cache()
        return DecodeResult(out, bool(stopped), forwards, seconds, accept_lengths)
