"""KV-cached auto-regressive decoding: one prefill, then one token per forward pass.

This is the baseline every speedup is measured against, so it is the best honest version of
itself: static KV cache, no recomputation, batch size 1 or batched, the same keyed sampling
as the speculative decoder (draw 0 at every position).

Batched layout: row b's prefix (length L_b) sits in cache slots [0, L_b); generated tokens of
every row go to the shared slots P, P+1, ... (P = the longest prefix), with row-wise rotary
positions L_b, L_b + 1, ...; masks hide the padding slots. So rows never see each other's
padding and each row decodes exactly as it would alone.

A model with per-position frame features (its text alignment, model/tts.py) gets each row's
table with every call; a position reads its own row, so batching changes nothing there either.

Shapes: B batch, L prefix length, S cache slots, V output vocabulary, F frame features.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from vadusa.decoding.sampling import (
    SamplingConfig,
    keyed_samples,
    keyed_uniforms,
    processed_logprobs,
    speech_only,
)
from vadusa.model.transformer import Transformer


@dataclass
class DecodeResult:
    tokens: list[int]  # generated output ids, without eos
    stopped: bool  # True if eos was sampled, False if the length limit hit first
    forwards: int  # forward passes of the model (prefill included)
    seconds: float  # wall time of decoding (prefill included)
    accept_lengths: list[int] = field(default_factory=list)  # tokens per forward (AR: all 1)


def stack_frames(tables: list[torch.Tensor] | None, device: torch.device
                 ) -> torch.Tensor | None:
    """Per-row (S_b, F) frame tables -> one (B, max S_b, F) table; a shorter one is extended
    with its last row, which is what positions past a table read anyway."""
    if tables is None:
        return None
    rows = max(len(t) for t in tables)
    return torch.stack([torch.cat([t, t[-1:].expand(rows - len(t), -1)]) for t in tables]
                       ).to(device)


@torch.inference_mode()
def ar_decode(model: Transformer, prefix: torch.Tensor, *, speech_offset: int, eos: int,
              max_new: int, sampling: SamplingConfig, seed: int, utterance: int,
              frames: torch.Tensor | None = None) -> DecodeResult:
    """Decode one utterance: prefix (L,) input ids -> up to ``max_new`` output ids; ``frames``
    (S_f, F), the utterance's frame features if the model reads them."""
    return ar_decode_batch(model, [prefix], speech_offset=speech_offset, eos=eos,
                           max_new=[max_new], sampling=sampling, seed=seed,
                           utterances=[utterance],
                           frames=None if frames is None else [frames])[0]


@torch.inference_mode()
def ar_decode_batch(model: Transformer, prefixes: list[torch.Tensor], *, speech_offset: int,
                    eos: int, max_new: list[int], sampling: SamplingConfig, seed: int,
                    utterances: list[int], frames: list[torch.Tensor] | None = None
                    ) -> list[DecodeResult]:
    device = model.head.weight.device
    table = stack_frames(frames, device)  # (B, S_f, F) or None
    start = time.perf_counter()
    B, lengths = len(prefixes), [len(p) for p in prefixes]
    P, steps = max(lengths), max(max_new)
    S = P + steps
    model.setup_cache(batch=B, max_seq=S)
    slots = torch.arange(S, device=device)

    # prefill: rows right-padded to P; row b sees its own slots [0, L_b), causally
    tokens = torch.zeros(B, P, dtype=torch.long, device=device)
    for b, prefix in enumerate(prefixes):
        tokens[b, :lengths[b]] = prefix
    pos = torch.arange(P, device=device).expand(B, P)
    length = torch.tensor(lengths, device=device)
    seen = slots[:P]  # attention spans the slots written so far only
    mask = (seen[None, None, :] <= pos[:, :, None]) & (seen[None, None, :] < length[:, None,
                                                                                      None])
    logits = model(tokens, pos, mask, frames=table)  # (B, P, V)
    last = logits[torch.arange(B), length - 1]  # (B, V)
    forwards = 1
    # draw 0 of every position each row may reach, made at once: (max_new_b, 1) per row
    drawn = [keyed_uniforms(seed, utterances[b], range(max_new[b]), 1) for b in range(B)]

    out: list[list[int]] = [[] for _ in range(B)]
    done = [False] * B
    stopped = [False] * B
    for t in range(steps):
        step_tokens = torch.zeros(B, dtype=torch.long, device=device)
        for b in range(B):
            if done[b]:
                continue
            logprobs = processed_logprobs(speech_only(last[b], eos), sampling)
            token = int(keyed_samples(logprobs.cpu(), drawn[b][t])[0])
            if token == eos:
                done[b] = stopped[b] = True
                continue
            out[b].append(token)
            step_tokens[b] = token
            if len(out[b]) >= max_new[b]:
                done[b] = True
        if all(done):
            break
        # one new token per row at the shared slot P + t, at row-wise position L_b + t
        slot = P + t
        pos = (length + t)[:, None]  # (B, 1)
        seen = slots[:slot + 1]
        mask = ((seen < length[:, None]) | (seen >= P))[:, None]  # (B, 1, slot + 1)
        last = model(speech_offset + step_tokens[:, None], pos, mask,
                     cache_slots=slice(slot, slot + 1),
                     frames=table)[:, 0]  # (B, V)
        forwards += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    model.clear_cache()
    return [DecodeResult(out[b], stopped[b], forwards, seconds, [1] * len(out[b]))
            for b in range(B)]
