"""Decode lists of texts with a trained model: what ``vadusa decode`` and ``synthesize`` run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vadusa.atomic import write_text_atomic
from vadusa.config import DecodingConfig
from vadusa.decoding.ar import ar_decode_batch
from vadusa.decoding.sampling import SamplingConfig
from vadusa.model.loading import SynthesisInputError, TTSBundle, synthesis_prefix


@dataclass(frozen=True)
class Request:
    index: int  # keys the randomness of this utterance
    text: str
    speaker: str | None


def read_texts(path: Path) -> list[Request]:
    """One utterance per line: ``text`` or ``speaker<TAB>text``; blank lines are skipped."""
    if not path.is_file():
        raise SynthesisInputError(f"text list not found: {path}")
    requests = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        speaker, text = line.split("\t", 1) if "\t" in line else (None, line)
        requests.append(Request(len(requests), text.strip(), speaker and speaker.strip()))
    if not requests:
        raise SynthesisInputError(f"{path}: no texts")
    return requests


def sampling_of(cfg: DecodingConfig) -> SamplingConfig:
    return SamplingConfig(temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p)


def decode_requests(bundle: TTSBundle, requests: list[Request], cfg: DecodingConfig
                    ) -> Iterator[dict[str, Any]]:
    """AR-decode requests in batches of ``cfg.batch_size``; one record per request."""
    prepared = [(r, *synthesis_prefix(bundle, r.text, r.speaker, None,
                                      cfg.max_tokens_per_symbol)) for r in requests]
    for start in range(0, len(prepared), cfg.batch_size):
        chunk = prepared[start:start + cfg.batch_size]
        results = ar_decode_batch(
            bundle.model, [prefix for _, prefix, _ in chunk],
            speech_offset=bundle.vocab.speech_offset, eos=bundle.vocab.eos,
            max_new=[budget for _, _, budget in chunk], sampling=sampling_of(cfg),
            seed=cfg.seed, utterances=[r.index for r, _, _ in chunk])
        for (request, _, _), result in zip(chunk, results, strict=True):
            yield {"index": request.index, "text": request.text, "speaker": request.speaker,
                   "method": "ar", "tokens": result.tokens, "stopped_at_eos": result.stopped,
                   "seconds": result.seconds, "forwards": result.forwards,
                   "batch_size": len(chunk), "accept_lengths": result.accept_lengths,
                   "tokens_per_second": len(result.tokens) / result.seconds,
                   "audio_seconds": len(result.tokens) / bundle.frame_rate}


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in records))
