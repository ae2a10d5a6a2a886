"""diffusion.model and diffusion.sample: the U-Net at every image size, the samplers' steps
against the papers' updates, DDIM's determinism, DDIM (η = 1, all T) against ancestral
sampling, and classifier-free guidance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from diffusion.losses import make_schedule
from diffusion.model import build_diffusion, build_unet
from diffusion.sample import DiffusionSampler, ddim_step, guided_eps, sampling_times


@pytest.mark.parametrize("shape,classes", [((28, 28, 1), 0), ((32, 32, 3), 10), ((64, 64, 3), 0)])
def test_the_unet_keeps_the_image_shape_and_starts_at_zero(shape, classes):
    network = build_unet(shape, features=8, res_blocks=1, n_classes=classes)
    inputs = [tf.random.normal((2, *shape)), tf.constant([0, 999])]
    if classes:
        inputs.append(tf.constant([3, classes]))  # a class and the null class
    eps = network(inputs)
    assert eps.shape == (2, *shape) and eps.dtype == tf.float32
    assert np.all(eps.numpy() == 0)  # the last convolution starts at zero (Ho et al.)


@pytest.mark.slow
def test_a_training_step_moves_the_network_and_the_average_less():
    model = build_diffusion((8, 8, 1), features=8, res_blocks=1, attention=False, timesteps=50, ema_decay=0.9)
    model.compile(optimizer="adam")
    before = [v.numpy() for v in model.network.trainable_variables]
    model.fit(np.random.default_rng(0).uniform(size=(32, 8, 8, 1)).astype(np.float32), batch_size=16,
              epochs=2, verbose=0)
    raw = [np.abs(v.numpy() - b).sum() for v, b in zip(model.network.trainable_variables, before)]
    ema = [np.abs(v.numpy() - b).sum() for v, b in zip(model.ema_network.trainable_variables, before)]
    assert sum(raw) > 0 and 0 < sum(ema) < sum(raw)


def test_sampling_times_are_evenly_spaced_and_checked():
    assert sampling_times(5, 1000).tolist() == [999, 749, 500, 250, 0]
    assert sampling_times(10, 10).tolist() == list(range(9, -1, -1))
    for bad in (0, 11):
        with pytest.raises(Exception, match="--steps"):
            sampling_times(bad, 10)


def test_a_ddim_step_is_song_et_al_eq_12():
    schedule = make_schedule("linear", 100)
    alpha_bars = schedule.constant("alpha_bars")
    rng = np.random.default_rng(1)
    x_t, eps, noise = (tf.constant(rng.normal(size=(1, 2, 2, 1)), tf.float32) for _ in range(3))
    t, t_prev, eta = 60, 40, 0.5
    ab, ab_prev = schedule.alpha_bars[t], schedule.alpha_bars[t_prev]
    x0 = np.clip((x_t.numpy() - math.sqrt(1 - ab) * eps.numpy()) / math.sqrt(ab), -1, 1)
    eps_clipped = (x_t.numpy() - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
    sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
    expected = (math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev - sigma ** 2) * eps_clipped
                + sigma * noise.numpy())
    got = ddim_step(x_t, tf.constant([t]), tf.constant([t_prev]), eps, alpha_bars, eta, noise)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-5)
    # η = 1 between neighbours: the noise's scale is the ancestral sampler's √β̃_t.
    zero = tf.zeros_like(noise)
    step = [ddim_step(x_t, tf.constant([t]), tf.constant([t - 1]), eps, alpha_bars, 1.0, z) for z in (noise, zero)]
    np.testing.assert_allclose((step[0] - step[1]).numpy(),
                               math.sqrt(schedule.posterior_variance[t]) * noise.numpy(), rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def sampler() -> DiffusionSampler:
    """A random (untrained) U-Net whose zero-initialised kernels are made random, so ε̂
    depends on x_t, t and the class."""
    network = build_unet((8, 8, 1), features=8, res_blocks=1, attention=False, n_classes=3)
    for i, kernel in enumerate(v for v in network.trainable_variables if "kernel" in v.path):
        if not np.any(kernel.numpy()):
            kernel.assign(tf.random.stateless_normal(kernel.shape, seed=[0, i]) * 0.1)
    return DiffusionSampler(network, make_schedule("linear", 30), {}, batch=4)


@pytest.mark.slow  # seconds of U-Net passes: the full suite runs it
def test_ddim_with_eta_0_is_deterministic_and_ignores_the_step_noise(sampler):
    x_T = tf.random.stateless_normal((4, 8, 8, 1), seed=[5, 5]).numpy()
    labels = np.array([0, 1, 2, 0])
    a = sampler.denoise(x_T, seed=1, steps=10, eta=0.0, labels=labels)
    assert np.array_equal(a, sampler.denoise(x_T, seed=2, steps=10, eta=0.0, labels=labels))
    assert not np.array_equal(a, sampler.denoise(x_T, seed=2, steps=10, eta=1.0, labels=labels))
    drawn = sampler.draw(6, seed=3, labels=np.arange(6) % 3)
    assert np.array_equal(drawn, sampler.draw(6, seed=3, labels=np.arange(6) % 3))
    assert not np.array_equal(drawn, sampler.draw(6, seed=4, labels=np.arange(6) % 3))
    assert drawn.shape == (6, 8, 8, 1) and 0 <= drawn.min() and drawn.max() <= 1


@pytest.mark.slow  # seconds of U-Net passes: the full suite runs it
def test_ddim_with_eta_1_on_all_steps_is_ancestral_sampling(sampler):
    """With σ² = β̃_t the DDIM update between neighbouring steps has the posterior mean
    μ̃_t(x_t, x̂_0) (Song et al. §4.1), so the same noise gives the same images."""
    x_T = tf.random.stateless_normal((4, 8, 8, 1), seed=[6, 6]).numpy()
    labels = np.array([2, 1, 0, 3])  # 3: the null class, the unconditional model
    ddim = sampler.denoise(x_T, seed=9, steps=30, eta=1.0, labels=labels)
    ddpm = sampler.denoise(x_T, seed=9, labels=labels, sampler="ddpm")
    np.testing.assert_allclose(ddim, ddpm, atol=2e-4)
    assert np.abs(ddim - sampler.denoise(x_T, seed=9, steps=30, eta=0.0, labels=labels)).max() > 0.01


def test_guidance_weight_0_is_the_conditional_prediction(sampler):
    network = sampler.network
    x = tf.random.stateless_normal((3, 8, 8, 1), seed=[7, 7])
    t, labels = tf.constant([3, 15, 29]), tf.constant([0, 1, 2])
    conditional = network([x, t, labels]).numpy()
    unconditional = network([x, t, tf.fill([3], 3)]).numpy()
    np.testing.assert_array_equal(guided_eps(network, x, t, labels, 0.0, 3).numpy(), conditional)
    np.testing.assert_allclose(guided_eps(network, x, t, labels, 2.0, 3).numpy(),
                               3 * conditional - 2 * unconditional, rtol=1e-5, atol=1e-6)
    assert np.abs(conditional - unconditional).max() > 0  # the class changes the prediction
