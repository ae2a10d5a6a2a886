"""experiments.stats: the bootstrap interval on inputs whose answer is known by enumeration,
the summaries, and the sentences that rank two models or say the difference is not resolved."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from experiments.stats import bootstrap_interval, comparison_sentence, intervals_overlap, summarize


def exact_bootstrap_quantiles(values: list[float], confidence: float) -> tuple[float, float]:
    """The quantiles of the bootstrap distribution itself: all nⁿ equally likely resamples."""
    means = np.sort([np.mean(draw) for draw in itertools.product(values, repeat=len(values))])
    tail = (1 - confidence) / 2 * len(means)
    return float(means[int(np.ceil(tail)) - 1]), float(means[len(means) - int(np.ceil(tail))])


def test_with_two_or_three_seeds_the_95_percent_interval_is_the_range():
    # The all-minimum resample has probability 1/4 (n=2) or 1/27 (n=3), above 2.5 %.
    assert bootstrap_interval([3.0, 1.0]) == (1.0, 3.0)
    assert bootstrap_interval([2.0, 7.0, 4.0]) == (2.0, 7.0)
    assert bootstrap_interval([5.0, 5.0, 5.0]) == (5.0, 5.0)


def test_with_four_seeds_the_interval_is_the_exact_bootstrap_quantiles():
    # 256 equally likely resamples of (0, 1, 2, 10): 5 have a mean ≤ 0.25 (1.95 %), 15 a
    # mean ≤ 0.5 (5.9 %), so the 2.5 % quantile is 0.5; at the top 5 have a mean ≥ 8 and
    # 9 a mean ≥ 7.75, so the 97.5 % quantile is 7.75. 10,000 resamples find both.
    values = [0.0, 1.0, 2.0, 10.0]
    assert exact_bootstrap_quantiles(values, 0.95) == (0.5, 7.75)
    assert bootstrap_interval(values) == (0.5, 7.75)


def test_the_interval_is_deterministic_and_narrows_with_more_seeds():
    values = list(np.random.default_rng(0).normal(10.0, 2.0, 12))
    first = bootstrap_interval(values)
    assert bootstrap_interval(values) == first  # a fixed RNG seed
    assert min(values) < first[0] < np.mean(values) < first[1] < max(values)
    # The interval of the mean is about ±1.96 · s/√n wide for 12 normal values.
    half_width = 1.96 * np.std(values, ddof=1) / np.sqrt(len(values))
    assert (first[1] - first[0]) / 2 == pytest.approx(half_width, rel=0.25)
    with pytest.raises(ValueError):
        bootstrap_interval([1.0])


def test_summarize_gives_mean_sample_std_and_interval_or_none_for_one_seed():
    summary = summarize([1.0, 2.0, 6.0])
    # mean 3; squared deviations 4, 1, 9 → sample variance 14/2 = 7.
    assert summary["mean"] == 3.0 and summary["std"] == pytest.approx(np.sqrt(7.0))
    assert summary["ci"] == [1.0, 6.0] and summary["n"] == 3 and summary["values"] == [1.0, 2.0, 6.0]
    assert summarize([4.5]) == {"mean": 4.5, "std": None, "ci": None, "n": 1, "values": [4.5]}


def test_intervals_overlap_when_they_share_a_point():
    assert intervals_overlap([0, 2], [1, 3]) and intervals_overlap([0, 1], [1, 3])
    assert intervals_overlap([0, 5], [1, 2]) and not intervals_overlap([0, 1], [1.5, 3])


def test_sentences_rank_only_models_whose_intervals_do_not_overlap():
    gan, vae = summarize([70.0, 74.0, 72.0]), summarize([130.0, 135.0, 133.0])
    assert comparison_sentence("FID", True, "VAE", vae, "GAN", gan) == \
        "FID: GAN < VAE (intervals do not overlap)"
    assert comparison_sentence("classifier score", False, "GAN", gan, "VAE", vae) == \
        "classifier score: VAE > GAN (intervals do not overlap)"
    close = summarize([73.0, 76.0, 75.0])
    assert comparison_sentence("FID", True, "GAN", gan, "GAN 2", close) == \
        "FID: GAN vs GAN 2 not resolved (intervals overlap)"
    assert comparison_sentence("FID", True, "GAN", gan, "VAE", summarize([133.0])) == \
        "FID: GAN vs VAE not resolved (VAE: 1 seed, no interval)"
