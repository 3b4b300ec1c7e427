"""Losslessness on tokens: tau = 1 VADUSA (MEDUSA, Hydra and shared heads), batched AR and
compiled decoding emit AR's token sequences one for one, on a duration-aligned model.

A count of tokens says almost nothing here: with durations the plan fixes each utterance's
length, so every setting that runs to the plan's end has AR's count whatever it emitted.
These tests compare each utterance's sequence, and ``vadusa bench``'s digest of them
(``tokens_sha256``), and require that drafts were accepted (a pass that never accepts a draft
is AR with extra steps: lossless by construction, and no test of the acceptance path).

The model is the toy corpus's (``aligned_heads`` in conftest.py): the pipeline's whisper
model is duration-aligned like it, and decoding does not read the token family. float32, the
precision the pipeline decodes in where it promises losslessness (bfloat16 rounds a
one-token step and a tree pass differently; its rows get a digest, no equality).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from vadusa.config import DecodingConfig
from vadusa.decoding.bench import (
    ar_settings,
    bench,
    tokens_digest,
    vadusa_settings,
)
from vadusa.decoding.run import Request, decode_prefix, request_prefix
from vadusa.model.loading import TTSBundle, load_tts

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py

# lengths differ (so batched AR pads its rows) and 4 does not divide into batches of 3 (a
# full batch, then a batch of one: request order across batches)
REQUESTS = [Request(0, "one two three.", "s0"), Request(1, "six five four two.", "s1"),
            Request(2, "two one.", "s0"), Request(3, "four four six one five.", "s1")]
# the pipeline's sampling (temperature 0.7), keyed by this seed
DECODING = replace(DecodingConfig(), seed=3)
KINDS = ("vadusa", "hydra", "shared")  # MEDUSA heads' rows are named "vadusa-..."
BATCH = 3


def settings(compile: str) -> list:
    """AR at batch 1 and 3; tau = 1 with each kind of heads (MEDUSA also on a chain). Eager
    only (each is another graph to trace when compiled): AR in bfloat16 (a digest, no
    equality) and MEDUSA at tau = 3 (lossy: other sequences)."""
    rows = ar_settings([BATCH], "" if compile else "bfloat16")
    rows += vadusa_settings([1] if compile else [1, 3], [3], ["6"])
    rows += vadusa_settings([1], [3], ["chain:3"])
    for kind in KINDS[1:]:
        rows += vadusa_settings([1], [3], ["6"], heads_from=kind)
    return rows


@pytest.fixture(scope="module")
def bundles(aligned_heads: dict[str, Path]) -> dict[str, TTSBundle]:
    return {kind: load_tts(aligned_heads["heads" if kind == "vadusa" else kind],
                           dtype=torch.float32) for kind in KINDS}


def race(bundles: dict[str, TTSBundle], compile: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """``vadusa bench``'s rows by setting, each with its sequences; ``compile="eager"``:
    ``--compile eager`` (dynamo traces each step into one graph with fullgraph=True and runs
    it: fixed shapes, the cache kept between utterances, slots written by index)."""
    torch._dynamo.reset()
    rows = bench(bundles["vadusa"], REQUESTS, DECODING, settings(compile), keep_tokens=True,
                 bounds=False, others={k: bundles[k] for k in KINDS[1:]}, compile=compile)
    return compile, {r["setting"]: r for r in rows}


@pytest.fixture(scope="module")
def eager(bundles: dict[str, TTSBundle]) -> tuple[str, dict[str, dict[str, Any]]]:
    return race(bundles, "")


@pytest.fixture(scope="module")
def compiled(bundles: dict[str, TTSBundle]) -> tuple[str, dict[str, dict[str, Any]]]:
    return race(bundles, "eager")


@pytest.fixture(params=["eager", "compiled"])
def raced(request: pytest.FixtureRequest) -> tuple[str, dict[str, dict[str, Any]]]:
    """The eager race, then the compiled one: every check below holds for both."""
    return request.getfixturevalue(request.param)


def first_difference(got: list[list[int]], want: list[list[int]]) -> str:
    """Where two sets of sequences part: the utterance and the position."""
    if len(got) != len(want):
        return f"{len(got)} sequences vs {len(want)}"
    for n, (a, b) in enumerate(zip(got, want, strict=True)):
        if a != b:
            at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                      min(len(a), len(b)))
            return f"utterance {n}: position {at} of {len(a)} vs {len(b)}"
    return "none"


def test_the_digest_is_sha256_of_the_compact_json_of_the_sequences() -> None:
    assert tokens_digest([[1], [2, 3]]) == hashlib.sha256(b"[[1],[2,3]]").hexdigest()
    assert tokens_digest([[1], [2, 3]]) != tokens_digest([[1, 2], [3]])  # boundaries count
    assert tokens_digest([[1, 2], [3]]) != tokens_digest([[3], [1, 2]])  # so does the order
    assert tokens_digest([]) != tokens_digest([[]])


def test_every_row_carries_the_digest_of_its_sequences(
        raced: tuple[str, dict[str, dict[str, Any]]]) -> None:
    compile, by = raced
    for name, row in by.items():
        assert row["compile"] == (compile or None)
        assert len(row["utterance_tokens"]) == len(REQUESTS), name
        assert row["tokens_sha256"] == tokens_digest(row["utterance_tokens"]), name
        assert row["tokens"] == sum(map(len, row["utterance_tokens"])), name
    if not compile:  # a row in the other precision has one too
        assert by["ar-b1-bfloat16"]["precision"] == "bfloat16"


def test_the_digest_tells_apart_what_a_count_does_not(
        eager: tuple[str, dict[str, dict[str, Any]]]) -> None:
    """tau = 3 accepts drafts AR would not have sampled: other sequences, another digest
    (here, of the same lengths: the duration plan ends speech where AR ends it)."""
    by = eager[1]
    lossy, ar = by["vadusa-h3-n6-t3"], by["ar-b1"]
    assert lossy["utterance_tokens"] != ar["utterance_tokens"]
    assert lossy["tokens_sha256"] != ar["tokens_sha256"]


def test_the_digest_is_written_without_the_tokens(bundles: dict[str, TTSBundle]) -> None:
    """Without ``keep_tokens`` (what ``vadusa bench --out`` writes) the row still names its
    sequences: the digest of what ``decode`` emits for the same requests, in their order."""
    (row,) = bench(bundles["vadusa"], REQUESTS[:2], DECODING, ar_settings([]), bounds=False)
    assert "utterance_tokens" not in row
    alone = [decode_prefix(bundles["vadusa"], request_prefix(bundles["vadusa"], r, DECODING),
                           DECODING, utterance=r.index).tokens for r in REQUESTS[:2]]
    assert row["tokens_sha256"] == tokens_digest(alone)


def test_batched_ar_emits_batch_ones_sequences_in_request_order(
        raced: tuple[str, dict[str, dict[str, Any]]], bundles: dict[str, TTSBundle]) -> None:
    """Rows padded to the longest prefix, each with its own positions and frame table,
    decode as they would alone; the batch of 3 and the batch of 1 after it keep the
    requests' order."""
    _, by = raced
    one, batched = by["ar-b1"], by[f"ar-b{BATCH}"]
    assert all(one["utterance_tokens"]), "an empty sequence"
    assert batched["utterance_tokens"] == one["utterance_tokens"], first_difference(
        batched["utterance_tokens"], one["utterance_tokens"])
    assert batched["tokens_sha256"] == one["tokens_sha256"]
    # request order: utterance n is request n's own decoding (its text, voice and key)
    bundle = bundles["vadusa"]
    for request, tokens in zip(REQUESTS, one["utterance_tokens"], strict=True):
        alone = decode_prefix(bundle, request_prefix(bundle, request, DECODING), DECODING,
                              utterance=request.index)
        assert alone.tokens == tokens, request


@pytest.mark.parametrize("setting", ["vadusa-h3-n6-t1", "vadusa-h3-chain3-t1",
                                     "hydra-h3-n6-t1", "shared-h3-n6-t1"])
def test_tau_one_emits_ars_sequences_and_accepts_drafts(
        raced: tuple[str, dict[str, dict[str, Any]]], setting: str) -> None:
    """MEDUSA (a greedy tree and a chain), Hydra and shared heads on the same frozen base:
    at tau = 1 every utterance is AR's sequence, token for token, in fewer forwards."""
    _, by = raced
    ar, row = by["ar-b1"], by[setting]
    assert row["tau"] == 1 and row["method"] == "vadusa"
    assert all(ar["utterance_tokens"]), "an empty sequence"
    assert row["utterance_tokens"] == ar["utterance_tokens"], first_difference(
        row["utterance_tokens"], ar["utterance_tokens"])
    assert row["tokens_sha256"] == ar["tokens_sha256"]
    # drafts were accepted: more than one token per forward, fewer forwards than AR
    assert row["mean_accepted"] > 1.0, row["accept_length_histogram"]
    assert row["forwards_per_utterance"] < ar["forwards_per_utterance"]


def test_compiled_steps_emit_the_eager_sequences(
        eager: tuple[str, dict[str, dict[str, Any]]],
        compiled: tuple[str, dict[str, dict[str, Any]]]) -> None:
    """Compiled AR (batch 1 and batched) and compiled tree passes: the eager run's sequences,
    with the same drafts accepted in the same passes."""
    reference, by = eager[1], compiled[1]
    assert set(by) <= set(reference) and "vadusa-h3-n6-t1" in by
    for name, row in by.items():
        assert row["utterance_tokens"] == reference[name]["utterance_tokens"], (
            name, first_difference(row["utterance_tokens"],
                                   reference[name]["utterance_tokens"]))
        assert row["tokens_sha256"] == reference[name]["tokens_sha256"]
        assert row["accept_length_histogram"] == reference[name]["accept_length_histogram"], \
            name
