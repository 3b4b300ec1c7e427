"""Where the time of a VADUSA pass goes: the model's forward against the decoder's own work.

Wraps the decoder's calls with timers and decodes some test utterances at one setting:

    python scripts/profile_pass.py --config results/default/config.yaml \\
        --checkpoint results/default/models/whisper/frozen/heads.pt --tree 8 --threads 1

prints milliseconds per pass for the forward (``hidden``), the base head over the tree's rows,
the draft heads, the log-probabilities, acceptance, the longest accepted path, cache
compaction, the bonus sample and the rest of the loop ("other"). Timers add a few
microseconds per call; compare settings with ``vadusa bench``, not with this.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import torch

import vadusa.decoding.run as run
import vadusa.decoding.vadusa as vadusa
from vadusa.config import load_config
from vadusa.eval.evaluate import split_requests
from vadusa.model.loading import load_tts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--checkpoint", required=True, help="heads.pt")
    parser.add_argument("--corpus", help="default: the experiment's corpus")
    parser.add_argument("--tree", default="8")
    parser.add_argument("--tau", type=int, default=3)
    parser.add_argument("--utterances", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config([Path(args.config)])
    corpus = Path(args.corpus) if args.corpus else cfg.experiment_dir / "corpus"
    bundle = load_tts(args.checkpoint, dtype=torch.float32)
    requests = split_requests(corpus, "test", args.utterances)[0]
    decoding = replace(cfg.decoding, method="vadusa", tau=args.tau, heads=0, tree=args.tree,
                       batch_size=1)
    decoder = run.vadusa_decoder(bundle, decoding)
    list(run.decode_requests(bundle, requests[:1], decoding, decoder))  # warm-up

    seconds: dict[str, float] = defaultdict(float)

    def timed(owner: object, name: str, label: str) -> None:
        inner = getattr(owner, name)

        def wrapper(*a, **k):  # noqa: ANN002, ANN003, ANN202
            start = time.perf_counter()
            out = inner(*a, **k)
            seconds[label] += time.perf_counter() - start
            return out

        setattr(owner, name, wrapper)

    timed(bundle.model, "hidden", "forward")
    timed(bundle.model.head, "forward", "base head")
    timed(decoder.drafter, "draft", "draft heads")
    timed(vadusa, "processed_logprobs", "log-probabilities")
    timed(vadusa, "accepted_by_parent", "acceptance")
    timed(vadusa, "longest_accepted", "longest path")
    timed(vadusa, "sample", "bonus sample")
    timed(bundle.model, "compact_cache", "compaction")
    timed(run, "synthesis_prefix", "prefix")
    start = time.perf_counter()
    records = list(run.decode_requests(bundle, requests, decoding, decoder))
    wall = time.perf_counter() - start
    passes = sum(r["forwards"] for r in records)
    tokens = sum(len(r["tokens"]) for r in records)
    print(f"{args.checkpoint}, tree {args.tree}, tau {args.tau}, {args.threads} thread(s): "
          f"{passes} passes, {tokens / passes:.2f} tokens per pass, "
          f"{1000 * wall / passes:.3f} ms per pass")
    for label, s in seconds.items():
        print(f"  {label:<18} {1000 * s / passes:.3f} ms")
    print(f"  {'other':<18} {1000 * (wall - sum(seconds.values())) / passes:.3f} ms")


if __name__ == "__main__":
    main()
