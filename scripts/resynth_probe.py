"""Quick resynthesis WER of a unit vocoder on stored tokens, for comparing vocoders and units.

Decodes the first ``--per-voice`` utterances of every voice of a split from the token files
(no re-tokenizing), optionally with the predicted log-mels scaled about their per-band mean
(global-variance compensation, ``--gv 1.0,1.2,1.4``), and prints the judge's WER and CER for
each scale, and how the true mels' per-band spread compares with the predicted ones.

    python scripts/resynth_probe.py --vocoder results/default/vocoder/whisper/unit2mel.pt \
        --tokens results/default/tokens/whisper --split dev --per-voice 6 --gv 1.0,1.2,1.4

Not part of the pipeline (``vadusa resynthesize`` is); a probe for the README's experiments.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from vadusa.config import load_config
from vadusa.data import audio
from vadusa.data.manifest import manifest_path, read_manifest
from vadusa.eval.judge import WhisperJudge
from vadusa.eval.wer import error_rates
from vadusa.tokenizers.store import TokenSplit
from vadusa.vocoder import UnitVocoder
from vadusa.vocoder.hifigan import CopySynthesis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="results/default/config.yaml")
    parser.add_argument("--vocoder", required=True, help="a unit2mel.pt")
    parser.add_argument("--tokens", required=True, help="the token directory it decodes")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--per-voice", type=int, default=6)
    parser.add_argument("--gv", default="1.0", help="comma-separated scales of the mel spread")
    args = parser.parse_args()
    torch.set_num_threads(2)

    cfg = load_config([args.config])
    vocoder = UnitVocoder.load(args.vocoder)
    tokens = TokenSplit(args.tokens, args.split)
    by_voice: dict[str, list] = {}
    for rec in read_manifest(manifest_path(cfg.experiment_dir / "corpus", args.split)):
        by_voice.setdefault(rec.speaker, []).append(rec)
    records = [r for voice in sorted(by_voice) for r in by_voice[voice][:args.per_voice]]
    scales = [float(s) for s in args.gv.split(",")]

    judge, copy = WhisperJudge(cfg.judge), CopySynthesis()
    hypotheses: dict[float, list[str]] = {s: [] for s in scales}
    spread_ratios = []
    for rec in records:
        mel = vocoder.mel(tokens.get(rec.id), rec.speaker)  # (N_MELS, M)
        wave, rate = audio.read(rec.audio_path, rec.offset, rec.num_samples)
        true = copy.encode(wave, rate).T  # (M, N_MELS) -> (N_MELS, M)
        spread_ratios.append((true.std(dim=-1) / mel.std(dim=-1)).numpy())  # (N_MELS,)
        mean = mel.mean(dim=-1, keepdim=True)  # (N_MELS, 1)
        for s in scales:
            hypotheses[s].append(judge.transcribe(vocoder.hifigan(mean + s * (mel - mean)),
                                                  vocoder.sample_rate))
    ratio = np.mean(spread_ratios, axis=0)  # (N_MELS,)
    print(f"true / predicted per-band spread: median {np.median(ratio):.2f} "
          f"(bands {ratio.min():.2f}-{ratio.max():.2f})")
    references = [r.text for r in records]
    for s in scales:
        rates = error_rates(references, hypotheses[s])
        print(f"{Path(args.vocoder)} spread x{s}: WER {100 * rates.wer:.1f} % "
              f"CER {100 * rates.cer:.1f} % ({len(records)} {args.split} utterances)")


if __name__ == "__main__":
    main()
