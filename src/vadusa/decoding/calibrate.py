"""``vadusa calibrate``: how often is each draft head's rank-r candidate accepted? Then trees.

For each utterance of a held-out split, AR decoding (with the sampling in use) gives the
sequence the base would emit; one forward pass over prefix + sequence gives, at every
position, the base distribution and every head's candidates. Head k's rank-r candidate made
at output j guesses output j + k; it counts as accepted if the acceptance rule in use (the
tolerance rule with the configured tau and the same keyed draws the decoder will use, or
typical acceptance) accepts it against the base distribution at output j + k. So

    acc[k][r] = P(head k's rank-r candidate is accepted | the path before it was accepted),

measured on the path AR decoding takes. ``greedy_tree`` (decoding/tree.py) turns the table
into a tree of a requested size; each tree is saved with its expected accepted length.

Shapes: L prefix, T generated tokens, K heads, R ranks, V output vocabulary, D draws.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from vadusa.atomic import write_text_atomic
from vadusa.config import DecodingConfig
from vadusa.decoding.acceptance import AcceptRule, accepted
from vadusa.decoding.ar import ar_decode
from vadusa.decoding.run import Request, request_prefix, sampling_of
from vadusa.decoding.sampling import keyed_uniforms, processed_logprobs, speech_only
from vadusa.decoding.timing import fastest_tree
from vadusa.decoding.tree import expected_length, greedy_tree, save_tree
from vadusa.model.loading import SynthesisInputError, TTSBundle
from vadusa.model.transformer import causal_mask

RANKS = 10


@torch.inference_mode()
def acceptance_table(bundle: TTSBundle, requests: list[Request], decoding: DecodingConfig,
                     ranks: int = RANKS) -> tuple[list[list[float]], int]:
    """-> (acc[k][r] for the heads in use, positions scored per head)."""
    if bundle.heads is None:
        raise SynthesisInputError("calibration needs draft heads: pass a heads.pt")
    n_heads = decoding.heads or len(bundle.heads)
    rule = AcceptRule(decoding.acceptance, decoding.tau, decoding.typical_epsilon,
                      decoding.typical_delta)
    sampling = sampling_of(decoding)
    model, eos = bundle.model, bundle.vocab.eos
    device = model.head.weight.device
    hits = torch.zeros(n_heads, ranks)
    counts = torch.zeros(n_heads)
    for request in tqdm(requests, desc="calibrate", unit="utt"):
        prefix = request_prefix(bundle, request, decoding)
        out = ar_decode(model, prefix.ids.to(device), speech_offset=bundle.vocab.speech_offset,
                        eos=eos, max_new=prefix.budget, sampling=sampling, seed=decoding.seed,
                        utterance=request.index, frames=prefix.frames).tokens
        T, L = len(out), len(prefix.ids)
        if T < 2:
            continue
        seq = torch.cat([prefix.ids, bundle.vocab.speech_offset + torch.tensor(out)]).to(device)
        n = len(seq)
        frames = None if prefix.frames is None else prefix.frames[None].to(device)
        hidden = model.hidden(seq[None], torch.arange(n, device=device)[None],
                              causal_mask(n, device)[None],
                              frames=frames)[0, L - 1:L - 1 + T]  # (T, C)
        # row j of these produced output j
        logprobs = processed_logprobs(speech_only(model.head(hidden), eos), sampling).cpu()
        # hydra heads read AR's own tokens on the way (teacher forcing on the output)
        heads = bundle.heads(hidden[None], n_heads,
                             tokens=torch.tensor(out, device=device)[None])[:, 0]  # (K, T, V)
        top = speech_only(heads, eos).topk(ranks, dim=-1).indices.cpu()  # (K, T, R)
        drawn = keyed_uniforms(decoding.seed, request.index, range(T), rule.draws)  # (T, D)
        for k in range(1, n_heads + 1):
            if T - k <= 0:
                break
            # candidates made at outputs 0..T-k-1 guess outputs k..T-1
            for r in range(ranks):
                ok = accepted(rule, top[k - 1, :T - k, r], logprobs[k:], drawn[k:])
                hits[k - 1, r] += float(ok.sum())
            counts[k - 1] += T - k
    table = hits / counts.clamp_min(1)[:, None]
    return [[round(float(x), 6) for x in row] for row in table], int(counts.min())


def calibrate(bundle: TTSBundle, requests: list[Request], decoding: DecodingConfig,
              node_counts: list[int], out_dir: Path) -> tuple[list[list[float]],
                                                              list[tuple[Path, float]]]:
    """Measure the table, write ``acceptance.json`` and ``tree-<N>.json`` per node count, and
    ``tree-fastest.json``: the one of them that promises the most tokens per second on this
    machine in the bundle's precision (``timing.fastest_tree``; ``machine`` in both files)."""
    table, positions = acceptance_table(bundle, requests, decoding)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {
        "family": bundle.family, "acceptance": decoding.acceptance, "tau": decoding.tau,
        "heads": decoding.heads or len(bundle.heads or []),
        "sampling": {"temperature": decoding.temperature, "top_k": decoding.top_k,
                     "top_p": decoding.top_p, "seed": decoding.seed},
        "utterances": len(requests), "positions_per_head": positions}
    trees = []
    for nodes in node_counts:
        paths = greedy_tree(table, nodes)
        expected = expected_length(paths, table)
        trees.append((save_tree(out_dir / f"tree-{nodes}.json", paths,
                                expected_length=expected, **info), expected))
    # which of them this machine decodes fastest with (expected tokens per forward time)
    paths, scores = fastest_tree(bundle, table, tuple(node_counts))
    machine = {"precision": str(bundle.dtype).removeprefix("torch."), "fastest": len(paths),
               "trees": {str(n): score for n, score in scores.items()}}
    save_tree(out_dir / "tree-fastest.json", paths,
              expected_length=expected_length(paths, table), **info, machine=machine)
    write_text_atomic(out_dir / "acceptance.json",
                      json.dumps(info | {"table": table, "machine": machine}, indent=1) + "\n")
    return table, trees


def format_table(table: list[list[float]], ranks: int = 5) -> str:
    head = "head  " + " ".join(f"{'rank ' + str(r):>7}" for r in range(ranks)) + "   top-5"
    lines = [head]
    for k, row in enumerate(table, start=1):
        lines.append(f"{k:>4}  " + " ".join(f"{x:>7.3f}" for x in row[:ranks])
                     + f"   {sum(row[:5]):.3f}")
    return "\n".join(lines)
