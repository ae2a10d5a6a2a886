"""The VAE's objective and its importance-weighted likelihood bound, as pure functions.

Notation (Kingma & Welling, "Auto-Encoding Variational Bayes", 2013): an encoder
q(z|x) = N(μ(x), diag σ²(x)), a prior p(z) = N(0, I) and a Bernoulli decoder p(x|z)
whose D = 784 pixel probabilities are sigmoid(logits(z)). Every function returns one
value per example (nats); the caller averages over the batch.
"""

from __future__ import annotations

import math

import tensorflow as tf

LOG_2PI = math.log(2.0 * math.pi)


def _flatten(values: tf.Tensor) -> tf.Tensor:
    """(..., H, W, C) → (..., H·W·C) so that sums run over every pixel."""
    shape = tf.shape(values)
    return tf.reshape(values, tf.concat([shape[:-3], [-1]], axis=0))


def bernoulli_log_likelihood(x: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """log p(x|z) = Σ_d [x_d log p_d + (1 − x_d) log(1 − p_d)], p = sigmoid(logits).

    Computed as −Σ_d sigmoid_cross_entropy(x_d, logits_d), which never takes the log of
    a rounded probability (stable for any logit). For binary x this is the exact
    Bernoulli log-likelihood; for grey x in (0, 1) it is only a cross-entropy.
    `x` (..., 28, 28, 1) broadcasts against `logits` (k, ..., 28, 28, 1); result: (k, ...).
    """
    logits = tf.cast(logits, tf.float32)
    x = tf.broadcast_to(tf.cast(x, tf.float32), tf.shape(logits))
    cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits)
    return -tf.reduce_sum(_flatten(cross_entropy), axis=-1)


def reconstruction_loss(x: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """−log p(x|z): the reconstruction term of the negative ELBO (nats per example)."""
    return -bernoulli_log_likelihood(x, logits)


def gaussian_kl(mean: tf.Tensor, log_var: tf.Tensor) -> tf.Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ_j (σ_j² + μ_j² − 1 − log σ_j²).

    The closed form of Kingma & Welling (2013), Appendix B. Shapes (..., J) → (...).
    """
    mean = tf.cast(mean, tf.float32)
    log_var = tf.cast(log_var, tf.float32)
    return 0.5 * tf.reduce_sum(tf.exp(log_var) + tf.square(mean) - 1.0 - log_var, axis=-1)


def negative_elbo(x: tf.Tensor, logits: tf.Tensor, mean: tf.Tensor, log_var: tf.Tensor,
                  kl_weight: float | tf.Tensor = 1.0) -> tf.Tensor:
    """−ELBO = E_q[−log p(x|z)] + β·KL(q(z|x) ‖ p(z)), one z sample per x.

    Kingma & Welling (2013), eq. 10 (the SGVB estimator with the analytic KL). With
    β = 1 it is an upper bound on −log p(x); β ≠ 1 (or a KL warm-up) changes the
    objective, not the bound, so the ELBO is reported with β = 1 separately.
    """
    return reconstruction_loss(x, logits) + kl_weight * gaussian_kl(mean, log_var)


def gaussian_log_density(z: tf.Tensor, mean: tf.Tensor, log_var: tf.Tensor) -> tf.Tensor:
    """log N(z; μ, diag σ²) = −½ Σ_j [log 2π + log σ_j² + (z_j − μ_j)² / σ_j²].

    The standard normal prior is `mean = 0, log_var = 0`. Shapes (..., J) → (...).
    """
    z, mean, log_var = (tf.cast(t, tf.float32) for t in (z, mean, log_var))
    return -0.5 * tf.reduce_sum(LOG_2PI + log_var + tf.square(z - mean) * tf.exp(-log_var), axis=-1)


def importance_log_weights(x: tf.Tensor, logits: tf.Tensor, z: tf.Tensor, mean: tf.Tensor,
                           log_var: tf.Tensor) -> tf.Tensor:
    """log w = log p(x|z) + log p(z) − log q(z|x) for samples z ~ q(z|x).

    Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders" (2015), eq. 8.
    Leading sample axes broadcast: z, logits (k, B, ...), mean/log_var (B, J) → (k, B).
    """
    prior = gaussian_log_density(z, tf.zeros_like(z), tf.zeros_like(z))
    posterior = gaussian_log_density(z, mean, log_var)
    return bernoulli_log_likelihood(x, logits) + prior - posterior


def iwae_log_likelihood(log_weights: tf.Tensor) -> tf.Tensor:
    """L_k = log (1/k) Σ_i w_i, over the sample axis 0 of (k, B) log-weights → (B,).

    Burda et al. (2015), eq. 8: a lower bound on log p(x) that is never looser than
    the ELBO (L_1 = ELBO in expectation) and tightens monotonically as k grows; with
    k = 5000 it is the standard estimate of the MNIST test log-likelihood. Done with
    logsumexp because the weights themselves underflow (log w ≈ −90 nats).
    """
    k = tf.cast(tf.shape(log_weights)[0], log_weights.dtype)
    return tf.reduce_logsumexp(log_weights, axis=0) - tf.math.log(k)
