"""diffusion.losses: the forward process, both schedules, the simple loss and the bound's
terms against the papers' formulas (NumPy, SciPy), and the bound of a perfect ε-predictor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import norm

from diffusion.losses import (
    bits_per_dim,
    discretized_gaussian_nll,
    make_schedule,
    normal_kl,
    q_sample,
    simple_loss,
)
from diffusion.model import variational_bound


def test_q_sample_has_the_closed_forms_mean_and_variance():
    """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε: over 200,000 draws of ε the mean and variance of each
    value are those of q(x_t | x_0) = N(√ᾱ_t x_0, 1 − ᾱ_t) (Ho et al. eq. 4)."""
    schedule = make_schedule("linear", 1000)
    alpha_bars = schedule.constant("alpha_bars")
    x0 = tf.constant([[[[-1.0]], [[0.2]]]])  # one 2×1 image
    for t in (0, 300, 999):
        draws = 200_000
        noise = tf.random.stateless_normal((draws, 2, 1, 1), seed=[3, t])
        x_t = q_sample(tf.repeat(x0, draws, axis=0), tf.fill([draws], t), noise, alpha_bars).numpy()
        alpha_bar = np.prod(1 - np.linspace(1e-4, 0.02, 1000)[:t + 1])
        np.testing.assert_allclose(x_t.mean(axis=0).ravel(), math.sqrt(alpha_bar) * np.array([-1.0, 0.2]),
                                   atol=4 * math.sqrt((1 - alpha_bar) / draws) + 1e-6)
        np.testing.assert_allclose(x_t.var(axis=0).ravel(), [1 - alpha_bar] * 2, rtol=0.02, atol=1e-6)


def test_alpha_bar_of_both_schedules_follows_the_papers():
    linear = make_schedule("linear", 1000)
    betas = 1e-4 + (0.02 - 1e-4) * np.arange(1000) / 999  # Ho et al. §4: 10⁻⁴ … 0.02
    np.testing.assert_allclose(linear.alpha_bars, np.cumprod(1 - betas), rtol=1e-12)
    assert linear.alpha_bars[-1] == pytest.approx(4.04e-5, rel=0.01)  # x_T is almost pure noise
    cosine = make_schedule("cosine", 1000)
    t = np.arange(1, 1001)
    f = np.cos((t / 1000 + 0.008) / 1.008 * np.pi / 2) ** 2 / np.cos(0.008 / 1.008 * np.pi / 2) ** 2
    unclipped = cosine.betas < 0.999  # Nichol & Dhariwal clip β at 0.999, only at the very end
    assert unclipped[:990].all() and cosine.betas[-1] == 0.999
    np.testing.assert_allclose(cosine.alpha_bars[unclipped], f[unclipped], rtol=1e-9)
    assert cosine.alpha_bars[499] == pytest.approx(0.5, abs=0.02)  # ᾱ falls to ½ halfway
    short = make_schedule("linear", 10)  # scaled ends; never β = 1
    assert short.betas[0] == pytest.approx(1e-2) and short.betas.max() == 0.999


def test_posterior_variance_and_reverse_variance():
    schedule = make_schedule("linear", 50)
    ab = schedule.alpha_bars
    expected = (1 - np.append(1, ab[:-1])) / (1 - ab) * schedule.betas
    np.testing.assert_allclose(schedule.posterior_variance, expected, rtol=1e-12)
    assert schedule.posterior_variance[0] == 0
    np.testing.assert_allclose(np.exp(schedule.reverse_log_variance),
                               np.append(expected[1], expected[1:]), rtol=1e-12)


def test_simple_loss_normal_kl_and_the_discretized_decoder_against_numpy():
    rng = np.random.default_rng(0)
    noise, predicted = rng.normal(size=(2, 3, 3, 1)), rng.normal(size=(2, 3, 3, 1))
    np.testing.assert_allclose(simple_loss(noise, predicted).numpy(), ((noise - predicted) ** 2).mean(axis=(1, 2, 3)),
                               rtol=1e-5)
    m1, m2, v1, v2 = 0.3, -0.5, 0.2, 1.5
    expected = math.log(math.sqrt(v2) / math.sqrt(v1)) + (v1 + (m1 - m2) ** 2) / (2 * v2) - 0.5
    assert float(normal_kl(tf.constant(m1), tf.constant(math.log(v1)), tf.constant(m2),
                           tf.constant(math.log(v2)))) == pytest.approx(expected, rel=1e-5)
    # Three values: the lowest level (bin open below), a middle one, the highest (open above).
    x0 = np.array([-1.0, 2 * 100 / 255 - 1, 1.0]).reshape(1, 3, 1, 1)
    mean, sigma = np.array([-0.98, -0.2, 0.995]).reshape(1, 3, 1, 1), 0.03
    probability = [norm.cdf(x0[0, 0] + 1 / 255, mean[0, 0], sigma),
                   norm.cdf(x0[0, 1] + 1 / 255, mean[0, 1], sigma) - norm.cdf(x0[0, 1] - 1 / 255, mean[0, 1], sigma),
                   norm.sf(x0[0, 2] - 1 / 255, mean[0, 2], sigma)]
    nll = discretized_gaussian_nll(tf.constant(x0, tf.float32), tf.constant(mean, tf.float32),
                                   tf.constant(2 * math.log(sigma)))
    assert float(nll[0]) == pytest.approx(-np.log(np.ravel(probability)).sum(), rel=1e-4)


def test_the_bound_of_a_perfect_eps_predictor_on_one_image():
    """On a one-image dataset the best ε-predictor knows x_0: ε̂ = (x_t − √ᾱ_t x_0)/√(1 − ᾱ_t).
    Its p(x_{t−1} | x_t) is then q(x_{t−1} | x_t, x_0) (same mean, same variance β̃_t), so
    every KL term is 0 and the bound is L_T + L_0: the prior KL of N(√ᾱ_T x_0, 1 − ᾱ_T) and
    −log of each value's bin under N(x_0, β̃_2)."""
    schedule = make_schedule("linear", 100)
    image = np.array([0, 10, 128, 255], np.float32).reshape(1, 2, 2, 1) / 255
    x0 = 2 * image - 1
    alpha_bars = schedule.constant("alpha_bars")

    def perfect(inputs):
        x_t, t = inputs
        alpha_bar = tf.reshape(tf.gather(alpha_bars, t), (-1, 1, 1, 1))
        return (x_t - tf.sqrt(alpha_bar) * x0) / tf.sqrt(1 - alpha_bar)

    nats = variational_bound(perfect, image, schedule)
    ab_T, sigma = schedule.alpha_bars[-1], math.sqrt(schedule.posterior_variance[1])
    prior = 0.5 * (ab_T * x0 ** 2 + (1 - ab_T) - math.log(1 - ab_T) - 1).sum()
    half_bin = 1 / 255
    masses = [norm.cdf(half_bin / sigma) if abs(v) == 1 else norm.cdf(half_bin / sigma) - norm.cdf(-half_bin / sigma)
              for v in x0.ravel()]
    expected = prior - np.log(masses).sum()
    assert nats.shape == (1,) and nats[0] == pytest.approx(expected, rel=1e-3)
    assert float(bits_per_dim(expected, 4)) == pytest.approx(expected / (4 * math.log(2)))
