"""The autoregressive likelihood, as pure functions: an exact −log p(x) per image.

A PixelCNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks") factorises the
image's distribution over its D = H·W·C values in raster order, colour channels R → G → B
within a pixel:

    p(x) = Π_{i=1..D} p(x_i | x_1, …, x_{i−1}),

each factor read off the network's output at that position (the masks make it see only
x_<i). The negative log-likelihood is then a sum of D exact terms, no bound:

- binarized data (`bernoulli`): p(x_i | x_<i) = Bernoulli(sigmoid(ℓ_i)), one logit each;
- 8-bit data (`categorical`): a 256-way softmax over the levels (van den Oord et al.'s
  choice; −log p of the observed level).

Every function returns one value per image (nats); the caller averages over the batch.
"""

from __future__ import annotations

import math

import tensorflow as tf

LEVELS = 256  # the categorical likelihood's levels: 8-bit pixels


def outputs_per_value(likelihood: str) -> int:
    """Logits the network gives for each of the D values: 1 (Bernoulli) or 256."""
    return 1 if likelihood == "bernoulli" else LEVELS


def bernoulli_nll(x: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """−log p(x) = Σ_i −[x_i log σ(ℓ_i) + (1 − x_i) log(1 − σ(ℓ_i))] for binary x.

    `x` and `logits` (B, H, W, C); computed as sigmoid cross-entropy, stable for any
    logit. All-zero logits give D·ln 2 exactly.
    """
    terms = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(x, tf.float32),
                                                    logits=tf.cast(logits, tf.float32))
    return tf.reduce_sum(terms, axis=[1, 2, 3])


def levels_of(x: tf.Tensor) -> tf.Tensor:
    """8-bit levels 0…255 of images in [0, 1] (the loaders keep them on that grid)."""
    return tf.cast(tf.round(tf.clip_by_value(tf.cast(x, tf.float32), 0.0, 1.0) * (LEVELS - 1)), tf.int32)


def categorical_nll(x: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """−log p(x) = Σ_i −log softmax(ℓ_i)[x_i], x_i the 8-bit level of value i.

    `x` (B, H, W, C) in [0, 1]; `logits` (B, H, W, C, 256).
    """
    terms = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=levels_of(x),
                                                           logits=tf.cast(logits, tf.float32))
    return tf.reduce_sum(terms, axis=[1, 2, 3])


def negative_log_likelihood(likelihood: str, x: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """−log p(x) in nats per image under `likelihood` (one of `pixelcnn.choices.LIKELIHOODS`)."""
    if likelihood == "bernoulli":
        return bernoulli_nll(x, logits)
    return categorical_nll(x, logits)


def bits_per_dim(nll: float | tf.Tensor, dimensions: int) -> float | tf.Tensor:
    """nats per image → bits per value: nll / (D · ln 2)."""
    return nll / (dimensions * math.log(2.0))
