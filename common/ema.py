"""An exponential moving average of a network's weights, what the GAN's generator and the
diffusion model's U-Net sample with (Karras et al., "Progressive Growing of GANs", ICLR 2018;
Yazıcı et al., "The Unusual Effectiveness of Averaging in GAN Training", ICLR 2019; Ho et al.
2020 evaluate DDPM with it)."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf


def ema_decay_at(decay: float, updates: tf.Tensor | int) -> tf.Tensor:
    """min(decay, (1 + t) / (10 + t)) after t updates (tf.train.ExponentialMovingAverage's
    `num_updates` rule): early on the average follows the fast-changing weights closely
    instead of remembering the random initialisation for ~1/(1 − decay) steps."""
    t = tf.cast(updates, tf.float32)
    return tf.minimum(tf.constant(decay, tf.float32), (1.0 + t) / (10.0 + t))


def update_ema(average: Sequence[tf.Variable], current: Sequence[tf.Variable],
               decay: tf.Tensor | float) -> None:
    """θ_avg ← d·θ_avg + (1 − d)·θ for each pair of variables (Karras et al. 2018)."""
    for avg, value in zip(average, current):
        avg.assign(decay * avg + (1.0 - decay) * tf.cast(value, avg.dtype))
