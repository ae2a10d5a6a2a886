"""GAN losses as pure functions of discriminator logits (or critic values), chosen by name.

Each returns (loss, logs): the scalar to descend and what to log beside it (compare_gan's
`loss_lib` style); `OBJECTIVES` pairs a D loss with a G loss under the name `--loss` takes.

The discriminator ends in a linear unit: its output `l` is a logit with D = sigmoid(l),
so every log D and log(1 − D) is computed stably as a softplus:

    log D(x)      = −softplus(−l)
    log(1 − D(x)) = −softplus(l)

References:
  Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (eq. 1, Algorithm 1, §3).
  Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016 (§3.4, one-sided
  label smoothing).
  Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017 (Algorithm 1).
  Lim & Ye, "Geometric GAN", 2017 (eq. 9–10), the hinge loss as used by Miyato et al.,
  "Spectral Normalization for Generative Adversarial Networks", ICLR 2018 (eq. 16–17).
  Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017 (eq. 2, a=0, b=c=1).
  Mescheder et al., "Which Training Methods for GANs do actually Converge?", ICML 2018 (eq. 9, R1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

Logs = dict[str, tf.Tensor]


def critic_logs(real_scores: tf.Tensor, fake_scores: tf.Tensor) -> Logs:
    """The mean critic values on real and fake inputs, the logs of every score-based D."""
    return {"critic_real": tf.reduce_mean(real_scores), "critic_fake": tf.reduce_mean(fake_scores)}


def discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor,
                       label_smoothing: float = 0.0) -> tuple[tf.Tensor, Logs]:
    """−E[log D(x)] − E[log(1 − D(G(z)))]: the discriminator's side of the value function.

    Goodfellow et al. 2014, eq. 1 (D ascends V(D, G); we descend −V). With one-sided
    label smoothing s (Salimans et al. 2016) the real target is 1 − s, so the first term
    becomes −E[(1 − s) log D(x) + s log(1 − D(x))]; fake targets stay 0. Logs the mean
    D(x) and D(G(z)) (probabilities).
    """
    real_target = 1.0 - label_smoothing
    real = real_target * tf.nn.softplus(-real_logits) + label_smoothing * tf.nn.softplus(real_logits)
    fake = tf.nn.softplus(fake_logits)
    return (tf.reduce_mean(real) + tf.reduce_mean(fake),
            {"d_real": tf.reduce_mean(tf.sigmoid(real_logits)), "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits))})


def minimax_generator_loss(fake_logits: tf.Tensor) -> tuple[tf.Tensor, Logs]:
    """E[log(1 − D(G(z)))], the generator's term of eq. 1 (Goodfellow et al. 2014).

    It saturates: when D rejects the samples (l → −∞) its gradient −sigmoid(l) → 0.
    """
    return -tf.reduce_mean(tf.nn.softplus(fake_logits)), {}


def nonsaturating_generator_loss(fake_logits: tf.Tensor) -> tuple[tf.Tensor, Logs]:
    """−E[log D(G(z))]: the paper's practical alternative (Goodfellow et al. 2014, §3).

    Same fixed point as the minimax loss, but the gradient −(1 − sigmoid(l)) → −1 where the
    minimax one vanishes, so G learns early in training when D easily rejects its samples.
    """
    return tf.reduce_mean(tf.nn.softplus(-fake_logits)), {}


def wasserstein_critic_loss(real_scores: tf.Tensor, fake_scores: tf.Tensor) -> tuple[tf.Tensor, Logs]:
    """E[C(G(z))] − E[C(x)]: the critic's estimate of −W(P_r, P_g) (Gulrajani et al. 2017).

    The gradient penalty (times λ) is added by the caller; see `gradient_penalty`.
    """
    return tf.reduce_mean(fake_scores) - tf.reduce_mean(real_scores), critic_logs(real_scores, fake_scores)


def wasserstein_generator_loss(fake_scores: tf.Tensor) -> tuple[tf.Tensor, Logs]:
    """−E[C(G(z))] (Gulrajani et al. 2017, Algorithm 1, line 11)."""
    return -tf.reduce_mean(fake_scores), {}


def gradient_penalty(critic: Callable[[tf.Tensor], tf.Tensor], real: tf.Tensor, fake: tf.Tensor,
                     epsilon: tf.Tensor | None = None) -> tf.Tensor:
    """E[(‖∇C(x̂)‖₂ − 1)²] with x̂ = ε x + (1 − ε) x̃ (Gulrajani et al. 2017, Algorithm 1).

    One ε ~ U[0, 1] per sample (shape (B, 1, 1, 1)) unless given, so x̂ lies on the segment
    between each real image and its paired fake. The norm is over all pixels of a sample.
    """
    if epsilon is None:
        epsilon = tf.random.uniform([tf.shape(real)[0], 1, 1, 1], dtype=real.dtype)
    interpolates = epsilon * real + (1.0 - epsilon) * fake
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        scores = critic(interpolates)
    gradients = tape.gradient(scores, interpolates)
    # Summing the critic's outputs gives each sample's own gradient: samples do not interact.
    norms = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3]) + 1e-12)
    return tf.reduce_mean(tf.square(norms - 1.0))


def hinge_discriminator_loss(real_scores: tf.Tensor, fake_scores: tf.Tensor) -> tuple[tf.Tensor, Logs]:
    """E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye 2017; Miyato et al. 2018, eq. 16).

    D's outputs are unbounded scores; once a real score exceeds 1 (a fake one falls below
    −1) that sample stops contributing, so D is not pushed to ever larger margins.
    """
    loss = tf.reduce_mean(tf.nn.relu(1.0 - real_scores)) + tf.reduce_mean(tf.nn.relu(1.0 + fake_scores))
    return loss, critic_logs(real_scores, fake_scores)


def hinge_generator_loss(fake_scores: tf.Tensor) -> tuple[tf.Tensor, Logs]:
    """−E[D(G(z))] (Miyato et al. 2018, eq. 17): the generator's side of the hinge loss."""
    return -tf.reduce_mean(fake_scores), {}


def least_squares_discriminator_loss(real_scores: tf.Tensor, fake_scores: tf.Tensor) -> tuple[tf.Tensor, Logs]:
    """½ E[(D(x) − 1)²] + ½ E[D(G(z))²]: LSGAN's D loss with targets b = 1 (real), a = 0 (fake)
    (Mao et al. 2017, eq. 2). The quadratic keeps pulling fakes that lie far on the real
    side of the boundary, where the sigmoid loss saturates."""
    loss = 0.5 * tf.reduce_mean(tf.square(real_scores - 1.0)) + 0.5 * tf.reduce_mean(tf.square(fake_scores))
    return loss, critic_logs(real_scores, fake_scores)


def least_squares_generator_loss(fake_scores: tf.Tensor) -> tuple[tf.Tensor, Logs]:
    """½ E[(D(G(z)) − 1)²]: G wants D to output c = 1 for its samples (Mao et al. 2017, eq. 2)."""
    return 0.5 * tf.reduce_mean(tf.square(fake_scores - 1.0)), {}


def r1_penalty(discriminator: Callable[[tf.Tensor], tf.Tensor], real: tf.Tensor) -> tf.Tensor:
    """E_x[‖∇ₓD(x)‖²] on real data; D's loss adds γ/2 times it (Mescheder et al. 2018, eq. 9).

    Penalising D's gradient on the data only (not on interpolates as WGAN-GP does) makes
    the GAN locally convergent near the equilibrium. The norm is over all pixels of a sample.
    """
    with tf.GradientTape() as tape:
        tape.watch(real)
        scores = discriminator(real)
    gradients = tape.gradient(scores, real)  # the sum of the outputs: samples do not interact
    return tf.reduce_mean(tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3]))


# --- the registry: an objective is a D loss and a G loss, each returning (loss, logs) --------


@dataclass(frozen=True)
class Objective:
    """One GAN objective: D's loss (real outputs, fake outputs[, label smoothing]) → (loss,
    logs) and G's loss (fake outputs) → (loss, logs); `gradient_penalty`: D's loss also
    gets λ·`gradient_penalty` (WGAN-GP); `logits`: D's outputs are logits of a
    probability and D's loss takes label smoothing (else unbounded critic values, for
    which label smoothing has no meaning)."""

    discriminator: Callable[..., tuple[tf.Tensor, Logs]]
    generator: Callable[[tf.Tensor], tuple[tf.Tensor, Logs]]
    gradient_penalty: bool = False
    logits: bool = True


OBJECTIVES: dict[str, Objective] = {
    "nonsaturating": Objective(discriminator_loss, nonsaturating_generator_loss),
    "minimax": Objective(discriminator_loss, minimax_generator_loss),
    "wgan-gp": Objective(wasserstein_critic_loss, wasserstein_generator_loss, gradient_penalty=True,
                         logits=False),
    "hinge": Objective(hinge_discriminator_loss, hinge_generator_loss, logits=False),
    "lsgan": Objective(least_squares_discriminator_loss, least_squares_generator_loss, logits=False),
}
# --loss offers gan.choices.LOSSES (and LOGIT_LOSSES), named there without TensorFlow: a new
# objective goes there too (tests/gan/test_losses.py checks that they agree).


def objective(name: str) -> Objective:
    """The registered objective called `name`."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown GAN loss {name!r}; registered: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]
