"""How much of MEDUSA heads' own projections the draft needs: each trained head's difference
from the base head (``proj_k - W_base``) cut to its top r singular directions, then the heads'
dev top-1 accuracy again (the measurement behind ``heads.rank``; docs/speed.md):

    python scripts/head_rank.py --experiment results/default \\
        --heads results/default/models/whisper/frozen/heads.pt --ranks 128 64 32 0

prints one line per rank (``full``: the heads as trained), heads 1..K.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from vadusa.config import load_config
from vadusa.model.draft_heads import DraftHeads
from vadusa.model.loading import load_tts
from vadusa.training.heads import evaluate_heads
from vadusa.training.sequences import TTSData


def truncated(heads: DraftHeads, base_weight: torch.Tensor, rank: int | None) -> DraftHeads:
    """A copy of ``heads`` whose projections are the base head plus their difference from it
    cut to ``rank`` singular directions (None: unchanged)."""
    out = DraftHeads(len(heads), base_weight.shape[1], base_weight.shape[0],
                     torch.nn.Linear(base_weight.shape[1], base_weight.shape[0], bias=False))
    out.load_state_dict(heads.state_dict())
    if rank is None:
        return out
    with torch.no_grad():
        for head in out.heads:
            U, S, Vh = torch.linalg.svd(head.proj.weight - base_weight, full_matrices=False)
            head.proj.weight.copy_(base_weight + (U[:, :rank] * S[:rank]) @ Vh[:rank])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", type=Path, required=True,
                        help="results/<experiment> (its config.yaml, corpus, tokens, durations)")
    parser.add_argument("--heads", type=Path, required=True, help="MEDUSA heads (heads.pt)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[128, 64, 32, 16, 0])
    args = parser.parse_args()
    root = args.experiment
    cfg = load_config([root / "config.yaml"])
    device = torch.device("cpu")
    bundle = load_tts(args.heads, device)
    if not isinstance(bundle.heads, DraftHeads) or bundle.heads.kind != "medusa":
        raise SystemExit(f"{args.heads} holds no MEDUSA heads (heads.kind medusa)")
    family = bundle.family
    durations = root / "durations" / family if "durations" in bundle.meta else None
    data = TTSData(root / "corpus", root / "tokens" / family, "dev", bundle.symbols,
                   bundle.speakers, cfg.model.prompt_max_seconds, durations)
    prompt = bool(bundle.meta.get("prompt"))
    speaker_embedding = bool(bundle.meta.get("speaker_embedding", True))
    base_weight = bundle.model.head.weight.detach()
    for rank in [None, *args.ranks]:
        heads = truncated(bundle.heads, base_weight, rank)
        metrics, _ = evaluate_heads(bundle.model, heads, data, bundle.vocab, cfg, device,
                                    prompt, speaker_embedding)
        top1 = [metrics[f"dev/head{k}_top1"] for k in range(1, len(heads) + 1)]
        print(f"{'full' if rank is None else f'rank {rank}':>9}: "
              + " / ".join(f"{a:.3f}" for a in top1), flush=True)


if __name__ == "__main__":
    main()
