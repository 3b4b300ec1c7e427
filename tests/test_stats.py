"""Bootstrap intervals over utterances and the per-utterance error counts they resample."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from vadusa.data import audio
from vadusa.eval import stats
from vadusa.eval.evaluate import format_evaluation
from vadusa.eval.resynthesize import Item, format_resynthesis, resynthesize
from vadusa.eval.stats import bootstrap_mean, bootstrap_ratio, format_interval
from vadusa.eval.wer import error_rates, utterance_errors

KEYS = {"mean", "low", "high", "resamples", "confidence"}


def test_single_value_collapses_the_interval() -> None:
    ci = bootstrap_mean([0.3])
    assert set(ci) == KEYS and ci["low"] == ci["high"] == ci["mean"] == 0.3
    assert ci["resamples"] == 2000 and ci["confidence"] == 0.95
    r = bootstrap_ratio([1], [3])
    assert r["low"] == r["high"] == r["mean"] == 1 / 3


def test_constant_sample_collapses_the_interval() -> None:
    ci = bootstrap_mean([2.5] * 50)  # 2.5 * k is exact in binary: no rounding at all
    assert ci["low"] == ci["high"] == ci["mean"] == 2.5
    # 0.1 is not exact: a mean of 37 copies may be off by an ulp or two, nothing more
    ci = bootstrap_mean([0.1] * 37)
    assert ci["low"] == pytest.approx(0.1, abs=1e-15) and ci["high"] == pytest.approx(0.1,
                                                                                       abs=1e-15)


def test_normal_sample_matches_the_normal_interval() -> None:
    n = 2000
    x = np.random.default_rng(123).normal(10.0, 2.0, n)
    se = x.std(ddof=1) / math.sqrt(n)
    ci = bootstrap_mean(x)
    assert ci["mean"] == pytest.approx(x.mean())
    # With 2000 resamples the 2.5 % / 97.5 % quantiles of the bootstrap distribution carry a
    # Monte Carlo error of sqrt(0.025 * 0.975 / 2000) / phi(1.96) ~ 0.06 standard errors;
    # 0.25 standard errors is four of those (and the draws are seeded: no flakiness).
    assert ci["low"] == pytest.approx(x.mean() - 1.96 * se, abs=0.25 * se)
    assert ci["high"] == pytest.approx(x.mean() + 1.96 * se, abs=0.25 * se)
    wider = bootstrap_mean(x, confidence=0.99)
    assert wider["low"] < ci["low"] and wider["high"] > ci["high"]


def test_seed_determines_the_interval() -> None:
    x = np.random.default_rng(7).exponential(1.0, 200)
    assert bootstrap_mean(x, seed=3) == bootstrap_mean(x, seed=3)
    a, b = bootstrap_mean(x, seed=3), bootstrap_mean(x, seed=4)
    assert a["mean"] == b["mean"] and (a["low"], a["high"]) != (b["low"], b["high"])
    num, den = x, np.ones_like(x) * 2
    assert bootstrap_ratio(num, den, seed=5) == bootstrap_ratio(num, den, seed=5)
    assert bootstrap_ratio(num, den, seed=5) != bootstrap_ratio(num, den, seed=6)


def test_chunking_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.random.default_rng(8).normal(size=300)
    whole = bootstrap_mean(x, resamples=500)
    monkeypatch.setattr(stats, "_CHUNK_ELEMENTS", 7 * 300 + 5)  # 7 rows a chunk, ragged end
    assert bootstrap_mean(x, resamples=500) == whole


def test_ratio_is_the_percentile_bootstrap_of_a_ratio_of_sums() -> None:
    num = np.array([3.0, 0.0, 5.0, 1.0, 2.0])
    den = np.array([4.0, 2.0, 9.0, 1.0, 7.0])
    idx = np.random.default_rng(11).integers(0, 5, size=(1000, 5))
    by_hand = np.percentile(num[idx].sum(1) / den[idx].sum(1), [5.0, 95.0])
    ci = bootstrap_ratio(num, den, resamples=1000, confidence=0.9, seed=11)
    assert (ci["low"], ci["high"]) == tuple(by_hand) and ci["mean"] == 11 / 23


def test_ratio_of_sums_differs_from_mean_of_ratios() -> None:
    # one utterance with 1 error in 1 word, one with 0 errors in 9 words: the corpus rate is
    # 1 / 10, the mean of per-utterance rates (1 + 0) / 2
    ratio = bootstrap_ratio([1, 0], [1, 9])
    mean = bootstrap_mean([1 / 1, 0 / 9])
    assert ratio["mean"] == pytest.approx(0.1) and mean["mean"] == 0.5
    # two utterances: the resamples are {a, a} -> 1, {b, b} -> 0, {a, b} -> 0.1 with
    # probabilities 1/4, 1/4, 1/2, so the 2.5 % and 97.5 % points are 0 and 1
    assert (ratio["low"], ratio["high"]) == (0.0, 1.0)


def test_ratio_drops_resamples_with_a_zero_denominator() -> None:
    # {b, b} has no reference words: its ratio is undefined, ~1/4 of the draws are left out
    ci = bootstrap_ratio([1, 0], [1, 0], resamples=4000)
    assert 2700 < ci["resamples"] < 3300 and ci["low"] == ci["high"] == ci["mean"] == 1.0


@pytest.mark.parametrize(("call", "problem"), [
    (lambda: bootstrap_mean([]), "empty"),
    (lambda: bootstrap_ratio([], []), "empty"),
    (lambda: bootstrap_ratio([1, 2], [3]), "2 numerators but 1 denominators"),
    (lambda: bootstrap_mean([1.0, float("nan")]), "non-finite"),
    (lambda: bootstrap_ratio([1.0, 2.0], [1.0, float("inf")]), "non-finite"),
    (lambda: bootstrap_mean([[1.0, 2.0]]), "flat"),
    (lambda: bootstrap_mean([1.0], confidence=0.0), "confidence"),
    (lambda: bootstrap_mean([1.0], confidence=1.0), "confidence"),
    (lambda: bootstrap_mean([1.0], confidence=95), "confidence"),
    (lambda: bootstrap_mean([1.0], confidence=float("nan")), "confidence"),
    (lambda: bootstrap_mean([1.0], resamples=0), "resamples"),
    (lambda: bootstrap_ratio([1, 2], [0, 0]), "sum to zero"),
])
def test_bad_inputs(call, problem: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=problem):
        call()


def test_utterance_errors_on_fixed_strings() -> None:
    assert utterance_errors(["the cat sat"], ["the cat sat down"]) == [
        {"word_errors": 1, "words": 3, "char_errors": 5, "chars": 11}]  # " down": 5 chars
    # normalization as in error_rates: case, punctuation and digits do not count
    assert utterance_errors(["One, two!"], ["one 2"]) == [
        {"word_errors": 0, "words": 2, "char_errors": 0, "chars": 7}]
    with pytest.raises(ValueError, match="non-empty"):
        utterance_errors(["..."], ["anything"])


def test_utterance_errors_sum_to_the_corpus_rates() -> None:
    refs = ["the cat sat on the mat", "a b c", "Hello, World! It's 42.", "rock & roll"]
    hyps = ["the dog sat on mat", "a b c d", "hello word its forty", ""]
    rows, rates = utterance_errors(refs, hyps), error_rates(refs, hyps)
    assert [r["word_errors"] for r in rows] == [2, 1, 3, 3]
    words = sum(r["words"] for r in rows)
    assert words == rates.words
    # the same integers divided the same way: equal to the last bit, not approximately
    assert sum(r["word_errors"] for r in rows) / words == rates.wer
    assert sum(r["char_errors"] for r in rows) / sum(r["chars"] for r in rows) == rates.cer
    ci = bootstrap_ratio([r["word_errors"] for r in rows], [r["words"] for r in rows])
    assert ci["mean"] == rates.wer and ci["low"] <= rates.wer <= ci["high"]


def test_summary_lines_show_the_intervals() -> None:
    assert format_interval({"low": 0.2794, "high": 0.3461}, 100) == " [27.9, 34.6]"
    assert format_interval(None) == ""
    ci = {"low": 0.279, "high": 0.346, "mean": 0.312, "resamples": 2000, "confidence": 0.95}
    metrics = {"family": "toy", "utterances": 3, "failures": [], "wer": 0.312, "cer": 0.1,
               "input_wer": 0.05, "ci": {"wer": ci}}
    line = format_resynthesis(metrics)
    assert "WER 31.2 % [27.9, 34.6] (CER 10.0 %)" in line and "95 % bootstrap" in line
    del metrics["ci"]  # a metrics.json written before the intervals existed
    assert "[" not in format_resynthesis(metrics)
    metrics.update(method="ar", tokens_per_second=50.0, real_time_factor=0.5,
                   ci={"wer": ci, "tokens_per_second": {**ci, "low": 45.04, "high": 55.0}})
    line = format_evaluation(metrics)
    assert "WER 31.2 % [27.9, 34.6]" in line and "50.0 tokens/s [45.0, 55.0]" in line


class _Tokenizer:
    family = "toy"

    def encode(self, wave: np.ndarray, rate: int) -> np.ndarray:
        return np.zeros(len(wave) // 320, dtype=np.int64)


class _Vocoder:
    speakers = ["s0"]

    def decode(self, tokens: np.ndarray, speaker: str) -> tuple[np.ndarray, int]:
        return np.zeros(len(tokens) * 320, dtype=np.float32), 16000


class _Judge:
    """Hears "one two" in every clip: the error counts are then known."""

    name = "echo"

    def transcribe(self, wave: np.ndarray, rate: int) -> str:
        return "one two"


def test_resynthesis_metrics_carry_intervals(tmp_path: Path) -> None:
    items = []
    for i, text in enumerate(["one two.", "one two three four.", "one"]):
        audio.write_wav(tmp_path / f"{i}.wav", np.zeros(16000, dtype=np.float32), 16000)
        items.append(Item(str(i), str(tmp_path / f"{i}.wav"), text))
    metrics = resynthesize(items, _Tokenizer(), _Vocoder(), _Judge(), tmp_path / "out")
    rows = metrics["per_utterance"]
    assert [(r["word_errors"], r["words"]) for r in rows] == [(0, 2), (2, 4), (1, 1)]
    assert [r["word_errors_input"] for r in rows] == [0, 2, 1]
    assert metrics["wer"] == pytest.approx(3 / 7)  # existing keys unchanged
    assert set(metrics["ci"]) == {"wer", "cer", "input_wer", "input_cer"}
    for key in metrics["ci"]:
        ci = metrics["ci"][key]
        assert ci["mean"] == metrics[key] and ci["low"] <= ci["mean"] <= ci["high"]
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["ci"] == metrics["ci"]
    assert "WER 42.9 % [" in format_resynthesis(metrics)
