"""vae.losses and vae.model pieces against hand-computed values (no data needed)."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae.losses import (
    bernoulli_log_likelihood,
    gaussian_kl,
    gaussian_log_density,
    iwae_log_likelihood,
    negative_elbo,
    reconstruction_loss,
)
from vae.model import Reparameterize, active_units, build_vae, importance_weighted_log_likelihood


def test_gaussian_kl_matches_closed_form_on_hand_values():
    # KL(N(1, 1) ‖ N(0, 1)) = ½; KL(N(0, 2) ‖ N(0, 1)) = ½ (2 − 1 − ln 2).
    mean = np.array([[1.0, 0.0], [0.0, 0.0]], np.float32)
    log_var = np.array([[0.0, math.log(2.0)], [0.0, 0.0]], np.float32)
    kl = gaussian_kl(mean, log_var).numpy()
    np.testing.assert_allclose(kl, [0.5 + 0.5 * (1.0 - math.log(2.0)), 0.0], rtol=1e-6, atol=1e-7)


def test_gaussian_kl_matches_monte_carlo():
    mean, log_var = np.float32([0.7, -1.2]), np.float32([-0.5, 0.8])
    rng = np.random.default_rng(0)
    z = mean + np.exp(0.5 * log_var) * rng.standard_normal((400_000, 2)).astype(np.float32)
    log_q = gaussian_log_density(z, mean, log_var).numpy()
    log_p = gaussian_log_density(z, np.zeros(2, np.float32), np.zeros(2, np.float32)).numpy()
    np.testing.assert_allclose(np.mean(log_q - log_p), gaussian_kl(mean, log_var).numpy(), rtol=1e-2)


def test_reconstruction_equals_numpy_bernoulli_log_likelihood():
    rng = np.random.default_rng(1)
    x = (rng.uniform(size=(3, 28, 28, 1)) < 0.3).astype(np.float32)
    logits = rng.normal(0.0, 3.0, size=(3, 28, 28, 1)).astype(np.float32)
    p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    expected = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    np.testing.assert_allclose(bernoulli_log_likelihood(x, logits).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(reconstruction_loss(x, logits).numpy(), -expected, rtol=1e-5)


def test_reconstruction_is_finite_for_extreme_logits():
    x = np.zeros((1, 28, 28, 1), np.float32)
    x[0, 0, 0, 0] = 1.0
    logits = np.full((1, 28, 28, 1), -200.0, np.float32)  # sigmoid rounds to 0 in float32
    value = reconstruction_loss(x, logits).numpy()
    np.testing.assert_allclose(value, [200.0], rtol=1e-5)  # −log σ(−200) ≈ 200, the rest ≈ 0


def test_negative_elbo_is_reconstruction_plus_weighted_kl():
    rng = np.random.default_rng(2)
    x = (rng.uniform(size=(2, 28, 28, 1)) < 0.5).astype(np.float32)
    logits = rng.normal(size=(2, 28, 28, 1)).astype(np.float32)
    mean, log_var = rng.normal(size=(2, 4)).astype(np.float32), rng.normal(size=(2, 4)).astype(np.float32)
    expected = reconstruction_loss(x, logits) + 0.3 * gaussian_kl(mean, log_var)
    np.testing.assert_allclose(negative_elbo(x, logits, mean, log_var, 0.3).numpy(), expected.numpy(),
                               rtol=1e-6)


def test_reparameterized_sample_has_right_moments_and_gradients():
    layer = Reparameterize(seed=3)
    mean = tf.Variable(tf.fill([200_000], 2.0))
    log_var = tf.Variable(tf.fill([200_000], math.log(0.25)))
    with tf.GradientTape() as tape:
        z = layer(mean, log_var)
        second_moment = tf.reduce_sum(tf.square(z)) / 200_000.0
    z = z.numpy()
    assert abs(z.mean() - 2.0) < 0.01 and abs(z.var() - 0.25) < 0.005
    grad_mean, grad_log_var = tape.gradient(second_moment, [mean, log_var])
    # E[z²] = μ² + σ²: d/dμ = 2μ = 4, d/d(log σ²) = σ² = 0.25 (summed over the per-draw terms).
    assert abs(np.sum(grad_mean.numpy()) - 4.0) < 0.05
    assert abs(np.sum(grad_log_var.numpy()) - 0.25) < 0.01


def test_reparameterize_survives_serialization():
    layer = Reparameterize(seed=7, name="sampler")
    clone = Reparameterize.from_config(layer.get_config())
    assert clone.seed == 7 and clone.name == "sampler"
    assert keras.saving.get_registered_name(Reparameterize) == "vae>Reparameterize"


def test_iwae_log_likelihood_on_hand_values():
    # Weights 1 and 3 for the first example: log((1 + 3) / 2) = log 2.
    log_weights = np.array([[0.0, -1000.0], [math.log(3.0), -1000.0]], np.float32)
    np.testing.assert_allclose(iwae_log_likelihood(log_weights).numpy(), [math.log(2.0), -1000.0],
                               rtol=1e-6)


@pytest.mark.slow
def test_iwae_bound_is_above_elbo_and_tightens_with_k():
    keras.utils.set_random_seed(4)
    model = build_vae("mlp", 4, hidden_units=[32], seed=4)
    x = (np.random.default_rng(4).uniform(size=(8, 28, 28, 1)) < 0.2).astype(np.float32)
    mean, log_var = model.encoder(x)
    # The ELBO (expectation of L_1) from many single-sample estimates.
    elbo = np.mean([-(reconstruction_loss(x, model.decoder(model.reparameterize(mean, log_var)))
                      + gaussian_kl(mean, log_var)).numpy() for _ in range(200)])
    bounds = [np.mean(importance_weighted_log_likelihood(model, x, k, batch_size=8, max_values=64 * x[0].size))
              for k in (1, 10, 100, 1000)]
    assert abs(bounds[0] - elbo) < 0.03 * abs(elbo)
    assert all(bound > elbo for bound in bounds[1:])
    assert bounds[1] < bounds[2] < bounds[3], bounds


def test_active_units_count_dimensions_whose_mean_varies():
    rng = np.random.default_rng(5)
    means = np.stack([rng.normal(0, 1, 500), rng.normal(0, 0.05, 500), np.full(500, 3.0)], axis=1)
    assert active_units(means) == 1  # variance 1 > 0.01; 0.0025 and 0 are not
