"""``vadusa evaluate``: a trained TTS model on a split -> speech tokens -> audio -> the judge.

For every utterance of the split, the model reads its text, for its speaker, and decodes
speech tokens; the family's unit vocoder turns them into audio and the Whisper judge
transcribes it. A prompted model (``model.prompt``) follows the zero-shot protocol: each
utterance is prompted by another utterance of its speaker (``data/prompts.py``; the pairs go
to ``prompts.tsv``), for seen and unseen speakers alike. ``metrics.json`` holds the WER and
CER against the split's transcripts, the speaker similarity (SIM, to the speaker's other
recordings), the decoding speed, one row per utterance, and the same figures per group
(seen and unseen speakers, corpus subsets). A failure of one utterance (a text the model
cannot take, an empty output) is recorded and counts as all its words deleted.

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
from vadusa.data import audio, prompts
from vadusa.data.manifest import manifest_path, read_manifest
from vadusa.decoding.run import Request, decode_requests, request_prefix, write_jsonl
from vadusa.eval.judge import WhisperJudge
from vadusa.eval.similarity import SimilarityError
from vadusa.eval.stats import bootstrap_mean, bootstrap_ratio, format_interval
from vadusa.eval.wer import all_deleted, error_rates, utterance_errors
from vadusa.model.loading import SynthesisInputError, TTSBundle
from vadusa.tokenizers.store import TokenSplit
from vadusa.vocoder import VocoderError, voice_for, wants_embedding


class EvaluationError(ValueError):
    pass


def split_requests(corpus_dir: Path, split: str, limit: int | None = None,
                   tokens_dir: Path | None = None,
                   prompt_max_seconds: float = prompts.TARGET_SECONDS
                   ) -> tuple[list[Request], list[str]]:
    """The split's utterances as decoding requests, and their ids; the first ``limit`` only
    (None or 0: all). With ``tokens_dir`` (a prompted model's token family), every request
    carries its zero-shot prompt (data/prompts.py): another utterance of its speaker in the
    split, its text and its tokens from ``tokens_dir``."""
    path = manifest_path(corpus_dir, split)
    if not path.is_file():
        raise EvaluationError(f"no manifest for split {split!r} at {path}; "
                              "run `vadusa prepare` first")
    every = read_manifest(path)
    records = every[:limit or None]
    if not records:
        raise EvaluationError(f"{path} holds no utterances")
    if tokens_dir is None:
        return [Request(i, r.text, r.speaker) for i, r in enumerate(records)], [
            r.id for r in records]
    store = TokenSplit(tokens_dir, split)
    usable = [r for r in every if r.id in store and len(store.get(r.id))]
    pairs = prompts.choose_prompts(usable or every, None, prompt_max_seconds)
    by_id = {r.id: r for r in every}
    requests = []
    for i, r in enumerate(records):
        pair = pairs.get(r.id)
        if pair is None or not pair.prompt:  # no other utterance of the voice: fails later
            requests.append(Request(i, r.text, r.speaker))
            continue
        tokens = tuple(int(t) for t in store.get(pair.prompt))
        requests.append(Request(i, r.text, r.speaker, (by_id[pair.prompt].text, tokens),
                                pair.prompt))
    return requests, [r.id for r in records]


class SplitVoices:
    """The recordings of a split's speakers, for speaker similarity and for a vocoder that
    renders a voice from its prompt's speaker embedding: each recording embedded (GE2E,
    ``SpeakerSimilarity``) once, when first asked for.

    SIM compares an output with its speaker's *other* recordings in the split (the mean of
    their embeddings): the recording of the same utterance would reward copying it, and in
    the zero-shot protocol the model heard only its prompt, another recording."""

    def __init__(self, corpus_dir: Path, split: str, ids: list[str], encoder: Any) -> None:
        records = read_manifest(manifest_path(corpus_dir, split))
        targets = set(ids)
        wanted = {r.speaker for r in records if r.id in targets}
        self.records = {r.id: r for r in records if r.speaker in wanted}
        self.by_speaker: dict[str, list[str]] = {}
        for r in self.records.values():
            self.by_speaker.setdefault(r.speaker, []).append(r.id)
        missing = sorted({r.audio_path for r in self.records.values()
                          if not Path(r.audio_path).is_file()})
        if missing:
            raise EvaluationError(f"{len(missing)} recordings of split {split!r} are missing "
                                  f"(e.g. {missing[0]}): speaker similarity and a prompted "
                                  "vocoder need them; rebuild the corpus (`vadusa prepare`) "
                                  "or set judge.speaker_similarity: false")
        self.encoder = encoder
        self._embeddings: dict[str, np.ndarray] = {}

    def embedding(self, utt_id: str) -> np.ndarray:
        """(256,) unit-norm d-vector of one recording of the split."""
        if utt_id not in self._embeddings:
            r = self.records[utt_id]
            wave, rate = audio.read(r.audio_path, r.offset, r.num_samples)
            self._embeddings[utt_id] = self.encoder.embed(wave, rate)
        return self._embeddings[utt_id]

    def reference(self, utt_id: str) -> np.ndarray:
        """The mean d-vector of the speaker's recordings other than ``utt_id`` (unit norm)."""
        others = [i for i in self.by_speaker[self.records[utt_id].speaker] if i != utt_id]
        if not others:
            raise SimilarityError(f"{utt_id}: its speaker has no other recording in the "
                                  "split to compare with")
        vectors = []
        for other in others:
            try:
                vectors.append(self.embedding(other))
            except SimilarityError:
                continue  # a recording too short to embed says nothing of the voice
        if not vectors:
            raise SimilarityError(f"{utt_id}: none of its speaker's other recordings gives "
                                  "a speaker embedding")
        mean = np.mean(vectors, axis=0)
        return mean / np.linalg.norm(mean)

    def similarity(self, wave: np.ndarray, rate: int, utt_id: str) -> float:
        """Cosine of an output's d-vector with its speaker's reference, in [-1, 1]."""
        a, b = self.encoder.embed(wave, rate), self.reference(utt_id)
        return float(a @ b / np.linalg.norm(a))


def evaluate_tts(bundle: TTSBundle, requests: list[Request], ids: list[str],
                 decoding: DecodingConfig, vocoder: Any, judge: WhisperJudge,
                 out_dir: Path, voices: SplitVoices | None = None,
                 similarity: bool = True, nar: Any = None,
                 subsets: dict[str, str] | None = None) -> dict[str, Any]:
    """Decode, vocode, judge. With ``voices`` (``SplitVoices`` of the split): the speaker
    similarity of each output to its speaker's other recordings (``similarity``), and, for a
    vocoder that renders a voice from a speaker embedding, the prompt's embedding as the
    voice. With ``nar`` (an acoustic family's ``NARStage`` or ``MelStage``) codebooks 2..N (or
    the mel they encode) are filled in before vocoding, timed on their own: the NAR stage's
    real-time factor beside the AR one's. ``subsets``: utterance id -> the corpus subset it
    comes from (LibriTTS's test-clean, test-other...), for the per-group figures.

    An utterance that fails (a text the model cannot take, no prompt for its voice, no speech
    tokens, a vocoder error) is recorded with its stage and reason and counts as all its
    words deleted in the WER: leaving it out would flatter a system that fails often.
    Speakers the model was trained on are "seen", any other "unseen" (``groups``)."""
    out_dir = Path(out_dir)
    (out_dir / "wavs").mkdir(parents=True, exist_ok=True)
    failures: list[dict[str, Any]] = []
    usable = []
    texts = {utt_id: request.text for request, utt_id in zip(requests, ids, strict=True)}
    speakers = {utt_id: request.speaker for request, utt_id in zip(requests, ids, strict=True)}
    for request, utt_id in zip(requests, ids, strict=True):
        try:  # texts (and voices) the model cannot take fail here, one by one, before decoding
            request_prefix(bundle, request, decoding)
            usable.append((request, utt_id))
        except SynthesisInputError as exc:
            failures.append({"id": utt_id, "stage": "text", "error": str(exc)})
    write_prompt_pairs(out_dir / "prompts.tsv", requests, ids)

    records = []
    if usable:
        progress = tqdm(total=len(usable), desc=f"decode ({bundle.family}, {decoding.method})",
                        unit="utt")
        for record in decode_requests(bundle, [r for r, _ in usable], decoding):
            records.append(record)
            progress.update(1)
        progress.close()
    by_index = {r.index: utt_id for r, utt_id in usable}
    prompt_of = {utt_id: r.prompt_id for r, utt_id in usable}
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
        embedding = None
        if voices is not None and wants_embedding(vocoder) and prompt_of[record["id"]]:
            embedding = voices.embedding(prompt_of[record["id"]])
        voice = voice_for(vocoder, record["speaker"], embedding)
        codes = np.asarray(record["tokens"])  # (F,) codebook 1
        try:
            if nar is not None:
                t_nar = time.perf_counter()
                # (F,) -> every codebook (F, N), or a mel stage's log-mel
                rendered = nar.render(record["text"], record["speaker"], codes)
                nar_seconds += time.perf_counter() - t_nar
            t0 = time.perf_counter()
            wave, rate = (nar.vocode(rendered, vocoder, voice) if nar is not None
                          else vocoder.decode(codes, voice))
        except (VocoderError, ValueError) as exc:
            failures.append({"id": record["id"], "stage": "vocode", "error": str(exc)})
            continue
        t1 = time.perf_counter()
        audio.write_wav(out_dir / "wavs" / f"{record['id']}.wav", wave, rate)
        hyp = judge.transcribe(wave, rate)
        sim = {}
        if voices is not None and similarity:
            try:
                sim["sim"] = voices.similarity(wave, rate, record["id"])
            except ValueError as exc:  # too little voiced audio: recorded, not dropped
                sim_failures.append({"id": record["id"], "error": str(exc)})
        judge_seconds += time.perf_counter() - t1
        vocode_seconds += t1 - t0
        rows.append({**sim, "id": record["id"], "speaker": record["speaker"],
                     "prompt": prompt_of[record["id"]],
                     "reference": record["text"], "hypothesis": hyp,
                     "wer": error_rates([record["text"]], [hyp]).wer,
                     **utterance_errors([record["text"]], [hyp])[0],
                     "tokens": len(record["tokens"]), "stopped_at_eos": record["stopped_at_eos"],
                     "decode_seconds": record["seconds"], "forwards": record["forwards"],
                     "batch_size": record["batch_size"],
                     "audio_seconds": record["audio_seconds"]})
    if not rows:
        raise EvaluationError(f"every utterance failed: {failures[:3]}")
    failed_rows = [failed_row(f["id"], texts[f["id"]], speakers[f["id"]]) for f in failures]
    for row in rows + failed_rows:
        row["seen"] = row["speaker"] in bundle.speakers
        if subsets is not None:
            row["subset"] = subsets.get(row["id"], "")
    metrics = {
        "family": bundle.family, "method": decoding.method, "judge": judge.name,
        "utterances": len(rows), "failures": failures, "failed": len(failures),
        # judged utterances that ran to the length cap instead of stopping at EOS
        "no_eos": sum(not r["stopped_at_eos"] for r in rows),
        **scores(rows, failed_rows),
        "batch_size": decoding.batch_size,
        "seconds": {"decode": round(sum(r["decode_seconds"] / r["batch_size"] for r in rows), 2),
                    "vocode": round(vocode_seconds, 2), "judge": round(judge_seconds, 2)}
                   | ({"nar": round(nar_seconds, 2)} if nar is not None else {}),
        # the NAR stage (codebooks 2..N, or a mel stage's mel) per second of speech, timed
        # apart from the AR decoding that VADUSA accelerates; None without one
        "nar_real_time_factor": (nar_seconds / sum(r["audio_seconds"] for r in rows)
                                 if nar is not None else None),
        "codebooks": nar.codebooks if nar is not None else 1,  # decoded
        # how the stage turned codebook 1 into sound: its codes' decoding, or a mel stage's
        # "continuous" (its mel as it is)
        "nar_decoding": nar.decoding if nar is not None else None,
        "decoding": dict(vars(decoding)),
        "dtype": str(bundle.dtype).removeprefix("torch."),  # what precision "auto" chose
        "prompted": any(r.prompt is not None for r in requests),
        "groups": group_scores(rows, failed_rows),
        "sim_failures": sim_failures,
        "per_utterance": rows,
        "failed_utterances": failed_rows,
    }
    write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    return metrics


def write_prompt_pairs(path: Path, requests: list[Request], ids: list[str]) -> None:
    """Which utterance prompted which (``prompts.tsv``); a request without one says why."""
    lines = ["target\tprompt\tspeaker\n"] + [
        f"{utt_id}\t{r.prompt_id or ('given' if r.prompt else '-')}\t{r.speaker or ''}\n"
        for r, utt_id in zip(requests, ids, strict=True)]
    write_text_atomic(path, "".join(lines))


def failed_row(utt_id: str, text: str, speaker: str | None) -> dict[str, Any]:
    """A failed utterance as a row of the scores: every word and character deleted."""
    return {"id": utt_id, "speaker": speaker, "reference": text, "hypothesis": "",
            "failed": True, **all_deleted(text)}


def scores(rows: list[dict[str, Any]], failed_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """WER and CER over judged and failed utterances (failed: all words deleted), SIM, and
    the decoding speed over the judged ones; ``ci`` their 95 % bootstrap intervals."""
    scored = rows + failed_rows
    words = sum(r["words"] for r in scored)
    chars = sum(r["chars"] for r in scored)
    tokens = sum(r["tokens"] for r in rows)
    wall = [r["decode_seconds"] / r["batch_size"] for r in rows]  # each one's batch share
    forwards = [r["forwards"] / r["batch_size"] for r in rows]
    n_tokens = [r["tokens"] for r in rows]
    audio_seconds = sum(r["audio_seconds"] for r in rows)
    result: dict[str, Any] = {
        "wer": sum(r["word_errors"] for r in scored) / max(1, words),
        "cer": sum(r["char_errors"] for r in scored) / max(1, chars), "words": words,
        "stopped_at_eos": float(np.mean([r["stopped_at_eos"] for r in rows])) if rows else None,
        "tokens_per_second": tokens / sum(wall) if rows else None,
        "real_time_factor": sum(wall) / audio_seconds if rows else None,
        "forwards_per_token": sum(forwards) / tokens if tokens else None,
        "mean_accepted": tokens / sum(forwards) if tokens else None,
    }
    ci: dict[str, Any] = {}
    if words:
        ci["wer"] = bootstrap_ratio([r["word_errors"] for r in scored],
                                    [r["words"] for r in scored])
        ci["cer"] = bootstrap_ratio([r["char_errors"] for r in scored],
                                    [r["chars"] for r in scored])
    if rows:
        ci |= {"stopped_at_eos": bootstrap_mean([float(r["stopped_at_eos"]) for r in rows]),
               "tokens_per_second": bootstrap_ratio(n_tokens, wall),
               "real_time_factor": bootstrap_ratio(wall, [r["audio_seconds"] for r in rows]),
               "forwards_per_token": bootstrap_ratio(forwards, n_tokens),
               "mean_accepted": bootstrap_ratio(n_tokens, forwards)}
    sims = [r["sim"] for r in rows if "sim" in r]
    if sims:
        ci["sim"] = bootstrap_mean(sims)
    return result | {"sim": float(np.mean(sims)) if sims else None, "ci": ci}


def group_scores(rows: list[dict[str, Any]], failed_rows: list[dict[str, Any]]
                 ) -> dict[str, dict[str, Any]]:
    """The scores of each group of utterances: "seen" and "unseen" speakers, and each
    corpus subset (``subset:<name>``) when the rows know theirs."""
    keys: dict[str, Any] = {"seen": lambda r: r["seen"], "unseen": lambda r: not r["seen"]}
    for name in sorted({r.get("subset", "") for r in rows + failed_rows} - {""}):
        keys[f"subset:{name}"] = lambda r, name=name: r.get("subset") == name
    groups = {}
    for name, member in keys.items():
        judged = [r for r in rows if member(r)]
        failed = [r for r in failed_rows if member(r)]
        if judged or failed:
            seen = {r["seen"] for r in judged + failed}
            groups[name] = {"utterances": len(judged), "failed": len(failed),
                            "speakers": len({r["speaker"] for r in judged + failed}),
                            "condition": ("mixed" if len(seen) > 1 else
                                          "seen" if seen == {True} else "unseen"),
                            **scores(judged, failed)}
    return groups


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
    for name, group in metrics.get("groups", {}).items():
        gci = group["ci"]
        line += (f"\n  {name}: {group['utterances']} utterances of {group['speakers']} "
                 f"speakers, {group['failed']} failed, WER {100 * group['wer']:.1f} %"
                 f"{format_interval(gci.get('wer'), 100)}")
        if group.get("sim") is not None:
            line += f", SIM {group['sim']:.3f}{format_interval(gci.get('sim'), digits=3)}"
    return line
