"""Where the time of a VADUSA pass goes: the model's forward against the decoder's own work,
next to the same split for a KV-cached AR step.

Wraps the decoders' calls with timers and decodes some test utterances at one setting:

    python scripts/profile_pass.py --config results/default/config.yaml \\
        --checkpoint results/default/models/whisper/frozen/heads.pt --tree 8 --threads 1

prints milliseconds per AR step and per VADUSA pass (each utterance's prefill spread over its
steps) for the forward, the base head, the draft heads, the log-probabilities, acceptance,
the longest accepted path, keyed sampling (the root and bonus tokens), cache compaction and the
rest of the loop ("other"), and the decoder's own work per pass above AR's per step (every
line but the forward and the base head). Timers add a few microseconds per call; compare
settings with ``vadusa bench``, not with this.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import torch

import vadusa.decoding.ar as ar_module
import vadusa.decoding.run as run
import vadusa.decoding.sampling as sampling
import vadusa.decoding.vadusa as vadusa
from vadusa.config import load_config
from vadusa.eval.evaluate import split_requests
from vadusa.model.loading import load_tts
from vadusa.plan import Plan


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
    corpus = Path(args.corpus or Plan(cfg).corpus())
    bundle = load_tts(args.checkpoint, dtype=torch.float32)
    requests = split_requests(corpus, "test", args.utterances)[0]
    decoding = replace(cfg.decoding, method="vadusa", tau=args.tau, heads=0, tree=args.tree,
                       batch_size=1)
    decoder = run.vadusa_decoder(bundle, decoding)
    ar = replace(decoding, method="ar")
    list(run.decode_requests(bundle, requests[:1], decoding, decoder))  # warm-up
    list(run.decode_requests(bundle, requests[:1], ar))

    seconds: dict[str, float] = defaultdict(float)

    def timed(owner: object, name: str, label: str) -> None:
        inner = getattr(owner, name)

        def wrapper(*a, **k):  # noqa: ANN002, ANN003, ANN202
            start = time.perf_counter()
            out = inner(*a, **k)
            seconds[label] += time.perf_counter() - start
            return out

        setattr(owner, name, wrapper)

    timed(decoder, "step", "forward")  # the tree pass (the decoder holds its step)
    timed(bundle.model, "hidden", "forward")  # AR's step, looked up per call
    timed(sampling.SpeechHead, "__call__", "base head")  # AR's and VADUSA's
    timed(decoder.drafter, "draft", "draft heads")
    for module in (vadusa, ar_module):
        timed(module, "processed_logprobs", "log-probabilities")
        timed(module, "keyed_samples", "keyed sampling")
    timed(vadusa, "accepted_by_parent", "acceptance")
    timed(vadusa, "longest_accepted", "longest path")
    timed(bundle.model, "compact_cache", "compaction")
    timed(run, "synthesis_prefix", "prefix")
    model_work = ("forward", "base head")
    own: dict[str, float] = {}
    for name, cfg, dec in (("AR", ar, None), ("VADUSA", decoding, decoder)):
        seconds.clear()
        records = list(run.decode_requests(bundle, requests, cfg, dec))
        wall = sum(r["seconds"] for r in records)  # decoding only (prefill included)
        steps = sum(r["forwards"] - 1 for r in records)  # per step: prefills spread over them
        tokens = sum(len(r["tokens"]) for r in records)
        print(f"{name}: {args.checkpoint}, tree {args.tree}, tau {args.tau}, "
              f"{args.threads} thread(s): {steps} steps, {tokens / steps:.2f} tokens per "
              f"step, {1000 * wall / steps:.3f} ms per step (prefills included)")
        for label, s in seconds.items():
            print(f"  {label:<18} {1000 * s / steps:.3f} ms")
        other = wall - sum(v for k, v in seconds.items() if k != "prefix")
        print(f"  {'other':<18} {1000 * other / steps:.3f} ms")
        own[name] = (wall - sum(seconds[k] for k in model_work)) / steps
    print(f"decoder's own work: VADUSA {1000 * own['VADUSA']:.3f} ms per pass, AR "
          f"{1000 * own['AR']:.3f} ms per step: {1000 * (own['VADUSA'] - own['AR']):+.3f} ms")


if __name__ == "__main__":
    main()
