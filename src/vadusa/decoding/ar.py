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
    SpeechHead,
    keyed_samples,
    keyed_uniforms,
    processed_logprobs,
)
from vadusa.decoding.static import pad_frames, static_slots, step_function
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
              frames: torch.Tensor | None = None, compile: str = "") -> DecodeResult:
    """Decode one utterance: prefix (L,) input ids -> up to ``max_new`` output ids; ``frames``
    (S_f, F), the utterance's frame features if the model reads them; ``compile``: fixed
    shapes and a compiled step (``decoding/static.py``)."""
    return ar_decode_batch(model, [prefix], speech_offset=speech_offset, eos=eos,
                           max_new=[max_new], sampling=sampling, seed=seed,
                           utterances=[utterance],
                           frames=None if frames is None else [frames], compile=compile)[0]


@torch.inference_mode()
def ar_decode_batch(model: Transformer, prefixes: list[torch.Tensor], *, speech_offset: int,
                    eos: int, max_new: list[int], sampling: SamplingConfig, seed: int,
                    utterances: list[int], frames: list[torch.Tensor] | None = None,
                    compile: str = "") -> list[DecodeResult]:
    device = model.head.weight.device
    table = stack_frames(frames, device)  # (B, S_f, F) or None
    step = step_function(model, compile)
    start = time.perf_counter()
    B, lengths = len(prefixes), [len(p) for p in prefixes]
    P, steps = max(lengths), max(max_new)
    S = static_slots(model, P + steps) if compile else P + steps
    if compile:
        table = pad_frames(table, S)
    model.setup_cache(batch=B, max_seq=S, keep=bool(compile))
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
    hidden = model.hidden(tokens, pos, mask, frames=table)  # (B, P, C)
    # the base head with bos and pad masked (-inf) in its product: speech tokens and eos only
    speech_head = SpeechHead(model.head, eos, sampling)
    last = speech_head(hidden[torch.arange(B), length - 1])  # (B, V), divided by temperature
    forwards = 1
    # draw 0 of every position each row may reach, made at once (rows padded to ``steps``)
    drawn = torch.zeros(steps, B, 1, dtype=torch.float64)  # step-major: a step's are contiguous
    for b in range(B):
        drawn[:max_new[b], b] = keyed_uniforms(seed, utterances[b], range(max_new[b]), 1)
    drawn = drawn.to(device)  # (steps, B, 1)
    # every step's mask, updated in place: 0 over a row's own prefix and the steps' slots
    # written so far, -inf elsewhere (a step opens its own slot)
    masks = torch.full((B, 1, S), float("-inf"), dtype=model.head.weight.dtype, device=device)
    masks.masked_fill_((slots < length[:, None])[:, None], 0.0)  # (B, 1, S)
    # row b's position at step t (S columns, not ``steps``: a compiled step sees the same
    # strides for every utterance)
    positions = length[:, None] + slots  # (B, S)

    out: list[list[int]] = [[] for _ in range(B)]
    done = [False] * B
    stopped = [False] * B
    for t in range(steps):
        logprobs = processed_logprobs(last, sampling, scaled=True)  # (B, V)
        sampled = keyed_samples(logprobs, drawn[t])[:, 0]  # (B,)
        for b, token in enumerate(sampled.tolist()):  # the one host sync of a step
            if done[b]:
                continue
            if token == eos:
                done[b] = stopped[b] = True
                continue
            out[b].append(token)
            if len(out[b]) >= max_new[b]:
                done[b] = True
        if all(done):
            break
        # one new token per row at the shared slot P + t, at row-wise position L_b + t (a
        # finished row's token is never read)
        slot = P + t
        masks[:, 0, slot] = 0.0
        # a fixed shape, or the slots written so far
        mask = masks if compile else masks[:, :, :slot + 1]  # (B, 1, S) or (B, 1, slot + 1)
        hidden = step(speech_offset + sampled[:, None], positions[:, t:t + 1], mask,
                      cache_slots=slots[slot:slot + 1] if compile else slice(slot, slot + 1),
                      frames=table)  # (B, 1, C)
        last = speech_head(hidden[:, 0])  # (B, V)
        forwards += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if not compile:  # a compiled step keeps its cache (static.py)
        model.clear_cache()
    return [DecodeResult(out[b], stopped[b], forwards, seconds, [1] * len(out[b]))
            for b in range(B)]
