"""Decode lists of texts with a trained model: what ``vadusa decode`` and ``synthesize`` run."""

from __future__ import annotations

import functools
import json
import re
import sys
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vadusa.atomic import write_text_atomic
from vadusa.config import DecodingConfig
from vadusa.decoding.acceptance import AcceptRule
from vadusa.decoding.ar import DecodeResult, ar_decode, ar_decode_batch
from vadusa.decoding.sampling import SamplingConfig
from vadusa.decoding.speculative import DraftModelDecoder
from vadusa.decoding.timing import fastest_tree
from vadusa.decoding.tree import chain_tree, full_tree, greedy_tree, load_tree, tree_buffers
from vadusa.decoding.vadusa import VadusaDecoder
from vadusa.model.loading import (
    Prefix,
    SynthesisInputError,
    TTSBundle,
    load_tts,
    resolve_speaker,
    synthesis_prefix,
)


@dataclass(frozen=True)
class Request:
    index: int  # keys the randomness of this utterance
    text: str
    speaker: str | None
    # the acoustic prompt the model continues: (its text, its speech tokens), and the id of
    # the utterance it comes from ("" for a recording given by hand); None: the speaker's
    # stored prompt, if the model has one (data/prompts.py has the zero-shot protocol)
    prompt: tuple[str, tuple[int, ...]] | None = None
    prompt_id: str = ""


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


def resolve_tree(bundle: TTSBundle, spec: str | int, n_heads: int) -> list[tuple[int, ...]]:
    """``decoding.tree``: a node count (a greedy tree from the checkpoint's dev acceptance
    table), ``fastest`` (the greedy tree of the size that promises the most tokens per second
    on this machine and precision, ``timing.fastest_tree``; chosen once per model), ``chain:D``
    (top-1 of heads 1..D), ``full:WxD`` (every rank below W to depth D), or a tree file
    written by ``vadusa calibrate``."""
    text = str(spec).strip()
    if text.isdigit():
        table = bundle.meta["heads"]["rank_acc"][:n_heads]
        return greedy_tree(table, int(text))
    if text == "fastest":
        return _fastest(bundle, n_heads)
    if text.startswith("chain:") and text[6:].isdigit():
        paths = chain_tree(int(text[6:]))
    elif text.startswith("full:") and re.fullmatch(r"\d+x\d+", text[5:]):
        width, depth = (int(x) for x in text[5:].split("x"))
        paths = full_tree(width, depth)
    else:
        paths, _ = load_tree(Path(text))
    depth = max(len(p) for p in paths)
    if depth > n_heads:
        raise SynthesisInputError(f"tree {text} is {depth} deep, but {n_heads} draft heads "
                                  f"are in use (decoding.heads); use more heads or a "
                                  f"shallower tree")
    return paths


# the choice per model (weakly: a freed model's entry goes with it) and heads used
_FASTEST: weakref.WeakKeyDictionary[torch.nn.Module, dict[int, list[tuple[int, ...]]]] = (
    weakref.WeakKeyDictionary())


def _fastest(bundle: TTSBundle, n_heads: int) -> list[tuple[int, ...]]:
    chosen = _FASTEST.setdefault(bundle.model, {})
    if n_heads not in chosen:
        paths, scores = fastest_tree(bundle, bundle.meta["heads"]["rank_acc"][:n_heads])
        print("decoding.tree fastest: " + ", ".join(
            f"{n} nodes {s['expected_length']:.2f} / {s['forward_ms']:.2f} ms"
            for n, s in scores.items()) + f" -> {len(paths)} nodes", file=sys.stderr)
        chosen[n_heads] = paths
    return chosen[n_heads]


def vadusa_decoder(bundle: TTSBundle, cfg: DecodingConfig, compile: str = "") -> VadusaDecoder:
    """The speculative decoder a decoding config asks for (heads, tree, acceptance rule);
    ``compile``: fixed shapes and a compiled tree pass (``decoding/static.py``)."""
    if bundle.heads is None:
        raise SynthesisInputError(
            "--method vadusa needs draft heads: pass a heads.pt from `vadusa train-heads` or "
            "`vadusa train-joint`, not a base.pt")
    n_heads = cfg.heads or len(bundle.heads)
    if n_heads > len(bundle.heads):
        raise SynthesisInputError(f"decoding.heads={n_heads}, but the checkpoint has "
                                  f"{len(bundle.heads)} draft heads")
    rule = AcceptRule(cfg.acceptance, cfg.tau, cfg.typical_epsilon, cfg.typical_delta)
    tree = tree_buffers(resolve_tree(bundle, cfg.tree, n_heads))
    return VadusaDecoder(bundle.model, bundle.heads, tree, rule, sampling_of(cfg),
                         speech_offset=bundle.vocab.speech_offset, eos=bundle.vocab.eos,
                         n_heads=n_heads, compile=compile)


def check_draft(bundle: TTSBundle, draft: TTSBundle, name: str = "the draft model") -> None:
    """Refuse a draft model that cannot serve ``bundle``: it must read the same prefixes
    (text symbols, speakers) and emit the same tokens (family, quantizer, vocabulary)."""
    differences = []
    if draft.family != bundle.family:
        differences.append(f"token family {draft.family!r}, the target's {bundle.family!r}")
    elif draft.meta.get("quantizer") != bundle.meta.get("quantizer"):
        differences.append("tokens from another quantizer (k-means) of the same family")
    if draft.vocab != bundle.vocab:
        differences.append(f"vocabulary {vars(draft.vocab)}, the target's {vars(bundle.vocab)}")
    if draft.symbols != bundle.symbols:
        differences.append(f"text symbols ({len(draft.symbols)}, {draft.symbols.frontend}), "
                           f"the target's ({len(bundle.symbols)}, {bundle.symbols.frontend})")
    if draft.speakers != bundle.speakers:
        differences.append(f"speakers {draft.speakers}, the target's {bundle.speakers}")
    if draft.max_seq < bundle.max_seq:
        differences.append(f"model.max_seq={draft.max_seq}, the target's {bundle.max_seq}")
    if differences:
        raise SynthesisInputError(
            f"{name} does not fit the target model: it has {'; '.join(differences)}. Train "
            f"the draft on the target's corpus and tokens with the target's config: `vadusa "
            f"train-draft --config ... --family {bundle.family} --corpus ... --tokens ...`")


def load_draft(bundle: TTSBundle, cfg: DecodingConfig) -> TTSBundle:
    """The draft model of ``cfg.draft_checkpoint``, checked against ``bundle`` and on its
    device and in its precision. Loaded once per file, device and precision: callers that
    cannot pass a draft along (evaluation, synthesis) ask again and get the same one."""
    if not cfg.draft_checkpoint:
        raise SynthesisInputError("--method draft needs a draft model: pass --draft "
                                  "DIR/base.pt from `vadusa train-draft` "
                                  "(decoding.draft_checkpoint)")
    path = Path(cfg.draft_checkpoint)
    if not path.is_file():
        raise SynthesisInputError(f"draft model not found: {path} (decoding.draft_checkpoint)")
    weight = bundle.model.head.weight
    draft = _load_draft(str(path.resolve()), path.stat().st_mtime_ns, str(weight.device),
                        weight.dtype)
    check_draft(bundle, draft, str(path))
    return draft


@functools.lru_cache(maxsize=4)
def _load_draft(path: str, modified: int, device: str, dtype: torch.dtype) -> TTSBundle:
    """``modified`` is in the key so that a retrained draft is loaded again."""
    return load_tts(path, device, dtype=dtype)


def draft_decoder(bundle: TTSBundle, cfg: DecodingConfig, draft: TTSBundle | None = None
                  ) -> DraftModelDecoder:
    """The draft-model speculative decoder of a decoding config: ``draft`` (default: the
    model of ``cfg.draft_checkpoint``) proposes ``cfg.draft_tokens`` tokens per step."""
    if draft is None:
        draft = load_draft(bundle, cfg)
    else:
        check_draft(bundle, draft, cfg.draft_checkpoint or "the draft model")
    draft = draft.to(bundle.dtype)  # a copy only where the precisions differ
    return DraftModelDecoder(bundle.model, draft.model, sampling_of(cfg),
                             speech_offset=bundle.vocab.speech_offset, eos=bundle.vocab.eos,
                             gamma=cfg.draft_tokens)


def request_prefix(bundle: TTSBundle, request: Request, cfg: DecodingConfig) -> Prefix:
    """The prefix a request decodes from: its text, for its speaker, after its prompt."""
    prompt = None if request.prompt is None else (request.prompt[0], list(request.prompt[1]))
    return synthesis_prefix(bundle, request.text, request.speaker, prompt,
                            cfg.max_tokens_per_symbol, cfg.speaking_rate)


def decode_prefix(bundle: TTSBundle, prefix: Prefix, cfg: DecodingConfig,
                  utterance: int = 0, draft: TTSBundle | None = None) -> DecodeResult:
    """One utterance with the method of ``cfg`` (what ``vadusa synthesize`` runs); ``draft``:
    the draft model of ``--method draft`` when the caller already loaded it."""
    device = bundle.model.head.weight.device
    ids = prefix.ids.to(device)
    if cfg.method == "vadusa":
        return vadusa_decoder(bundle, cfg).decode(ids, max_new=prefix.budget, seed=cfg.seed,
                                                  utterance=utterance, frames=prefix.frames)
    if cfg.method == "draft":
        return draft_decoder(bundle, cfg, draft).decode(ids, max_new=prefix.budget,
                                                        seed=cfg.seed, utterance=utterance,
                                                        frames=prefix.frames)
    return ar_decode(bundle.model, ids, speech_offset=bundle.vocab.speech_offset,
                     eos=bundle.vocab.eos, max_new=prefix.budget, sampling=sampling_of(cfg),
                     seed=cfg.seed, utterance=utterance, frames=prefix.frames)


def decode_requests(bundle: TTSBundle, requests: list[Request], cfg: DecodingConfig,
                    decoder: VadusaDecoder | DraftModelDecoder | None = None,
                    draft: TTSBundle | None = None, compile: str = ""
                    ) -> Iterator[dict[str, Any]]:
    """Decode requests (AR in batches of ``cfg.batch_size``; VADUSA and draft-model decoding
    one at a time); one record per request. ``decoder``: the speculative decoder of ``cfg``
    when the caller already built it (a benchmark calling this utterance by utterance);
    ``draft``: the draft model of ``--method draft`` when the caller already loaded it;
    ``compile``: AR and VADUSA steps compiled with fixed shapes (``decoding/static.py``;
    the draft-model decoder stays eager)."""
    prepared = [(r, request_prefix(bundle, r, cfg)) for r in requests]
    if cfg.method in ("vadusa", "draft"):
        if cfg.batch_size != 1:
            name = "VADUSA" if cfg.method == "vadusa" else "Draft-model decoding"
            raise SynthesisInputError(f"{name} decodes one utterance at a time: use "
                                      "decoding.batch_size=1 (--batch-size 1)")
        if decoder is None:
            decoder = (vadusa_decoder(bundle, cfg, compile) if cfg.method == "vadusa"
                       else draft_decoder(bundle, cfg, draft))
        device = bundle.model.head.weight.device
        for request, prefix in prepared:
            result = decoder.decode(prefix.ids.to(device), max_new=prefix.budget, seed=cfg.seed,
                                    utterance=request.index, frames=prefix.frames)
            yield _record(bundle, request, result, cfg.method, 1, prefix)
        return
    for start in range(0, len(prepared), cfg.batch_size):
        chunk = prepared[start:start + cfg.batch_size]
        results = ar_decode_batch(
            bundle.model, [prefix.ids for _, prefix in chunk],
            speech_offset=bundle.vocab.speech_offset, eos=bundle.vocab.eos,
            max_new=[prefix.budget for _, prefix in chunk], sampling=sampling_of(cfg),
            seed=cfg.seed, utterances=[r.index for r, _ in chunk],
            frames=None if chunk[0][1].frames is None else [p.frames for _, p in chunk],
            compile=compile)
        for (request, prefix), result in zip(chunk, results, strict=True):
            yield _record(bundle, request, result, "ar", len(chunk), prefix)


def _record(bundle: TTSBundle, request: Request, result: DecodeResult, method: str,
            batch_size: int, prefix: Prefix) -> dict[str, Any]:
    """One decoded request; with durations, the plan it was decoded with (``lead`` frames of
    silence and the frames of each text symbol) and those symbols."""
    plan = {}
    if prefix.durations is not None:
        plan = {"plan": {"lead": prefix.durations[0], "durations": prefix.durations[1],
                         "symbols": [bundle.symbols.symbols[s] for s in prefix.text]}}
    prompt = {} if request.prompt is None else {"prompt": request.prompt_id or "given"}
    return plan | prompt | {"index": request.index, "text": request.text,
            "speaker": resolve_speaker(bundle, request.speaker),
            "method": method, "tokens": result.tokens, "stopped_at_eos": result.stopped,
            "seconds": result.seconds, "forwards": result.forwards,
            "batch_size": batch_size, "accept_lengths": result.accept_lengths,
            "prefix_length": len(prefix.ids),
            "tokens_per_second": len(result.tokens) / result.seconds,
            "audio_seconds": len(result.tokens) / bundle.frame_rate}


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in records))
