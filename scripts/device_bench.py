"""`vadusa bench` on a machine that has a GPU but not the text front end's system library.

The accelerator machines this project is lent have PyTorch but no espeak-ng, and no network
to install it. So the texts are read into phonemes *here*, and the bench runs *there* on them:

    # here: the test split's requests and their phonemes (espeak-ng runs here)
    python scripts/device_bench.py prepare --corpus results/default/corpus --split test \
        --limit 40 --out .device/requests.json
    # there: the same `bench` as `vadusa bench` (same settings, same turn-taking, same table)
    python scripts/device_bench.py run --requests .device/requests.json \
        --checkpoint .device/heads.pt --tau 1 2 3 4 --heads 4 --typical --out $OUT/bench.json

Everything else (the model, the decoders, the timing, the baseline: AR at batch 1, raced in
the other precision where bfloat16 may be the faster, i.e. on CPUs with AVX512-BF16) is the
package's own code.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path


def prepare(args: argparse.Namespace) -> None:
    from vadusa.data.manifest import manifest_path, read_manifest  # noqa: PLC0415
    from vadusa.data.phonemes import phonemize  # noqa: PLC0415
    from vadusa.data.text import normalize  # noqa: PLC0415

    records = read_manifest(manifest_path(Path(args.corpus), args.split))[: args.limit or None]
    requests = [{"index": i, "text": r.text, "speaker": r.speaker}
                for i, r in enumerate(records)]
    texts = {normalize(r["text"]) for r in requests}
    phonemes = {t: list(phonemize(t)) for t in texts}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"requests": requests, "phonemes": phonemes}))
    print(f"{len(requests)} requests -> {args.out}")


def run(args: argparse.Namespace) -> None:
    import torch  # noqa: PLC0415

    import vadusa.data.text as text  # noqa: PLC0415
    from vadusa.config import DecodingConfig  # noqa: PLC0415
    from vadusa.decoding import bench as benchmark  # noqa: PLC0415
    from vadusa.decoding.run import Request  # noqa: PLC0415
    from vadusa.devices import resolve_device, resolve_precision  # noqa: PLC0415
    from vadusa.model.loading import load_tts  # noqa: PLC0415

    blob = json.loads(Path(args.requests).read_text())
    table = {k: tuple(v) for k, v in blob["phonemes"].items()}

    def phonemize(normalized_text: str) -> tuple[str, ...]:  # read here, prepared there
        return table[normalized_text]

    text.phonemize = phonemize
    requests = [Request(r["index"], r["text"], r["speaker"]) for r in blob["requests"]]
    device = resolve_device(args.device)
    decoding = replace(DecodingConfig(), temperature=args.temperature, precision=args.precision)
    bundle = load_tts(args.checkpoint, device, dtype=resolve_precision(args.precision, device))
    other = "" if args.one_precision else benchmark.raced_precision(bundle)
    settings = benchmark.ar_settings(args.batch_sizes, other)
    settings += benchmark.vadusa_settings(args.tau, args.heads, args.tree, args.typical)
    results = benchmark.bench(bundle, requests, decoding, settings)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"{bundle.family}, {len(requests)} utterances, {name}, "
          f"{str(bundle.dtype).removeprefix('torch.')} unless named")
    print(benchmark.format_bench(results))
    if args.out:
        benchmark.write_bench(Path(args.out), results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="requests and their phonemes, read here")
    p.add_argument("--corpus", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, default=0, help="first N utterances (0: all)")
    p.add_argument("--out", required=True)
    p = sub.add_parser("run", help="the bench, on the prepared requests")
    p.add_argument("--requests", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--tau", type=int, nargs="+", default=[1, 2, 3, 4])
    p.add_argument("--heads", type=int, nargs="+", default=[4])
    p.add_argument("--tree", nargs="+", default=["16"])
    p.add_argument("--typical", action="store_true")
    p.add_argument("--batch-sizes", type=int, nargs="*", default=[])
    p.add_argument("--temperature", type=float, default=0.7, help="the default config's")
    p.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16"))
    p.add_argument("--device", default="auto")
    p.add_argument("--one-precision", action="store_true",
                   help="no AR row in the other precision")
    p.add_argument("--out")
    args = parser.parse_args()
    prepare(args) if args.command == "prepare" else run(args)


if __name__ == "__main__":
    main()
