"""The colour likelihoods of vae.losses against NumPy integrals and sums of the equations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from vae.losses import (
    bits_per_dim,
    continuous_bernoulli_log_likelihood,
    continuous_bernoulli_log_normalizer,
    discretized_logistic_log_likelihood,
    likelihood_mean,
    log_likelihood,
    output_channels,
)
from vae.model import build_vae, importance_weighted_log_likelihood

ETAS = np.array([-30.0, -4.0, -0.5, -0.005, 0.0, 0.003, 0.02, 1.0, 6.0, 40.0])


def cb_density(x: np.ndarray, lam: float) -> np.ndarray:
    """The continuous Bernoulli density C(λ) λ^x (1 − λ)^(1−x) on a grid of x, in float64."""
    norm = 2.0 if abs(lam - 0.5) < 1e-12 else 2 * np.arctanh(1 - 2 * lam) / (1 - 2 * lam)
    return norm * lam ** x * (1 - lam) ** (1 - x)


def one_pixel(values) -> tf.Tensor:
    """(N,) → (N, 1, 1, 1): one image of one pixel per value."""
    return tf.constant(np.asarray(values, np.float32).reshape(-1, 1, 1, 1))


@pytest.mark.parametrize("eta", [-4.0, -0.5, -0.005, 0.0, 0.02, 1.0, 6.0])
def test_continuous_bernoulli_integrates_to_one(eta):
    lam = 1 / (1 + math.exp(-eta))
    x = np.linspace(0.0, 1.0, 20001)
    log_p = continuous_bernoulli_log_likelihood(one_pixel(x), one_pixel(np.full_like(x, eta))).numpy()
    np.testing.assert_allclose(np.exp(log_p), cb_density(x, lam), rtol=1e-4)
    assert np.trapezoid(np.exp(log_p), x) == pytest.approx(1.0, abs=1e-5)


def test_continuous_bernoulli_normalizer_closed_form_and_series():
    """log C = log(2 tanh⁻¹(1 − 2λ)/(1 − 2λ)) in float64, and → log 2 at η = 0 without a jump."""
    got = continuous_bernoulli_log_normalizer(tf.constant(ETAS, tf.float32)).numpy()
    lam = 1 / (1 + np.exp(-ETAS.astype(np.float64)))
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = np.log(2 * np.arctanh(1 - 2 * lam) / (1 - 2 * lam))
    # Far from 0 λ rounds to 1 in float64; there log C = log|η| − log tanh(|η|/2) → log|η|.
    exact = np.where(np.abs(ETAS) > 20, np.log(np.abs(ETAS)), exact)
    exact = np.where(ETAS == 0, math.log(2), exact)
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-6)
    edge = continuous_bernoulli_log_normalizer(tf.constant([0.00999, 0.01001])).numpy()
    assert abs(edge[0] - edge[1]) < 1e-6


@pytest.mark.parametrize("eta", [-3.0, -0.0004, 0.0, 0.7, 5.0])
def test_continuous_bernoulli_mean_is_the_integral(eta):
    lam = 1 / (1 + math.exp(-eta))
    x = np.linspace(0.0, 1.0, 20001)
    expected = np.trapezoid(x * cb_density(x, lam), x)
    got = likelihood_mean(tf.constant([[eta]]), "continuous-bernoulli").numpy()[0, 0]
    assert got == pytest.approx(expected, abs=1e-5)


def test_discretized_logistic_sums_to_one_and_matches_the_equation():
    """Σ over the 256 levels of P = 1, and P(level) = σ((y + 1/255 − μ)/s) − σ((y − 1/255 − μ)/s)."""
    levels = np.arange(256) / 255.0
    for mean, log_scale in [(0.1, -2.0), (-0.9, -4.0), (0.99, 0.5), (0.0, -7.0)]:
        params = np.stack([np.full(256, mean), np.full(256, log_scale)], -1).reshape(256, 1, 1, 2)
        log_p = discretized_logistic_log_likelihood(one_pixel(levels), tf.constant(params, tf.float32))
        p = np.exp(log_p.numpy().astype(np.float64))
        assert p.sum() == pytest.approx(1.0, abs=2e-3)

        def sigmoid(t):
            return 1 / (1 + np.exp(-t))

        y, s = 2 * levels - 1, math.exp(max(log_scale, -7.0))
        upper = np.where(levels == 1.0, 1.0, sigmoid((y + 1 / 255 - mean) / s))
        lower = np.where(levels == 0.0, 0.0, sigmoid((y - 1 / 255 - mean) / s))
        big = upper - lower > 1e-4  # where the float32 difference is exact enough to compare
        np.testing.assert_allclose(p[big], (upper - lower)[big], rtol=2e-3)


def test_likelihood_dispatch_mean_and_bits_per_dim():
    x = one_pixel([0.0, 1.0])
    logits = one_pixel([2.0, -1.0])
    np.testing.assert_allclose(log_likelihood(x, logits, "bernoulli").numpy(),
                               [math.log(1 - 1 / (1 + math.exp(-2))), math.log(1 / (1 + math.e))],
                               rtol=1e-6)
    assert output_channels("logistic", 3) == 6 and output_channels("continuous-bernoulli", 3) == 3
    params = tf.constant([[[[0.5, -2.0], [-3.0, 0.0]]]])  # μ = 0.5 → 0.75; μ = −3 clipped → 0
    np.testing.assert_allclose(likelihood_mean(params, "logistic").numpy().ravel(), [0.75, 0.0])
    # 3072 dimensions, NLL = 3072·ln 2 nats → exactly 1 bit per dimension.
    assert bits_per_dim(3072 * math.log(2), 32 * 32 * 3) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown likelihood"):
        log_likelihood(x, logits, "poisson")


@pytest.mark.parametrize("likelihood", ["continuous-bernoulli", "logistic"])
def test_colour_conv_vae_builds_and_scores(likelihood):
    model = build_vae("conv", 4, image_shape=(16, 16, 3), likelihood=likelihood, seed=0)
    assert model.decoder.output_shape == (None, 16, 16, output_channels(likelihood, 3))
    images = np.round(np.random.default_rng(0).uniform(size=(3, 16, 16, 3)) * 255) / 255
    log_p = importance_weighted_log_likelihood(model, images.astype(np.float32), samples=4)
    assert log_p.shape == (3,) and np.all(np.isfinite(log_p))
    decoded = model.decode(np.zeros((2, 4), np.float32)).numpy()
    assert decoded.shape == (2, 16, 16, 3) and 0.0 <= decoded.min() and decoded.max() <= 1.0


def test_factor_correlations_and_traversals():
    from vae.sample import factor_correlations, traversals

    rng = np.random.default_rng(0)
    factor = rng.uniform(size=200)
    means = np.stack([3 * factor + 1, rng.normal(size=200), np.ones(200)], axis=1)
    corr = factor_correlations(means, {"x": factor, "neg": -factor})
    np.testing.assert_allclose(corr["x"][[0, 2]], [1.0, 0.0], atol=1e-12)
    assert corr["x"][1] < 0.2 and np.allclose(corr["neg"], corr["x"])
    model = build_vae("conv", 3, image_shape=(8, 8, 3), likelihood="logistic", seed=0)
    rows = traversals(model, np.zeros((8, 8, 3), np.float32), dims=[0, 2], steps=4)
    assert rows.shape == (8, 8, 8, 3)
