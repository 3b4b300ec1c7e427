"""``vadusa evaluate``: a trained TTS model on a split -> speech tokens -> audio -> the judge.

For every utterance of the split, the model reads its text, for its speaker (with the
speaker's stored prompt, as in training), and decodes speech tokens; the family's unit vocoder
turns them into audio and the Whisper judge transcribes it. ``metrics.json`` holds the WER and
CER against the split's transcripts, the decoding speed, and one row per utterance. A failure
of one utterance (a text the model cannot take, an empty output) is recorded, not dropped.

``ci`` holds a 95 % percentile-bootstrap interval over utterances for each headline figure
(``vadusa.eval.stats``). The error rates and speeds are ratios of sums (errors over reference
words, tokens over decoding seconds), so they are bootstrapped as ratios of sums, and each
interval brackets the very figure reported next to it. In batched AR decoding an utterance's
decoding time is its share of its batch's wall time: utterances of one batch are not
independent, so the speed intervals are somewhat too narrow there.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from vadusa.atomic import write_text_atomic
from vadusa.config import DecodingConfig
from vadusa.data import audio
from vadusa.data.manifest import manifest_path, read_manifest
from vadusa.decoding.run import Request, decode_requests, write_jsonl
from vadusa.eval.judge import WhisperJudge
from vadusa.eval.stats import bootstrap_mean, bootstrap_ratio, format_interval
from vadusa.eval.wer import error_rates, utterance_errors
from vadusa.model.loading import SynthesisInputError, TTSBundle, synthesis_prefix
from vadusa.vocoder import voice_for


class EvaluationError(ValueError):
    pass


def split_requests(corpus_dir: Path, split: str, limit: int | None = None
                   ) -> tuple[list[Request], list[str]]:
    """The split's utterances as decoding requests, and their ids; the first ``limit`` only
    (None or 0: all)."""
    path = manifest_path(corpus_dir, split)
    if not path.is_file():
        raise EvaluationError(f"no manifest for split {split!r} at {path}; "
                              "run `vadusa prepare` first")
    records = read_manifest(path)[:limit or None]
    if not records:
        raise EvaluationError(f"{path} holds no utterances")
    requests = [Request(i, r.text, r.speaker) for i, r in enumerate(records)]
    return requests, [r.id for r in records]


def reference_audio(corpus_dir: Path, split: str, ids: list[str]
                    ) -> dict[str, tuple[str, float, int | None]]:
    """The real recording of each utterance (for speaker similarity): id -> (path, offset,
    samples). Missing files are an error that names them, before anything is decoded."""
    records = {r.id: r for r in read_manifest(manifest_path(corpus_dir, split))}
    refs = {i: (records[i].audio_path, records[i].offset, records[i].num_samples) for i in ids}
    missing = sorted({p for p, _, _ in refs.values() if not Path(p).is_file()})
    if missing:
        raise EvaluationError(f"{len(missing)} recordings of split {split!r} are missing "
                              f"(e.g. {missing[0]}): speaker similarity needs them; rebuild "
                              "the corpus (`vadusa prepare`) or set "
                              "judge.speaker_similarity: false")
    return refs


def evaluate_tts(bundle: TTSBundle, requests: list[Request], ids: list[str],
                 decoding: DecodingConfig, vocoder: Any, judge: WhisperJudge,
                 out_dir: Path, similarity: Any = None,
                 references: dict[str, tuple[str, float, int | None]] | None = None,
                 nar: Any = None) -> dict[str, Any]:
    """Decode, vocode, judge; with ``similarity`` (a ``SpeakerSimilarity``) and
    ``references`` (``reference_audio``), also the speaker similarity to each recording.
    With ``nar`` (an acoustic family's ``NARStage`` or ``MelStage``) codebooks 2..N (or the
    mel they encode) are filled in before vocoding, timed on their own: the NAR stage's
    real-time factor beside the AR one's."""
    out_dir = Path(out_dir)
    (out_dir / "wavs").mkdir(parents=True, exist_ok=True)
    failures: list[dict[str, Any]] = []
    usable = []
    for request, utt_id in zip(requests, ids, strict=True):
        try:  # texts the model cannot take fail here, one by one, before decoding
            synthesis_prefix(bundle, request.text, request.speaker, None,
                             decoding.max_tokens_per_symbol)
            usable.append((request, utt_id))
        except SynthesisInputError as exc:
            failures.append({"id": utt_id, "stage": "text", "error": str(exc)})
    if not usable:
        raise EvaluationError(f"every utterance failed: {failures[:3]}")

    records = []
    progress = tqdm(total=len(usable), desc=f"decode ({bundle.family}, {decoding.method})",
                    unit="utt")
    for record in decode_requests(bundle, [r for r, _ in usable], decoding):
        records.append(record)
        progress.update(1)
    progress.close()
    by_index = {r.index: utt_id for r, utt_id in usable}
    for record in records:
        record["id"] = by_index[record["index"]]
    write_jsonl(out_dir / "tokens.jsonl", records)

    rows: list[dict[str, Any]] = []
    sim_failures: list[dict[str, Any]] = []  # judged, but no speaker similarity
    vocode_seconds = judge_seconds = nar_seconds = 0.0
    for record in tqdm(records, desc="vocode + judge", unit="utt"):
        if not record["tokens"]:
            failures.append({"id": record["id"], "stage": "decode",
                             "error": "no speech tokens before eos"})
            continue
        voice = voice_for(vocoder, record["speaker"])
        codes = np.asarray(record["tokens"])  # (F,) codebook 1
        if nar is not None:
            t_nar = time.perf_counter()
            # (F,) -> every codebook (F, N), or a mel stage's log-mel
            rendered = nar.render(record["text"], record["speaker"], codes)
            nar_seconds += time.perf_counter() - t_nar
        t0 = time.perf_counter()
        wave, rate = (nar.vocode(rendered, vocoder, voice) if nar is not None
                      else vocoder.decode(codes, voice))
        t1 = time.perf_counter()
        audio.write_wav(out_dir / "wavs" / f"{record['id']}.wav", wave, rate)
        hyp = judge.transcribe(wave, rate)
        sim = {}
        if similarity is not None and references is not None:
            path, offset, samples = references[record["id"]]
            try:
                sim["sim"] = similarity.similarity(wave, rate,
                                                   *audio.read(path, offset, samples))
            except ValueError as exc:  # too little voiced audio: recorded, not dropped
                sim_failures.append({"id": record["id"], "error": str(exc)})
        judge_seconds += time.perf_counter() - t1
        vocode_seconds += t1 - t0
        rows.append({**sim, "id": record["id"], "speaker": record["speaker"],
                     "reference": record["text"], "hypothesis": hyp,
                     "wer": error_rates([record["text"]], [hyp]).wer,
                     **utterance_errors([record["text"]], [hyp])[0],
                     "tokens": len(record["tokens"]), "stopped_at_eos": record["stopped_at_eos"],
                     "decode_seconds": record["seconds"], "forwards": record["forwards"],
                     "batch_size": record["batch_size"],
                     "audio_seconds": record["audio_seconds"]})
    if not rows:
        raise EvaluationError(f"every utterance failed: {failures[:3]}")
    rates = error_rates([r["reference"] for r in rows], [r["hypothesis"] for r in rows])
    tokens = sum(r["tokens"] for r in rows)
    decode_seconds = sum(r["decode_seconds"] / r["batch_size"] for r in rows)  # batch wall
    audio_seconds = sum(r["audio_seconds"] for r in rows)
    wall = [r["decode_seconds"] / r["batch_size"] for r in rows]  # each one's batch share
    forwards = [r["forwards"] / r["batch_size"] for r in rows]
    n_tokens = [r["tokens"] for r in rows]
    ci = {"wer": bootstrap_ratio([r["word_errors"] for r in rows], [r["words"] for r in rows]),
          "cer": bootstrap_ratio([r["char_errors"] for r in rows], [r["chars"] for r in rows]),
          "stopped_at_eos": bootstrap_mean([float(r["stopped_at_eos"]) for r in rows]),
          "tokens_per_second": bootstrap_ratio(n_tokens, wall),
          "real_time_factor": bootstrap_ratio(wall, [r["audio_seconds"] for r in rows]),
          "forwards_per_token": bootstrap_ratio(forwards, n_tokens),
          "mean_accepted": bootstrap_ratio(n_tokens, forwards)}
    sims = [r["sim"] for r in rows if "sim" in r]
    if sims:
        ci["sim"] = bootstrap_mean(sims)
    metrics = {
        "family": bundle.family, "method": decoding.method, "utterances": len(rows),
        "failures": failures,
        "wer": rates.wer, "cer": rates.cer, "words": rates.words,
        "stopped_at_eos": float(np.mean([r["stopped_at_eos"] for r in rows])),
        "batch_size": decoding.batch_size,
        "tokens_per_second": tokens / decode_seconds,
        "real_time_factor": decode_seconds / audio_seconds,
        "forwards_per_token": sum(r["forwards"] / r["batch_size"] for r in rows) / tokens,
        "mean_accepted": tokens / sum(r["forwards"] / r["batch_size"] for r in rows),
        "seconds": {"decode": round(decode_seconds, 2), "vocode": round(vocode_seconds, 2),
                    "judge": round(judge_seconds, 2)}
                   | ({"nar": round(nar_seconds, 2)} if nar is not None else {}),
        # the NAR stage (codebooks 2..N, or a mel stage's mel) per second of speech, timed
        # apart from the AR decoding that VADUSA accelerates; None without one
        "nar_real_time_factor": nar_seconds / audio_seconds if nar is not None else None,
        "codebooks": nar.codebooks if nar is not None else 1,  # decoded
        # how the stage turned codebook 1 into sound: its codes' decoding, or a mel stage's
        # "continuous" (its mel as it is)
        "nar_decoding": nar.decoding if nar is not None else None,
        "decoding": dict(vars(decoding)),
        "dtype": str(bundle.dtype).removeprefix("torch."),  # what precision "auto" chose
        "sim": float(np.mean(sims)) if sims else None,
        "sim_failures": sim_failures,
        "ci": ci,
        "per_utterance": rows,
    }
    write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    return metrics


def format_evaluation(metrics: dict[str, Any]) -> str:
    """One summary line; bracketed ranges are the bootstrap intervals of ``metrics["ci"]``."""
    ci = metrics.get("ci", {})
    line = (f"{metrics['family']} {metrics['method']}: {metrics['utterances']} utterances, "
            f"WER {100 * metrics['wer']:.1f} %{format_interval(ci.get('wer'), 100)} "
            f"(CER {100 * metrics['cer']:.1f} %{format_interval(ci.get('cer'), 100)}), "
            f"{metrics['tokens_per_second']:.1f} tokens/s"
            f"{format_interval(ci.get('tokens_per_second'))}, "
            f"RTF {metrics['real_time_factor']:.3f}"
            f"{format_interval(ci.get('real_time_factor'), digits=3)}"
            f", {len(metrics['failures'])} failed")
    if metrics.get("sim") is not None:
        line += (f", SIM {metrics['sim']:.3f}"
                 f"{format_interval(ci.get('sim'), digits=3)}")
    if "wer" in ci:
        line += f" ({100 * ci['wer']['confidence']:g} % bootstrap intervals over utterances)"
    return line
