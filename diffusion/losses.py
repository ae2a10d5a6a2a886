"""The diffusion process and its losses, as pure functions.

Ho, Jain & Abbeel 2020, "Denoising Diffusion Probabilistic Models" (DDPM). Data x_0 are
images scaled to [−1, 1]. The forward process adds Gaussian noise in T steps with variances
β_1 … β_T; with α_t = 1 − β_t and ᾱ_t = Π_{s≤t} α_s it has the closed form (eq. 4)

    q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I),   so   x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε.

The network ε_θ(x_t, t) predicts ε; the simple loss (eq. 14) is E ‖ε − ε_θ(x_t, t)‖².
The variational bound (eq. 5) is L_T + Σ_{t>1} L_{t−1} + L_0 with

    L_T     = KL(q(x_T | x_0) ‖ N(0, I)),
    L_{t−1} = KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t)),
    L_0     = −log p_θ(x_0 | x_1)   (the discretized Gaussian decoder of §3.3, eq. 13).

Here p_θ(x_{t−1} | x_t) = N(μ̃_t(x_t, x̂_0), σ_t²) with x̂_0 read off ε_θ, and σ_t² the
posterior variance β̃_t (eq. 7), clipped at t = 1 to β̃_2 (where β̃_1 = 0), as Ho et al.'s code.

Arrays are 0-based: index t = 0 … T−1 is the papers' step t + 1. Every per-image function
returns nats summed over the image's values; callers average over the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from diffusion.choices import SCHEDULES

COSINE_OFFSET = 0.008  # Nichol & Dhariwal's s: keeps β_1 from being vanishingly small
MAX_BETA = 0.999  # their clip, so that the cosine schedule's last steps stay below 1


def linear_betas(steps: int) -> np.ndarray:
    """Ho et al.'s schedule: β rises linearly from 10⁻⁴ to 0.02 over T = 1000 steps (both ends
    scaled by 1000/T for other T, as Nichol & Dhariwal's code, so the total noise stays; at
    most 0.999, which only T < 50 reaches)."""
    scale = 1000.0 / steps
    return np.minimum(np.linspace(scale * 1e-4, scale * 0.02, steps, dtype=np.float64), MAX_BETA)


def cosine_alpha_bar(t: np.ndarray, steps: int) -> np.ndarray:
    """Nichol & Dhariwal 2021 (eq. 17): ᾱ_t = f(t)/f(0), f(t) = cos²(π/2 · (t/T + s)/(1 + s))."""
    f = np.cos((np.asarray(t, np.float64) / steps + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
    f0 = math.cos(COSINE_OFFSET / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
    return f / f0


def cosine_betas(steps: int) -> np.ndarray:
    """β_t = min(1 − ᾱ_t/ᾱ_{t−1}, 0.999) of the cosine ᾱ (Nichol & Dhariwal 2021, §3.2)."""
    alpha_bar = cosine_alpha_bar(np.arange(steps + 1), steps)
    return np.minimum(1.0 - alpha_bar[1:] / alpha_bar[:-1], MAX_BETA)


@dataclass(frozen=True)
class Schedule:
    """The forward process's constants for T = len(betas) steps, in float64."""

    betas: np.ndarray

    @property
    def steps(self) -> int:
        return len(self.betas)

    @property
    def alpha_bars(self) -> np.ndarray:
        return np.cumprod(1.0 - self.betas)

    @property
    def alpha_bars_prev(self) -> np.ndarray:
        return np.append(1.0, self.alpha_bars[:-1])

    @property
    def posterior_variance(self) -> np.ndarray:
        """β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t (eq. 7)."""
        return (1.0 - self.alpha_bars_prev) / (1.0 - self.alpha_bars) * self.betas

    @property
    def reverse_log_variance(self) -> np.ndarray:
        """log σ_t² of p_θ(x_{t−1} | x_t): log β̃_t, with β̃_2 in place of β̃_1 = 0."""
        variance = self.posterior_variance
        return np.log(np.append(variance[1], variance[1:]))

    def constant(self, name: str) -> tf.Tensor:
        """One of the arrays above as a float32 tensor."""
        return tf.constant(getattr(self, name), tf.float32)


def make_schedule(name: str, steps: int) -> Schedule:
    """The `linear` or `cosine` schedule with T = `steps`."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    return Schedule(linear_betas(steps) if name == "linear" else cosine_betas(steps))


def at(values: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
    """values[t] shaped (B, 1, 1, 1), to scale a batch of images."""
    return tf.reshape(tf.gather(values, t), (-1, 1, 1, 1))


def q_sample(x0: tf.Tensor, t: tf.Tensor, noise: tf.Tensor, alpha_bars: tf.Tensor) -> tf.Tensor:
    """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, a draw of q(x_t | x_0) (eq. 4)."""
    alpha_bar = at(alpha_bars, t)
    return tf.sqrt(alpha_bar) * x0 + tf.sqrt(1.0 - alpha_bar) * noise


def predict_x0(x_t: tf.Tensor, t: tf.Tensor, eps: tf.Tensor, alpha_bars: tf.Tensor) -> tf.Tensor:
    """x̂_0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t, eq. 4 solved for x_0."""
    alpha_bar = at(alpha_bars, t)
    return (x_t - tf.sqrt(1.0 - alpha_bar) * eps) / tf.sqrt(alpha_bar)


def simple_loss(noise: tf.Tensor, predicted: tf.Tensor) -> tf.Tensor:
    """L_simple (eq. 14): the mean over values of (ε − ε_θ)², one per image."""
    return tf.reduce_mean(tf.square(tf.cast(noise, tf.float32) - tf.cast(predicted, tf.float32)), axis=[1, 2, 3])


def q_posterior_mean(x0: tf.Tensor, x_t: tf.Tensor, t: tf.Tensor, schedule: Schedule) -> tf.Tensor:
    """μ̃_t(x_t, x_0) = √ᾱ_{t−1} β_t/(1 − ᾱ_t) x_0 + √α_t (1 − ᾱ_{t−1})/(1 − ᾱ_t) x_t (eq. 7)."""
    coef_x0 = np.sqrt(schedule.alpha_bars_prev) * schedule.betas / (1.0 - schedule.alpha_bars)
    coef_xt = np.sqrt(1.0 - schedule.betas) * (1.0 - schedule.alpha_bars_prev) / (1.0 - schedule.alpha_bars)
    return (at(tf.constant(coef_x0, tf.float32), t) * x0
            + at(tf.constant(coef_xt, tf.float32), t) * x_t)


def normal_kl(mean_1: tf.Tensor, log_var_1: tf.Tensor, mean_2: tf.Tensor, log_var_2: tf.Tensor) -> tf.Tensor:
    """KL(N(μ₁, σ₁²) ‖ N(μ₂, σ₂²)) per value: ½(log σ₂²/σ₁² + (σ₁² + (μ₁ − μ₂)²)/σ₂² − 1)."""
    return 0.5 * (log_var_2 - log_var_1 + tf.exp(log_var_1 - log_var_2)
                  + tf.square(mean_1 - mean_2) * tf.exp(-log_var_2) - 1.0)


def standard_normal_cdf(x: tf.Tensor) -> tf.Tensor:
    return 0.5 * (1.0 + tf.math.erf(x / math.sqrt(2.0)))


def discretized_gaussian_nll(x0: tf.Tensor, mean: tf.Tensor, log_variance: tf.Tensor) -> tf.Tensor:
    """L_0 = −log p_θ(x_0 | x_1) of 8-bit data in [−1, 1] (Ho et al. §3.3, eq. 13): the mass
    of N(μ, σ²) on each value's bin [x − 1/255, x + 1/255], the outer bins open to ±∞; nats
    summed per image."""
    x0, mean = tf.cast(x0, tf.float32), tf.cast(mean, tf.float32)
    inverse_scale = tf.exp(-0.5 * log_variance)
    upper = standard_normal_cdf((x0 - mean + 1.0 / 255.0) * inverse_scale)
    lower = standard_normal_cdf((x0 - mean - 1.0 / 255.0) * inverse_scale)
    mass = tf.where(x0 > 0.999, 1.0 - lower, tf.where(x0 < -0.999, upper, upper - lower))
    return -tf.reduce_sum(tf.math.log(tf.maximum(mass, 1e-12)), axis=[1, 2, 3])


def prior_kl(x0: tf.Tensor, schedule: Schedule) -> tf.Tensor:
    """L_T = KL(q(x_T | x_0) ‖ N(0, I)), nats per image."""
    alpha_bar = schedule.alpha_bars[-1]
    kl = normal_kl(math.sqrt(alpha_bar) * tf.cast(x0, tf.float32), tf.constant(math.log(1.0 - alpha_bar)), 0.0,
                   tf.constant(0.0))
    return tf.reduce_sum(kl, axis=[1, 2, 3])


def bound_term(x0: tf.Tensor, x_t: tf.Tensor, t: tf.Tensor, eps: tf.Tensor, schedule: Schedule) -> tf.Tensor:
    """The bound's term at step index t, per image: L_0 where t = 0, else
    KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t)); nats. x̂_0 is not clipped."""
    log_variance = at(schedule.constant("reverse_log_variance"), t)
    model_mean = q_posterior_mean(predict_x0(x_t, t, eps, schedule.constant("alpha_bars")), x_t, t, schedule)
    true_mean = q_posterior_mean(x0, x_t, t, schedule)
    true_log_variance = at(tf.constant(np.log(np.maximum(schedule.posterior_variance, 1e-20)), tf.float32), t)
    kl = tf.reduce_sum(normal_kl(true_mean, true_log_variance, model_mean, log_variance), axis=[1, 2, 3])
    return tf.where(t == 0, discretized_gaussian_nll(x0, model_mean, log_variance), kl)


def bits_per_dim(nats: tf.Tensor, dims: int) -> tf.Tensor:
    """nats per image → bits per value: nats / (D · ln 2)."""
    return nats / (dims * math.log(2.0))
