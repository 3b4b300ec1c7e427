"""One sweep trial: the trial's VADUSA setting against KV-cached AR, speed and WER.

Speed comes from ``decoding.bench``: AR at batch 1 (raced in both precisions where bfloat16
may be faster: the faster one is the baseline) and the trial's setting decode the same
utterances in one process, taking turns utterance by utterance, so the speedup is measured in
the same run on the same machine. The objective is the speedup per token (tokens/s over AR's),
the main table's headline; the wall-time ratio is kept beside it (``wall_speedup``). Quality:
each utterance's tokens go through the unit vocoder to the Whisper judge, and the trial's WER
sits next to AR's WER at the same sampling. An utterance that decodes to nothing or that the
vocoder refuses counts as all its words deleted (``failed`` per trial), as in evaluation.

Judging is the slow part on a CPU, so a transcript is cached by its tokens: tau = 1 settings
(AR's tokens, in float32) and repeated settings are judged once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from vadusa.config import DecodingConfig
from vadusa.decoding.bench import Setting, ar_settings, bench, raced_precision
from vadusa.decoding.run import Request
from vadusa.eval.wer import error_rates
from vadusa.model.loading import TTSBundle
from vadusa.sweep.study import SweepTrialError
from vadusa.vocoder.base import VocoderError, voice_for


class DecodingObjective:
    def __init__(self, bundle: TTSBundle, requests: list[Request], decoding: DecodingConfig,
                 vocoder: Any, judge: Any, nar: Any = None, voices: Any = None) -> None:
        if bundle.heads is None:
            raise SweepTrialError("the checkpoint has no draft heads; sweep a heads.pt from "
                                  "`vadusa train-heads` or `vadusa train-joint`")
        self.bundle, self.requests, self.decoding = bundle, requests, decoding
        self.vocoder, self.judge, self.nar = vocoder, judge, nar  # nar: fills codebooks 2..N
        # the split's recordings (eval.evaluate.SplitVoices): a vocoder that renders a voice
        # from its prompt's speaker embedding gets it, as in evaluation
        self.voices = voices
        self.ar = ar_settings([], raced_precision(bundle))
        # (utterance, tokens) -> transcript, or None where decoding or vocoding failed
        self._transcripts: dict[tuple[int, tuple[int, ...]], str | None] = {}

    def transcribe(self, request: Request, tokens: list[int]) -> str | None:
        """The judge's transcript of one utterance's tokens; None for a failure (nothing
        decoded, or the vocoder refused the tokens): all its words count as deleted."""
        key = (request.index, tuple(tokens))
        if key not in self._transcripts:
            self._transcripts[key] = self._judge(request, tokens) if tokens else None
        return self._transcripts[key]

    def _judge(self, request: Request, tokens: list[int]) -> str | None:
        codes = np.asarray(tokens)  # (F,) codebook 1
        embedding = (self.voices.embedding(request.prompt_id)
                     if self.voices is not None and request.prompt_id else None)
        voice = voice_for(self.vocoder, request.speaker, embedding)
        try:
            wave, rate = (self.nar.speak(request.text, request.speaker, codes, self.vocoder,
                                         voice) if self.nar is not None
                          else self.vocoder.decode(codes, voice))
        except (VocoderError, ValueError):
            return None
        return self.judge.transcribe(wave, rate)

    def rates(self, utterance_tokens: list[list[int]]) -> tuple[float, float, int]:
        """WER and CER over the requests, failures as all words deleted, and the failures."""
        hypotheses = [self.transcribe(r, t)
                      for r, t in zip(self.requests, utterance_tokens, strict=True)]
        rates = error_rates([r.text for r in self.requests], [h or "" for h in hypotheses])
        return rates.wer, rates.cer, sum(h is None for h in hypotheses)

    def __call__(self, params: dict[str, Any]) -> dict[str, float | str]:
        cfg = replace(self.decoding, temperature=float(params["temperature"]),
                      top_k=int(params["top_k"]))
        setting = Setting(f"vadusa-h{params['heads']}-n{params['tree']}-t{params['tau']}",
                          "vadusa", 1, int(params["tau"]), int(params["heads"]),
                          str(params["tree"]))
        try:
            results = bench(self.bundle, self.requests, cfg, [*self.ar, setting],
                            keep_tokens=True, bounds=False)
        except ValueError as err:  # a setting the decoder refuses (e.g. a tree too deep)
            raise SweepTrialError(f"{setting.name}: {err}") from err
        ours, same_precision = results[-1], results[0]
        baseline = next(r for r in results if r["setting"] == ours["baseline"])  # the faster AR
        wer, cer, failed = self.rates(ours["utterance_tokens"])
        # AR's quality from AR in the trial's own precision: its tokens are what tau = 1
        # reproduces (float32) and they do not change from trial to trial
        ar_wer, ar_cer, ar_failed = self.rates(same_precision["utterance_tokens"])
        forwards = ours["forwards_per_utterance"] * ours["utterances"]
        # the objective is the speedup per token (the main table's headline): a tolerance
        # that ends utterances earlier would otherwise look faster without being so
        return {"speedup": ours["rate_speedup"], "wer": wer, "cer": cer, "failed": failed,
                "ar_wer": ar_wer, "ar_cer": ar_cer, "ar_failed": ar_failed,
                "wall_speedup": ours["speedup"], "mean_accepted": ours["mean_accepted"],
                "tokens_per_second": ours["tokens_per_second"],
                "ar_tokens_per_second": baseline["tokens_per_second"],
                "real_time_factor": ours["real_time_factor"],
                "ms_per_forward": 1000 * ours["wall_seconds"] / forwards,
                "ar_ms_per_forward": 1000 * baseline["wall_seconds"]
                / (baseline["forwards_per_utterance"] * baseline["utterances"]),
                "baseline": ours["baseline"], "precision": ours["precision"],
                "utterances": ours["utterances"]}
