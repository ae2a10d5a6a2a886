"""The GAN stabilisers against hand-computed values: hinge and LSGAN losses, R1, spectral
norm (against numpy.linalg.svd), the EMA update, DiffAugment; and a contract every
registered loss keeps."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan import choices, losses, stabilizers
from gan.model import GAN, build_discriminator, build_generator

REAL = np.array([2.0, -1.0, 0.5, 0.9], dtype=np.float32)
FAKE = np.array([0.5, -3.0, 1.5, -0.2], dtype=np.float32)


@pytest.mark.parametrize("name", list(losses.OBJECTIVES))
def test_every_registered_loss_keeps_the_contract(name):
    """Scalar finite losses; logs named after the output kind; where D has not yet passed
    any loss's targets (scores in (0, 1)), D's loss falls as it scores reals higher and
    fakes lower, and G's loss falls as D scores its samples higher."""
    objective = losses.objective(name)
    real, fake = tf.Variable([0.8, 0.1, 0.3, 0.9]), tf.Variable([0.5, 0.2, 0.9, 0.1])
    with tf.GradientTape(persistent=True) as tape:
        d_loss, d_logs = objective.discriminator(real, fake, *((0.0,) if objective.logits else ()))
        g_loss, g_logs = objective.generator(fake)
    assert d_loss.shape == () and g_loss.shape == () and np.isfinite([float(d_loss), float(g_loss)]).all()
    expected = {"d_real", "d_fake"} if objective.logits else {"critic_real", "critic_fake"}
    assert set(d_logs) == expected and g_logs == {}
    d_real, d_fake = tape.gradient(d_loss, [real, fake])
    assert np.all(d_real.numpy() <= 0) and np.any(d_real.numpy() < 0)  # raising D(x) never hurts D
    assert np.all(d_fake.numpy() >= 0) and np.any(d_fake.numpy() > 0)  # lowering D(G(z)) never hurts D
    assert np.all(tape.gradient(g_loss, fake).numpy() <= 0)


def test_hinge_losses_against_numpy():
    expected_d = np.mean(np.maximum(0, 1 - REAL)) + np.mean(np.maximum(0, 1 + FAKE))
    got_d, _ = losses.hinge_discriminator_loss(tf.constant(REAL), tf.constant(FAKE))
    np.testing.assert_allclose(float(got_d), expected_d, rtol=1e-6)
    np.testing.assert_allclose(float(losses.hinge_generator_loss(tf.constant(FAKE))[0]), -np.mean(FAKE),
                               rtol=1e-6)


def test_least_squares_losses_against_numpy():
    expected_d = 0.5 * np.mean((REAL - 1) ** 2) + 0.5 * np.mean(FAKE ** 2)
    got_d, _ = losses.least_squares_discriminator_loss(tf.constant(REAL), tf.constant(FAKE))
    np.testing.assert_allclose(float(got_d), expected_d, rtol=1e-6)
    np.testing.assert_allclose(float(losses.least_squares_generator_loss(tf.constant(FAKE))[0]),
                               0.5 * np.mean((FAKE - 1) ** 2), rtol=1e-6)


def test_r1_of_a_linear_discriminator_is_the_squared_weight_norm():
    """D(x) = ⟨w, x⟩ has ∇ₓD = w everywhere: R1 = ‖w‖², D's term γ/2·‖w‖²."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 5, 1)).astype(np.float32)
    real = tf.constant(rng.random((3, 6, 5, 1), dtype=np.float32))
    penalty = float(losses.r1_penalty(lambda x: tf.reduce_sum(x * w[None], axis=[1, 2, 3]), real))
    np.testing.assert_allclose(penalty, np.sum(w.astype(np.float64) ** 2), rtol=1e-5)


def test_r1_of_a_quadratic_discriminator_depends_on_each_real_image():
    """D(x) = ½‖x‖²: ∇ₓD = x, so R1 = mean over images of ‖x‖²."""
    real = np.random.default_rng(1).random((4, 3, 3, 1)).astype(np.float32)
    penalty = float(losses.r1_penalty(lambda x: 0.5 * tf.reduce_sum(x * x, axis=[1, 2, 3]), tf.constant(real)))
    np.testing.assert_allclose(penalty, np.mean(np.sum(real.astype(np.float64) ** 2, axis=(1, 2, 3))),
                               rtol=1e-5)


def top_singular_value(kernel: np.ndarray) -> float:
    return float(np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0])


def kernel_with_spectrum(shape: tuple, singular_values: np.ndarray, seed: int) -> np.ndarray:
    """A kernel whose fan-in × units matrix is P diag(s) Qᵀ with random orthonormal P, Q."""
    rng = np.random.default_rng(seed)
    fan_in, units = int(np.prod(shape[:-1])), shape[-1]
    p, _ = np.linalg.qr(rng.standard_normal((fan_in, units)))
    q, _ = np.linalg.qr(rng.standard_normal((units, units)))
    return (p @ np.diag(singular_values) @ q.T).reshape(shape).astype(np.float32)


@pytest.mark.parametrize("layer, shape", [(keras.layers.Dense(7), (5, 12)),
                                          (keras.layers.Conv2D(6, 3, padding="same"), (2, 8, 8, 4))])
def test_spectral_norm_divides_by_the_top_singular_value(layer, shape):
    """σ₂/σ₁ = 0.6 is fixed, so 60 power-iteration steps leave an error of order 0.6¹²⁰:
    the check cannot depend on how close a random kernel's top two singular values fall."""
    wrapped = stabilizers.SpectralNorm(layer)
    x = tf.random.stateless_normal(shape, seed=(1, 2))
    wrapped(x)
    spectrum = np.concatenate([[2.5, 1.5], np.linspace(1.0, 0.2, layer.kernel.shape[-1] - 2)])
    layer.kernel.assign(kernel_with_spectrum(tuple(layer.kernel.shape), spectrum, seed=0))
    for _ in range(60):
        wrapped(x, training=True)
    kernel = layer.kernel.numpy()
    normalized = wrapped.normalized_kernel().numpy()
    np.testing.assert_allclose(top_singular_value(kernel), 2.5, rtol=1e-5)
    np.testing.assert_allclose(top_singular_value(normalized), 1.0, rtol=1e-4)
    np.testing.assert_allclose(normalized * 2.5, kernel, rtol=1e-4, atol=1e-6)


def test_spectral_norm_output_is_the_layer_on_the_normalized_kernel():
    layer = keras.layers.Dense(3)
    wrapped = stabilizers.SpectralNorm(layer)
    x = tf.random.stateless_normal((4, 5), seed=(3, 4))
    wrapped(x, training=True)
    expected = x.numpy() @ wrapped.normalized_kernel().numpy() + layer.bias.numpy()
    np.testing.assert_allclose(wrapped(x).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_spectral_norm_updates_u_only_in_training_and_lets_gradients_through_sigma():
    layer = keras.layers.Dense(4)
    wrapped = stabilizers.SpectralNorm(layer)
    x = tf.random.stateless_normal((3, 6), seed=(5, 6))
    wrapped(x)
    u = wrapped.u.numpy().copy()
    wrapped(x, training=False)
    np.testing.assert_array_equal(wrapped.u.numpy(), u)
    wrapped(x, training=True)
    assert not np.array_equal(wrapped.u.numpy(), u)
    # Scaling W does not change W / σ(W): the gradient along W itself is zero (eq. 12).
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(wrapped(x) ** 2)
    gradient = tape.gradient(out, layer.kernel).numpy()
    assert abs(np.sum(gradient * layer.kernel.numpy())) < 1e-3 * np.abs(gradient).sum()


def test_spectrally_normalized_discriminator_keeps_its_layout_and_normalises_every_layer():
    plain = build_discriminator("dcgan")
    normalized = stabilizers.spectrally_normalized(plain)
    assert normalized.count_params() == plain.count_params() + sum(
        layer.u.shape[-1] for layer in normalized.layers if isinstance(layer, stabilizers.SpectralNorm))
    assert isinstance(normalized.get_layer("logit"), stabilizers.SpectralNorm)
    assert normalized(tf.zeros((2, 28, 28, 1))).shape == (2, 1)


def test_generator_step_moves_the_ema_generator_by_the_decayed_step():
    model = GAN(build_generator("mlp", 8), build_discriminator("mlp"), ema_decay=0.5)
    model.compile(keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2))
    before = [v.numpy() for v in model.ema_generator.trainable_variables]
    np.testing.assert_array_equal(before[0], model.generator.trainable_variables[0].numpy())
    model.generator_step(4)
    decay = min(0.5, 2 / 11)  # after the first update t = 1
    for old, trained, average in zip(before, model.generator.trainable_variables,
                                     model.ema_generator.trainable_variables):
        np.testing.assert_allclose(average.numpy(), decay * old + (1 - decay) * trained.numpy(),
                                   rtol=1e-5, atol=1e-7)


def test_translate_moves_content_by_the_shift():
    image = np.zeros((2, 8, 8, 1), np.float32)
    image[:, 3, 4, 0] = 1.0
    moved = stabilizers.translate(tf.constant(image), tf.constant([2, -3]), tf.constant([-1, 3])).numpy()
    assert moved[0, 5, 3, 0] == 1.0 and moved[1, 0, 7, 0] == 1.0 and moved.sum() == 2.0
    # Content shifted past the border is gone, zeros come in.
    gone = stabilizers.translate(tf.constant(image), tf.constant([5, 0]), tf.constant([0, 4])).numpy()
    assert gone.sum() == 0.0


def test_diff_augment_translates_by_the_sampled_shift():
    images = tf.random.stateless_uniform((5, 16, 16, 1), seed=(7, 8))
    augmented = stabilizers.diff_augment(images, ("translation",), tf.random.Generator.from_seed(3))
    replay = tf.random.Generator.from_seed(3)  # the same draws, made by hand
    shift_y = replay.uniform([5], -2, 3, dtype=tf.int32).numpy()
    shift_x = replay.uniform([5], -2, 3, dtype=tf.int32).numpy()
    for image, out, dy, dx in zip(images.numpy(), augmented.numpy(), shift_y, shift_x):
        expected = np.zeros_like(image)
        ys, xs = slice(max(dy, 0), 16 + min(dy, 0)), slice(max(dx, 0), 16 + min(dx, 0))
        expected[ys, xs] = image[max(-dy, 0):16 - max(dy, 0), max(-dx, 0):16 - max(dx, 0)]
        np.testing.assert_allclose(out, expected, atol=1e-6)


def test_diff_augment_keeps_shapes_and_passes_gradients():
    images = tf.Variable(tf.random.stateless_uniform((4, 12, 12, 3), seed=(1, 1)) + 0.5)
    with tf.GradientTape() as tape:
        augmented = stabilizers.diff_augment(images, ("translation", "cutout"), tf.random.Generator.from_seed(0))
        total = tf.reduce_sum(augmented)
    assert augmented.shape == images.shape
    gradient = tape.gradient(total, images).numpy()
    # Each input pixel reaches the output at most once, so the gradient is 0 or 1; cutout
    # removes a 6×6 square (clipped at the border) from every image.
    assert set(np.unique(gradient)) <= {0.0, 1.0} and gradient.sum() > 0
    assert np.all((augmented.numpy() == 0).reshape(4, -1).sum(axis=1) >= 3)


def test_cutout_zeroes_one_square():
    out = stabilizers.cutout(tf.ones((1, 8, 8, 1)), tf.constant([4]), tf.constant([4]), (4, 4)).numpy()[0, ..., 0]
    assert out[2:6, 2:6].sum() == 0 and out.sum() == 64 - 16


def test_parse_augmentations():
    assert choices.parse_augmentations("translation, cutout") == ("translation", "cutout")
    with pytest.raises(Exception, match="--diffaugment"):
        choices.parse_augmentations("translation,colour")
