"""Bootstrap confidence intervals for evaluation metrics, resampling utterances.

A WER measured on a few hundred utterances is an estimate: another draw of sentences from the
same distribution would give a different number. The percentile bootstrap says how different:
draw the evaluated utterances with replacement many times, recompute the metric on each draw,
and take the middle ``confidence`` share of the recomputed values as the interval. It assumes
nothing about the metric's distribution, which matters here: per-utterance error rates are
skewed and bounded below by zero.

The utterance is the unit that is resampled, never the word: the words of one sentence share
its speaker, its length and its synthesis, so they are not independent draws. Corpus-level
rates (errors over all reference words, as ``vadusa.eval.wer.error_rates`` computes them) are
ratios of sums, so ``bootstrap_ratio`` resamples (numerator, denominator) pairs and recomputes
the ratio of sums; ``bootstrap_mean`` is for figures that are plain means over utterances.

Every call draws its resample indices from ``numpy.random.default_rng(seed)``: the same seed
gives the same interval, and two metrics of the same utterances bootstrapped with the same seed
are computed on the same resamples (a paired comparison). Indices are drawn in chunks of rows,
so memory stays bounded for large samples; numpy draws the same stream whatever the chunk size,
so the result does not depend on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

# Upper bound on the elements of one chunk of the (resamples, n) index matrix: 2**22 int64
# indices plus the gathered float64 values are about 64 MiB.
_CHUNK_ELEMENTS = 1 << 22


def _as_sample(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty: a bootstrap needs at least one utterance")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds non-finite values (nan or inf)")
    return array


def _check_settings(resamples: int, confidence: float) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, int | np.integer) \
            or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
    if not 0.0 < confidence < 1.0:  # also false for nan
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")


def _index_chunks(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Rows of the (resamples, n) matrix of utterance indices, a bounded chunk at a time."""
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, resamples, rows):
        yield rng.integers(0, n, size=(min(rows, resamples - start), n))


def _bootstrap(n: int, statistic: Callable[[np.ndarray], np.ndarray], point: float,
               resamples: int, confidence: float, seed: int) -> dict[str, float | int]:
    replicates = np.concatenate([statistic(idx) for idx in _index_chunks(n, resamples, seed)])
    # A ratio is undefined on a resample whose denominators sum to zero; those draws are left
    # out (the bootstrap conditional on a defined ratio) and "resamples" counts the rest.
    replicates = replicates[np.isfinite(replicates)]
    if replicates.size == 0:
        raise ValueError("the statistic is undefined on every resample")
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return {"mean": float(point), "low": float(low), "high": float(high),
            "resamples": int(replicates.size), "confidence": float(confidence)}


def bootstrap_mean(values: Sequence[float] | np.ndarray, *, resamples: int = 2000,
                   confidence: float = 0.95, seed: int = 0) -> dict[str, float | int]:
    """Percentile-bootstrap interval of the mean of per-utterance ``values``.

    Returns ``{"mean", "low", "high", "resamples", "confidence"}``; ``mean`` is the mean of
    ``values`` itself, ``low``/``high`` the interval's ends.
    """
    _check_settings(resamples, confidence)
    x = _as_sample(values, "values")
    return _bootstrap(x.size, lambda idx: x[idx].mean(axis=1), float(x.mean()),
                      resamples, confidence, seed)


def bootstrap_ratio(numerators: Sequence[float] | np.ndarray,
                    denominators: Sequence[float] | np.ndarray, *, resamples: int = 2000,
                    confidence: float = 0.95, seed: int = 0) -> dict[str, float | int]:
    """Percentile-bootstrap interval of ``sum(numerators) / sum(denominators)``.

    Each resample draws utterances (numerator-denominator pairs) with replacement and
    recomputes the ratio of sums: the corpus-level WER is ``bootstrap_ratio(word_errors,
    words)``. Same keys as ``bootstrap_mean``; ``mean`` holds the ratio of the full sample.
    """
    _check_settings(resamples, confidence)
    num = _as_sample(numerators, "numerators")
    den = _as_sample(denominators, "denominators")
    if num.size != den.size:
        raise ValueError(f"{num.size} numerators but {den.size} denominators")
    if den.sum() == 0:
        raise ValueError("denominators sum to zero: the ratio is undefined")

    def ratio(idx: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):  # undefined draws: dropped above
            return num[idx].sum(axis=1) / den[idx].sum(axis=1)

    return _bootstrap(num.size, ratio, float(num.sum() / den.sum()), resamples, confidence,
                      seed)


def format_interval(ci: dict[str, float | int] | None, scale: float = 1.0,
                    digits: int = 1) -> str:
    """`` [low, high]`` for a summary line, in the units of the point estimate times ``scale``
    (100 for a rate shown in %); empty when there is no interval (an older metrics.json)."""
    if not ci:
        return ""
    return f" [{scale * ci['low']:.{digits}f}, {scale * ci['high']:.{digits}f}]"
