"""Spread over seeds: mean ± standard deviation, a percentile-bootstrap confidence interval,
and which differences between two models those intervals resolve.

A comparison trains every model with several seeds; each metric then has one value per
seed. `summarize` gives the numbers the report prints; `comparison_sentence` says whether
two models are ranked (their intervals do not overlap) or not resolved (they overlap, or a
model has one seed and so no interval).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0  # fixed: the same values always give the same interval


def bootstrap_interval(values: Sequence[float], confidence: float = CONFIDENCE,
                       resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of `values` (Efron & Tibshirani 1993, ch. 13).

        m_b = mean of n values drawn with replacement from the n values,   b = 1..B
        CI  = [q_{α/2}(m_1..m_B), q_{1−α/2}(m_1..m_B)],   α = 1 − confidence

    with B = `resamples`, the draws `np.random.default_rng(seed).integers(0, n, (B, n))` and
    the quantiles by `np.percentile` (linear interpolation). Over seeds n is small, and the
    interval is then as wide as it can be: for n ≤ 3 at 95 %, a resample of n copies of the
    smallest value has probability n⁻ⁿ ≥ 1/27 > 2.5 %, so the interval is [min, max].
    A bootstrap from a handful of seeds still understates the true uncertainty; read
    non-overlapping intervals as "resolved at this budget", not as a significance test.
    """
    x = np.asarray(values, np.float64)
    if x.ndim != 1 or len(x) < 2:
        raise ValueError(f"need at least 2 values for an interval, got {x.shape}")
    if not 0 < confidence < 1 or resamples < 1:
        raise ValueError(f"need 0 < confidence < 1 and resamples >= 1, got {confidence}, {resamples}")
    draws = np.random.default_rng(seed).integers(0, len(x), (resamples, len(x)))
    alpha = 1.0 - confidence
    low, high = np.percentile(x[draws].mean(axis=1), [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """{"mean", "std" (ddof = 1), "ci" ([low, high], `bootstrap_interval`), "n", "values"}.

    With one value there is no spread: "std" and "ci" are None.
    """
    x = [float(value) for value in values]
    if not x:
        raise ValueError("nothing to summarise")
    if len(x) == 1:
        return {"mean": x[0], "std": None, "ci": None, "n": 1, "values": x}
    return {"mean": float(np.mean(x)), "std": float(np.std(x, ddof=1)),
            "ci": list(bootstrap_interval(x)), "n": len(x), "values": x}


def intervals_overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether the closed intervals [a₀, a₁] and [b₀, b₁] share a point."""
    return a[0] <= b[1] and b[0] <= a[1]


def comparison_sentence(label: str, lower_is_better: bool, name_a: str, a: dict[str, Any],
                        name_b: str, b: dict[str, Any]) -> str:
    """One line on two models' `summarize` results for the metric `label`.

    Ranked only when both have an interval and the intervals do not overlap, the better
    model first ("FID: GAN < VAE (intervals do not overlap)"); otherwise "not resolved",
    with the reason ("FID: GAN vs VAE not resolved (intervals overlap)").
    """
    if a["ci"] is None or b["ci"] is None:
        one = name_a if a["ci"] is None else name_b
        return f"{label}: {name_a} vs {name_b} not resolved ({one}: 1 seed, no interval)"
    if intervals_overlap(a["ci"], b["ci"]):
        return f"{label}: {name_a} vs {name_b} not resolved (intervals overlap)"
    a_first = (a["mean"] < b["mean"]) == lower_is_better
    better, worse = (name_a, name_b) if a_first else (name_b, name_a)
    return f"{label}: {better} {'<' if lower_is_better else '>'} {worse} (intervals do not overlap)"
