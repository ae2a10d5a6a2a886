"""GAN losses against values computed by hand in NumPy (from probabilities, not softplus)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from gan import choices, losses

REAL_LOGITS = np.array([2.0, -1.0, 0.5], dtype=np.float32)
FAKE_LOGITS = np.array([0.5, -3.0, 1.5], dtype=np.float32)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def test_discriminator_loss_is_minus_the_value_function():
    d_real, d_fake = sigmoid(REAL_LOGITS), sigmoid(FAKE_LOGITS)
    expected = -np.mean(np.log(d_real)) - np.mean(np.log(1.0 - d_fake))
    got, logs = losses.discriminator_loss(tf.constant(REAL_LOGITS), tf.constant(FAKE_LOGITS))
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)
    np.testing.assert_allclose([float(logs["d_real"]), float(logs["d_fake"])],
                               [d_real.mean(), d_fake.mean()], rtol=1e-5)


def test_one_sided_label_smoothing_changes_only_the_real_target():
    s = 0.1
    d_real, d_fake = sigmoid(REAL_LOGITS), sigmoid(FAKE_LOGITS)
    expected = (-np.mean((1 - s) * np.log(d_real) + s * np.log(1 - d_real))
                - np.mean(np.log(1.0 - d_fake)))
    got, _ = losses.discriminator_loss(tf.constant(REAL_LOGITS), tf.constant(FAKE_LOGITS), s)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_generator_losses_match_hand_values():
    d_fake = sigmoid(FAKE_LOGITS)
    np.testing.assert_allclose(float(losses.minimax_generator_loss(tf.constant(FAKE_LOGITS))[0]),
                               np.mean(np.log(1.0 - d_fake)), rtol=1e-5)
    np.testing.assert_allclose(float(losses.nonsaturating_generator_loss(tf.constant(FAKE_LOGITS))[0]),
                               -np.mean(np.log(d_fake)), rtol=1e-5)


def test_losses_stay_finite_for_confident_discriminators():
    extreme = tf.constant([-200.0, 200.0])
    for value, _ in (losses.discriminator_loss(extreme, extreme), losses.minimax_generator_loss(extreme),
                     losses.nonsaturating_generator_loss(extreme)):
        assert np.isfinite(float(value))
    # log D(x) for D(x) = sigmoid(200) is 0; log(1 - D(G(z))) for D(G(z)) = sigmoid(-200) is 0.
    np.testing.assert_allclose(float(losses.discriminator_loss(tf.constant([200.0]),
                                                               tf.constant([-200.0]))[0]), 0.0, atol=1e-6)


def test_minimax_saturates_where_nonsaturating_does_not():
    """At D(G(z)) ≈ 0 (logit −10) the minimax gradient vanishes, the non-saturating one is ≈ −1."""
    logit = tf.Variable([-10.0])
    gradients = {}
    for name, loss in (("minimax", losses.minimax_generator_loss),
                       ("nonsaturating", losses.nonsaturating_generator_loss)):
        with tf.GradientTape() as tape:
            value, _ = loss(logit)
        gradients[name] = float(tape.gradient(value, logit)[0])
    d = sigmoid(np.array([-10.0]))[0]
    np.testing.assert_allclose(gradients["minimax"], -d, rtol=1e-4)          # −σ(l) ≈ −4.5e-5
    np.testing.assert_allclose(gradients["nonsaturating"], -(1 - d), rtol=1e-4)  # −(1 − σ(l)) ≈ −1
    assert abs(gradients["minimax"]) < 1e-4 < 0.99 < abs(gradients["nonsaturating"])


def test_wasserstein_losses():
    real, fake = tf.constant([1.0, 3.0]), tf.constant([-1.0, 0.5])
    loss, logs = losses.wasserstein_critic_loss(real, fake)
    assert float(loss) == pytest.approx(-0.25 - 2.0)
    assert (float(logs["critic_real"]), float(logs["critic_fake"])) == pytest.approx((2.0, -0.25))
    assert float(losses.wasserstein_generator_loss(fake)[0]) == pytest.approx(0.25)


def linear_critic(weights: np.ndarray):
    w = tf.constant(weights[None])
    return lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])


@pytest.mark.parametrize("norm, expected", [(1.0, 0.0), (2.0, 1.0), (0.5, 0.25)])
def test_gradient_penalty_of_a_linear_critic(norm, expected):
    """∇C = w everywhere, so the penalty is (‖w‖ − 1)²: 0 for a 1-Lipschitz unit-norm critic."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((28, 28, 1)).astype(np.float32)
    w *= norm / np.linalg.norm(w)
    real = tf.constant(rng.random((8, 28, 28, 1), dtype=np.float32))
    fake = tf.constant(rng.random((8, 28, 28, 1), dtype=np.float32))
    penalty = float(losses.gradient_penalty(linear_critic(w), real, fake))
    assert penalty == pytest.approx(expected, abs=1e-5)


def test_gradient_penalty_of_a_quadratic_critic_by_hand():
    """C(x) = ½‖x‖², ∇C(x̂) = x̂ with x̂ = ε x + (1 − ε) x̃: a value that depends on each ε."""
    rng = np.random.default_rng(1)
    real = rng.random((4, 28, 28, 1)).astype(np.float32) * 0.1
    fake = rng.random((4, 28, 28, 1)).astype(np.float32) * 0.1
    epsilon = np.array([0.0, 0.3, 0.7, 1.0], dtype=np.float32).reshape(4, 1, 1, 1)
    mixed = epsilon * real + (1 - epsilon) * fake
    expected = np.mean((np.sqrt(np.sum(mixed.astype(np.float64) ** 2, axis=(1, 2, 3))) - 1) ** 2)
    got = losses.gradient_penalty(lambda x: 0.5 * tf.reduce_sum(x * x, axis=[1, 2, 3]),
                                  tf.constant(real), tf.constant(fake), tf.constant(epsilon))
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_gradient_penalty_draws_one_epsilon_per_sample():
    seen = []

    def critic(x):
        seen.append(x)
        return tf.reduce_sum(x, axis=[1, 2, 3])

    fake = tf.zeros((16, 28, 28, 1))
    losses.gradient_penalty(critic, tf.ones((16, 28, 28, 1)), fake)
    epsilon = seen[0].numpy()  # x̂ − x̃ = ε (x − x̃) = ε here
    per_sample = epsilon.reshape(16, -1)
    assert np.all(per_sample.min(axis=1) == per_sample.max(axis=1))   # one ε per sample
    assert len(np.unique(per_sample[:, 0])) == 16                      # a different ε each
    assert 0.0 <= per_sample.min() and per_sample.max() <= 1.0


def test_the_command_line_names_the_registered_objectives():
    """gan.choices names the losses without TensorFlow (for --help); the registry must agree."""
    assert tuple(losses.OBJECTIVES) == choices.LOSSES
    assert tuple(name for name, objective in losses.OBJECTIVES.items() if objective.logits) == choices.LOGIT_LOSSES
