"""The VAE's objective and its importance-weighted likelihood bound, as pure functions.

Notation (Kingma & Welling, "Auto-Encoding Variational Bayes", 2013): an encoder
q(z|x) = N(μ(x), diag σ²(x)), a prior p(z) = N(0, I) and a decoder p(x|z) over the
D = H·W·C pixels: Bernoulli (the default, for binarized digits), continuous Bernoulli
(Loaiza-Ganem & Cunningham 2019) or discretized logistic (Salimans et al. 2017) — the
`vae.choices.LIKELIHOODS`. Every function returns one value per example (nats); the caller
averages over the batch.
"""

from __future__ import annotations

import math

import tensorflow as tf

from vae.choices import LIKELIHOODS

LOG_2PI = math.log(2.0 * math.pi)
MIN_LOG_SCALE = -7.0  # PixelCNN++'s floor on the logistic's log-scale
HALF_BIN = 1.0 / 255.0  # half a bin of the 256 levels, with pixels rescaled to [−1, 1]


def _flatten(values: tf.Tensor) -> tf.Tensor:
    """(..., H, W, C) → (..., H·W·C) so that sums run over every pixel."""
    shape = tf.shape(values)
    return tf.reshape(values, tf.concat([shape[:-3], [-1]], axis=0))


def bernoulli_log_likelihood(x: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """log p(x|z) = Σ_d [x_d log p_d + (1 − x_d) log(1 − p_d)], p = sigmoid(logits).

    Computed as −Σ_d sigmoid_cross_entropy(x_d, logits_d), which never takes the log of
    a rounded probability (stable for any logit). For binary x this is the exact
    Bernoulli log-likelihood; for grey x in (0, 1) it is only a cross-entropy.
    `x` (..., H, W, C) broadcasts against `logits` (k, ..., H, W, C); result: (k, ...).
    """
    logits = tf.cast(logits, tf.float32)
    x = tf.broadcast_to(tf.cast(x, tf.float32), tf.shape(logits))
    cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits)
    return -tf.reduce_sum(_flatten(cross_entropy), axis=-1)


def continuous_bernoulli_log_normalizer(logits: tf.Tensor) -> tf.Tensor:
    """log C(λ) per pixel, λ = sigmoid(η), of the continuous Bernoulli on [0, 1].

    Loaiza-Ganem & Cunningham, "The continuous Bernoulli: fixing a pervasive error in
    variational autoencoders" (NeurIPS 2019), eq. 7: p(x|λ) = C(λ) λ^x (1 − λ)^(1−x) with
    C(λ) = 2 tanh⁻¹(1 − 2λ) / (1 − 2λ) for λ ≠ ½ and C(½) = 2. With 1 − 2λ = −tanh(η/2)
    and tanh⁻¹(1 − 2λ) = −η/2 this is C = η / tanh(η/2), computed as log|η| − log|tanh(η/2)|
    and, for |η| < 10⁻², as its Taylor series log 2 + η²/12 (error below 10⁻⁹).
    """
    eta = tf.cast(logits, tf.float32)
    small = tf.abs(eta) < 1e-2
    safe = tf.where(small, tf.ones_like(eta), eta)
    exact = tf.math.log(tf.abs(safe)) - tf.math.log(tf.abs(tf.tanh(safe / 2.0)))
    return tf.where(small, math.log(2.0) + tf.square(eta) / 12.0, exact)


def continuous_bernoulli_log_likelihood(x: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """log p(x|z) = Σ_d [x_d log λ_d + (1 − x_d) log(1 − λ_d) + log C(λ_d)] for x in [0, 1].

    The Bernoulli cross-entropy plus the normaliser that makes it a density on [0, 1]^D
    (Loaiza-Ganem & Cunningham 2019); a density, so it can be positive. Shapes as
    `bernoulli_log_likelihood`.
    """
    logits = tf.cast(logits, tf.float32)
    normalizer = tf.reduce_sum(_flatten(continuous_bernoulli_log_normalizer(logits)), axis=-1)
    return bernoulli_log_likelihood(x, logits) + normalizer


def discretized_logistic_log_likelihood(x: tf.Tensor, params: tf.Tensor) -> tf.Tensor:
    """log P(x|z) of 8-bit pixels under a discretized logistic per pixel (256 bins).

    Salimans et al., "PixelCNN++" (ICLR 2017), eq. 2, with one mixture component: pixels
    rescaled to y = 2x − 1 ∈ [−1, 1], bins of width 2/255, and
    P(y) = σ((y + 1/255 − μ)/s) − σ((y − 1/255 − μ)/s), the edge bins taking the whole
    tails: P(−1) = σ((−1 + 1/255 − μ)/s), P(1) = 1 − σ((1 − 1/255 − μ)/s).
    `params` (..., H, W, 2C) hold μ then log s (floored at −7); x (..., H, W, C) on the
    k/255 grid. Computed in log space as PixelCNN++ does (softplus forms; the log-density
    at the bin centre times the bin width where the difference underflows).
    """
    params = tf.cast(params, tf.float32)
    channels = tf.shape(params)[-1] // 2
    mean, log_scale = params[..., :channels], tf.maximum(params[..., channels:], MIN_LOG_SCALE)
    y = tf.broadcast_to(2.0 * tf.cast(x, tf.float32) - 1.0, tf.shape(mean))
    inverse_scale = tf.exp(-log_scale)
    plus, minus = inverse_scale * (y - mean + HALF_BIN), inverse_scale * (y - mean - HALF_BIN)
    log_cdf_plus = plus - tf.nn.softplus(plus)  # log σ(plus), for the lowest bin
    log_survival_minus = -tf.nn.softplus(minus)  # log(1 − σ(minus)), for the highest bin
    delta = tf.sigmoid(plus) - tf.sigmoid(minus)
    middle = inverse_scale * (y - mean)
    log_density_mid = middle - log_scale - 2.0 * tf.nn.softplus(middle)
    inner = tf.where(delta > 1e-5, tf.math.log(tf.maximum(delta, 1e-12)),
                     log_density_mid - math.log(127.5))
    log_probs = tf.where(y < -0.999, log_cdf_plus, tf.where(y > 0.999, log_survival_minus, inner))
    return tf.reduce_sum(_flatten(log_probs), axis=-1)


def log_likelihood(x: tf.Tensor, outputs: tf.Tensor, likelihood: str = "bernoulli") -> tf.Tensor:
    """log p(x|z) under the decoder `likelihood` (one of `LIKELIHOODS`) with its outputs."""
    if likelihood == "bernoulli":
        return bernoulli_log_likelihood(x, outputs)
    if likelihood == "continuous-bernoulli":
        return continuous_bernoulli_log_likelihood(x, outputs)
    if likelihood == "logistic":
        return discretized_logistic_log_likelihood(x, outputs)
    raise ValueError(f"unknown likelihood {likelihood!r}; choose one of {', '.join(LIKELIHOODS)}")


def output_channels(likelihood: str, channels: int) -> int:
    """Decoder output channels per image channel: logits, or μ and log s for the logistic."""
    return 2 * channels if likelihood == "logistic" else channels


def likelihood_mean(outputs: tf.Tensor, likelihood: str = "bernoulli") -> tf.Tensor:
    """E[x|z] in [0, 1], what samples show: sigmoid(η) for the Bernoulli; for the continuous
    Bernoulli λ/(2λ − 1) + 1/(2 tanh⁻¹(1 − 2λ)) (Loaiza-Ganem & Cunningham 2019, eq. 8; ½ + δ/3
    for λ = ½ + δ, |δ| < 10⁻³); for the logistic the location μ, clipped, mapped back to [0, 1]."""
    outputs = tf.cast(outputs, tf.float32)
    if likelihood == "logistic":
        channels = tf.shape(outputs)[-1] // 2
        return (tf.clip_by_value(outputs[..., :channels], -1.0, 1.0) + 1.0) / 2.0
    lam = tf.sigmoid(outputs)
    if likelihood == "bernoulli":
        return lam
    delta = lam - 0.5
    small = tf.abs(delta) < 1e-3
    safe = tf.where(small, tf.fill(tf.shape(lam), 0.25), lam)
    exact = safe / (2.0 * safe - 1.0) + 1.0 / (2.0 * tf.atanh(1.0 - 2.0 * safe))
    return tf.clip_by_value(tf.where(small, 0.5 + delta / 3.0, exact), 0.0, 1.0)


def bits_per_dim(nll_nats: float, dimensions: int) -> float:
    """bits/dim = NLL / (D ln 2), D = H·W·C: the unit papers report colour likelihoods in."""
    return nll_nats / (dimensions * math.log(2.0))


def reconstruction_loss(x: tf.Tensor, logits: tf.Tensor, likelihood: str = "bernoulli") -> tf.Tensor:
    """−log p(x|z): the reconstruction term of the negative ELBO (nats per example)."""
    return -log_likelihood(x, logits, likelihood)


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
                           log_var: tf.Tensor, likelihood: str = "bernoulli") -> tf.Tensor:
    """log w = log p(x|z) + log p(z) − log q(z|x) for samples z ~ q(z|x).

    Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders" (2015), eq. 8.
    Leading sample axes broadcast: z, logits (k, B, ...), mean/log_var (B, J) → (k, B).
    """
    prior = gaussian_log_density(z, tf.zeros_like(z), tf.zeros_like(z))
    posterior = gaussian_log_density(z, mean, log_var)
    return log_likelihood(x, logits, likelihood) + prior - posterior


def iwae_log_likelihood(log_weights: tf.Tensor) -> tf.Tensor:
    """L_k = log (1/k) Σ_i w_i, over the sample axis 0 of (k, B) log-weights → (B,).

    Burda et al. (2015), eq. 8: a lower bound on log p(x) that is never looser than
    the ELBO (L_1 = ELBO in expectation) and tightens monotonically as k grows; with
    k = 5000 it is the standard estimate of the MNIST test log-likelihood. Done with
    logsumexp because the weights themselves underflow (log w ≈ −90 nats).
    """
    k = tf.cast(tf.shape(log_weights)[0], log_weights.dtype)
    return tf.reduce_logsumexp(log_weights, axis=0) - tf.math.log(k)
