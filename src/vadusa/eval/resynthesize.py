"""``vadusa resynthesize``: audio -> tokens -> audio -> the Whisper judge.

The resynthesis WER of a token family is the ceiling a TTS built on those tokens can reach:
whatever the tokens (or the vocoder) lose, no AR model can bring back. Each run also judges the
input audio itself, so the floor (the corpus or recording WER) sits next to it.

``metrics.json`` also holds, under ``ci``, 95 % percentile-bootstrap intervals over utterances
of both WERs and CERs (``vadusa.eval.stats``; ratios of sums, like the rates themselves). They
use the same seed, hence the same resamples, for the resynthesized and the input audio.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from vadusa.atomic import write_text_atomic
from vadusa.data import audio
from vadusa.data.manifest import manifest_path, read_manifest
from vadusa.eval.judge import WhisperJudge
from vadusa.eval.stats import bootstrap_ratio, format_interval
from vadusa.eval.wer import all_deleted, error_rates, utterance_errors
from vadusa.vocoder import VocoderError, voice_for

LIBRIVOX_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")


class ResynthesisError(ValueError):
    pass


@dataclass(frozen=True)
class Item:
    id: str
    audio_path: str
    text: str
    speaker: str | None = None  # corpus speaker; None for outside recordings
    offset: float = 0.0
    num_samples: int | None = None


def items_from_split(corpus_dir: Path, split: str, limit: int | None = None) -> list[Item]:
    records = read_manifest(manifest_path(corpus_dir, split))[:limit or None]
    return [Item(r.id, r.audio_path, r.text, r.speaker, r.offset, r.num_samples)
            for r in records]


def items_from_list(path: Path) -> list[Item]:
    """``path<TAB>text`` per line; relative paths are relative to the list file."""
    if not path.is_file():
        raise ResynthesisError(f"audio list not found: {path}")
    items = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise ResynthesisError(f"{path}:{n}: expected `path<TAB>text`, got {line!r}")
        audio_path, text = line.split("\t", 1)
        full = Path(audio_path) if Path(audio_path).is_absolute() else path.parent / audio_path
        if not text.strip():
            raise ResynthesisError(f"{path}:{n}: empty transcript for {audio_path}")
        items.append(Item(Path(audio_path).stem, str(full), text.strip()))
    if not items:
        raise ResynthesisError(f"{path}: no utterances")
    return items


def librivox_utterances(source: Path = LIBRIVOX_DIR) -> list[tuple[Path, str]]:
    """The five LibriVox recordings of Debian's pocketsphinx-testdata (real human speech,
    16 kHz, for evaluation only) as (wav, transcript) pairs; the transcripts are lower case,
    without punctuation."""
    transcription = source / "transcription"
    if not transcription.is_file():
        raise ResynthesisError(f"{transcription} not found "
                               "(install it with `apt-get install pocketsphinx-testdata`)")
    pairs = []
    for line in transcription.read_text().splitlines():
        m = re.fullmatch(r"<s> (.*) </s> \((.*)\)", line.strip())
        if m:
            pairs.append((source / (m.group(2) + ".wav"), m.group(1)))
    return pairs


def write_librivox_list(out: Path, source: Path = LIBRIVOX_DIR) -> Path:
    """``librivox_utterances`` as a `path<TAB>text` list."""
    write_text_atomic(out, "".join(f"{wav}\t{text}\n" for wav, text in librivox_utterances(source)))
    return out


def resynthesize(items: list[Item], tokenizer: Any, vocoder: Any, judge: WhisperJudge,
                 out_dir: Path, speaker: str | None = None, codebooks: int | None = None,
                 nar: Any = None, encoder: Any = None) -> dict[str, Any]:
    """Round-trip every item through tokens and the vocoder; judge input and output. An
    acoustic family decodes all its codebooks, or its first ``codebooks``; with ``nar`` (a
    ``NARStage``), codebook 1 of the recording and codebooks 2..N from the NAR stage (a
    ``MelStage``: its mel). With ``encoder`` (a ``SpeakerSimilarity``), a vocoder that renders
    a voice from a speaker embedding gets the recording's own: the round trip keeps the
    voice, heard in training or not."""
    available = getattr(tokenizer, "codebooks", 1)
    if codebooks is not None and not 1 <= codebooks <= available:
        raise ResynthesisError(f"--codebooks {codebooks}: the {tokenizer.family} tokenizer has "
                               f"{available} codebook(s)")
    used = codebooks or available
    (out_dir / "wavs").mkdir(parents=True, exist_ok=True)
    rows, failures, failed_rows = [], [], []
    timing = {"tokenize": 0.0, "vocode": 0.0, "judge": 0.0}
    for item in tqdm(items, desc=f"resynthesize {tokenizer.family}", unit="utt"):
        try:
            wave, rate = audio.read(item.audio_path, item.offset, item.num_samples)
        except (audio.AudioError, ValueError) as exc:  # no recording: nothing to judge
            failures.append({"id": item.id, "stage": "read", "error": str(exc)})
            failed_rows.append(failed_item(item, None))
            continue
        t0 = time.perf_counter()
        hyp_input = judge.transcribe(wave, rate)
        t1 = time.perf_counter()
        timing["judge"] += t1 - t0
        try:
            # an acoustic family decodes every codebook: the floor its AR + NAR output aims at
            tokens = (tokenizer.encode_codes(wave, rate)[:, :used] if available > 1
                      else tokenizer.encode(wave, rate))
            if nar is not None:  # (F, N) -> (F,) -> the NAR stage's codebooks 2..N (or mel)
                rendered = nar.render(item.text, item.speaker or None, tokens[:, 0])
            t2 = time.perf_counter()
            # outside recordings, and voices a table vocoder does not know, get its first voice
            # (a codec takes any); a d-vector vocoder the recording's own embedding
            embedding = encoder.embed(wave, rate) if encoder is not None else None
            voice = voice_for(vocoder, speaker or item.speaker or None, embedding)
            out_wave, out_rate = (nar.vocode(rendered, vocoder, voice) if nar is not None
                                  else vocoder.decode(tokens, voice))
        except (VocoderError, ValueError) as exc:  # the round trip failed: all words deleted
            failures.append({"id": item.id, "stage": "resynthesize", "error": str(exc)})
            failed_rows.append(failed_item(item, hyp_input))
            continue
        t3 = time.perf_counter()
        audio.write_wav(out_dir / "wavs" / f"{item.id}.wav", out_wave, out_rate)
        hyp = judge.transcribe(out_wave, out_rate)
        timing["tokenize"] += t2 - t1
        timing["vocode"] += t3 - t2
        timing["judge"] += time.perf_counter() - t3
        errors_input = utterance_errors([item.text], [hyp_input])[0]
        rows.append({"id": item.id, "speaker": item.speaker, "reference": item.text,
                     "hypothesis": hyp, "hypothesis_input": hyp_input,
                     "wer": error_rates([item.text], [hyp]).wer,
                     "wer_input": error_rates([item.text], [hyp_input]).wer,
                     **utterance_errors([item.text], [hyp])[0],
                     "word_errors_input": errors_input["word_errors"],
                     "char_errors_input": errors_input["char_errors"],
                     "tokens": len(tokens), "seconds": len(wave) / rate})
    if not rows:
        raise ResynthesisError(f"every utterance failed: {failures[:3]}")
    scored = rows + failed_rows  # a failure counts as all its words deleted
    words, chars = [r["words"] for r in scored], [r["chars"] for r in scored]
    errors = {key: [r[key] for r in scored] for key in (
        "word_errors", "char_errors", "word_errors_input", "char_errors_input")}
    ci = {"wer": bootstrap_ratio(errors["word_errors"], words),
          "cer": bootstrap_ratio(errors["char_errors"], chars),
          "input_wer": bootstrap_ratio(errors["word_errors_input"], words),
          "input_cer": bootstrap_ratio(errors["char_errors_input"], chars)}
    metrics = {
        "family": tokenizer.family,
        "codebooks": used,  # decoded per frame (1: units, or an acoustic family's codebook 1)
        "nar": str(nar.path) if nar is not None else None,  # codebooks 2..N filled by it
        "judge": judge.name,
        "utterances": len(rows),
        "failures": failures, "failed": len(failures),
        "wer": sum(errors["word_errors"]) / max(1, sum(words)),
        "cer": sum(errors["char_errors"]) / max(1, sum(chars)),
        "input_wer": sum(errors["word_errors_input"]) / max(1, sum(words)),
        "input_cer": sum(errors["char_errors_input"]) / max(1, sum(chars)),
        "words": sum(words),
        "tokens_per_second": float(np.sum([r["tokens"] for r in rows])
                                   / np.sum([r["seconds"] for r in rows])),
        "seconds": {k: round(v, 2) for k, v in timing.items()},
        "ci": ci,
        "per_utterance": rows,
        "failed_utterances": failed_rows,
    }
    write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    return metrics


def failed_item(item: Item, hyp_input: str | None) -> dict[str, Any]:
    """A failed round trip: its output counts as all words deleted; its input as judged (a
    recording that could not be read: deleted too, nothing was heard)."""
    deleted = all_deleted(item.text)
    heard = (utterance_errors([item.text], [hyp_input])[0] if hyp_input is not None
             and deleted["words"] else deleted)
    return {"id": item.id, "speaker": item.speaker, "reference": item.text, "hypothesis": "",
            "hypothesis_input": hyp_input or "", "failed": True, **deleted,
            "word_errors_input": heard["word_errors"], "char_errors_input": heard["char_errors"]}


def format_resynthesis(metrics: dict[str, Any]) -> str:
    """One summary line; bracketed ranges are the bootstrap intervals of ``metrics["ci"]``."""
    ci = metrics.get("ci", {})
    line = (f"{metrics['family']}: {metrics['utterances']} utterances, resynthesis WER "
            f"{100 * metrics['wer']:.1f} %{format_interval(ci.get('wer'), 100)} "
            f"(CER {100 * metrics['cer']:.1f} %{format_interval(ci.get('cer'), 100)}), "
            f"input WER {100 * metrics['input_wer']:.1f} %"
            f"{format_interval(ci.get('input_wer'), 100)}, {len(metrics['failures'])} failed")
    if "wer" in ci:
        line += f" ({100 * ci['wer']['confidence']:g} % bootstrap intervals over utterances)"
    return line
