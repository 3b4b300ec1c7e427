"""What one forward pass of a trained model costs, by tokens per pass and precision.

An AR step is a pass over 1 token; a VADUSA verification pass is a pass over the tree's
nodes. Their ratio, with the mean accepted length, bounds the speedup (docs/model.md,
"Decoding precision"). Each (precision, tokens) cell is the median over interleaved rounds, so a slow
spell of a shared machine lands on every cell alike.

    python scripts/forward_cost.py --checkpoint results/default/models/whisper/frozen/heads.pt
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vadusa.devices import PRECISIONS, resolve_device
from vadusa.model.loading import load_tts


def forward_ms(model: torch.nn.Module, tokens: int, cached: int, reps: int,
               device: torch.device) -> float:
    """Milliseconds per ``hidden`` call over ``tokens`` new positions after ``cached`` ones."""
    slots = torch.arange(cached + tokens, device=device)
    ids = torch.randint(0, model.cfg.output_size, (1, tokens), device=device)
    pos = (cached + torch.arange(tokens, device=device))[None]  # (1, T)
    mask = torch.ones(1, tokens, cached + tokens, dtype=torch.bool, device=device)
    model.setup_cache(batch=1, max_seq=cached + tokens)
    with torch.inference_mode():
        for _ in range(5):  # warm-up
            model.hidden(ids, pos, mask, cache_slots=slots[cached:])
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(reps):
            model.hidden(ids, pos, mask, cache_slots=slots[cached:])
        if device.type == "cuda":
            torch.cuda.synchronize()
    model.clear_cache()
    return (time.perf_counter() - start) / reps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="base.pt or heads.pt")
    parser.add_argument("--tokens", type=int, nargs="+", default=[1, 9, 17],
                        help="tokens per pass (default: 1 9 17)")
    parser.add_argument("--cached", type=int, default=250,
                        help="positions already in the KV cache (default: 250)")
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS),
                        choices=list(PRECISIONS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    device = resolve_device(args.device)
    models = {name: load_tts(args.checkpoint, device, dtype=PRECISIONS[name]).model
              for name in args.precisions}
    times: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        for name, model in models.items():
            for tokens in args.tokens:
                times.setdefault((name, tokens), []).append(
                    forward_ms(model, tokens, args.cached, args.reps, device))
    print(f"ms per forward, {args.cached} positions cached, median of {args.rounds} rounds of "
          f"{args.reps}, {torch.get_num_threads()} threads, {device}")
    print(f"{'tokens per forward':<20}" + "".join(f"{t:>9}" for t in args.tokens))
    for name in models:
        print(f"{name:<20}" + "".join(f"{statistics.median(times[(name, t)]):>9.2f}"
                                      for t in args.tokens))


if __name__ == "__main__":
    main()
