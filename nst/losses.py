"""The neural style transfer losses (Gatys, Ecker & Bethge, CVPR 2016), as pure functions,
and at the end the mean/std losses of arbitrary style transfer with AdaIN (Huang & Belongie,
ICCV 2017).

Activations are one image's feature map a of shape (n_H, n_W, n_C) or (1, n_H, n_W, n_C).
Everything here computes in float32, whatever dtype the network ran in: a Gram matrix
sums n_H·n_W products, which overflows float16 at any useful image size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import tensorflow as tf


def _unrolled(features: tf.Tensor) -> tf.Tensor:
    """(1, n_H, n_W, n_C) or (n_H, n_W, n_C) → float32 (n_H·n_W, n_C)."""
    features = tf.cast(features, tf.float32)
    return tf.reshape(features, (-1, tf.shape(features)[-1]))


def content_loss(content: tf.Tensor, generated: tf.Tensor) -> tf.Tensor:
    """J_content = 1/(4·n_H·n_W·n_C) · Σ (a_C − a_G)²  at the content layer.

    Gatys et al. 2016, eq. 1, with the size normalisation of the deeplearning.ai course, so
    the value does not grow with the image.
    """
    content, generated = _unrolled(content), _unrolled(generated)
    count = tf.cast(tf.size(content), tf.float32)
    return tf.reduce_sum(tf.square(content - generated)) / (4.0 * count)


def gram_matrix(features: tf.Tensor) -> tf.Tensor:
    """G = A·Aᵀ of the unrolled activations A (n_C × n_H·n_W): n_C × n_C channel correlations.

    Gatys et al. 2016, eq. 3: G_ij = Σ_k F_ik·F_jk.
    """
    unrolled = _unrolled(features)
    return tf.matmul(unrolled, unrolled, transpose_a=True)


def masked_gram_matrices(features: tf.Tensor, masks: tf.Tensor) -> tf.Tensor:
    """One Gram matrix per region: G_s = (F∘m_s)ᵀ(F∘m_s), i.e. G_s,ij = Σ_k m_sk²·F_ik·F_jk.

    Gatys, Ecker, Bethge, Hertzmann & Shechtman, "Controlling Perceptual Factors in Neural
    Style Transfer" (CVPR 2017), spatial control: the features are multiplied by each
    region's guidance channel before the Gram. `masks` is (S, n_H, n_W) at this layer's
    resolution; the result is (S, n_C, n_C). A mask of ones gives `gram_matrix`.
    """
    unrolled = _unrolled(features)                                      # (n_H·n_W, n_C)
    weights = tf.reshape(tf.cast(masks, tf.float32), (tf.shape(masks)[0], -1, 1))
    weighted = weights * unrolled[None]                                  # (S, n_H·n_W, n_C)
    return tf.matmul(weighted, weighted, transpose_a=True)


def style_layer_loss(style_gram: tf.Tensor, generated_gram: tf.Tensor,
                     positions: int | tf.Tensor) -> tf.Tensor:
    """J_style[l] = 1/(4·n_C²·(n_H·n_W)²) · Σ (G_S − G_G)²  (Gatys et al. 2016, eq. 4).

    `positions` is n_H·n_W of the generated image at this layer. Both Gram matrices must
    be over that many positions (see `rescale_gram` for a style image of another size).
    With region masks the Grams are stacks (S, n_C, n_C), one per region, each target
    rescaled to its region's positions; the sum runs over every region and `positions`
    stays the whole image's, so a style weight means the same with and without masks.
    """
    style_gram = tf.cast(style_gram, tf.float32)
    generated_gram = tf.cast(generated_gram, tf.float32)
    channels = tf.cast(tf.shape(generated_gram)[-1], tf.float32)
    positions = tf.cast(positions, tf.float32)
    return tf.reduce_sum(tf.square(style_gram - generated_gram)) / (
        4.0 * tf.square(channels) * tf.square(positions))


def rescale_gram(gram: tf.Tensor, from_positions: int, to_positions: int) -> tf.Tensor:
    """A Gram matrix summed over `from_positions` as if summed over `to_positions`.

    G grows linearly with n_H·n_W, so a style image of another size than the output
    would otherwise weigh more or less; rescaling keeps J_style about the statistics.
    """
    return tf.cast(gram, tf.float32) * (float(to_positions) / float(from_positions))


def style_loss(style_grams: Mapping[str, tf.Tensor], generated: Mapping[str, tf.Tensor],
               layer_weights: Mapping[str, float],
               masks: Mapping[str, tf.Tensor] | None = None
               ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """J_style = Σ_l λ_l · J_style[l]  (Gatys et al. 2016, eq. 5); λ_l sum to 1.

    With `masks` ({layer: (S, n_H, n_W)}) each region has its own target Gram (see
    `masked_gram_matrices`). Returns the total and each layer's unweighted J_style[l].
    """
    per_layer = {}
    total = tf.constant(0.0, tf.float32)
    for name, weight in layer_weights.items():
        features = generated[name]
        positions = tf.shape(features)[-3] * tf.shape(features)[-2]
        gram = gram_matrix(features) if masks is None else \
            masked_gram_matrices(features, masks[name])
        per_layer[name] = style_layer_loss(style_grams[name], gram, positions)
        total += weight * per_layer[name]
    return total, per_layer


def total_variation_loss(image: tf.Tensor) -> tf.Tensor:
    """TV = 1/(H·W·C) · Σ_ijc [(x_{i+1,j,c} − x_ijc)² + (x_{i,j+1,c} − x_ijc)²].

    The squared (smooth) total variation of Mahendran & Vedaldi 2015, as used by
    jcjohnson/neural-style, per pixel so its weight does not depend on the image size.
    """
    image = tf.cast(image, tf.float32)
    down = image[..., 1:, :, :] - image[..., :-1, :, :]
    right = image[..., :, 1:, :] - image[..., :, :-1, :]
    count = tf.cast(tf.size(image), tf.float32)
    return (tf.reduce_sum(tf.square(down)) + tf.reduce_sum(tf.square(right))) / count


def total_loss(content: tf.Tensor, style: tf.Tensor, variation: tf.Tensor, content_weight: float,
               style_weight: float, tv_weight: float) -> tf.Tensor:
    """J = α·J_content + β·J_style + γ·TV  (Gatys et al. 2016, eq. 7, plus a TV prior)."""
    return content_weight * content + style_weight * style + tv_weight * variation


def channel_mean_std(features: tf.Tensor, epsilon: float = 1e-5) -> tuple[tf.Tensor, tf.Tensor]:
    """μ(x)_nc = 1/(HW)·Σ_hw x_nhwc and σ(x)_nc = √(1/(HW)·Σ_hw (x_nhwc − μ_nc)² + ε).

    Per image and channel over the spatial positions (Huang & Belongie 2017, eqs. 5–6), in
    float32, kept as (N, 1, 1, C) so they broadcast against the features.
    """
    features = tf.cast(features, tf.float32)
    mean, variance = tf.nn.moments(features, axes=[1, 2], keepdims=True)
    return mean, tf.sqrt(variance + epsilon)


def adain_content_loss(target: tf.Tensor, generated: tf.Tensor) -> tf.Tensor:
    """L_c = ‖f(g(t)) − t‖²  (Huang & Belongie, ICCV 2017, eq. 12), as a mean over elements.

    t = AdaIN(f(c), f(s)) is the target at relu4_1 (not the content image's own features),
    f(g(t)) the encoder's relu4_1 features of the decoded image.
    """
    return tf.reduce_mean(tf.square(tf.cast(target, tf.float32) - tf.cast(generated, tf.float32)))


def adain_style_loss(style: Sequence[tf.Tensor], generated: Sequence[tf.Tensor]) -> tf.Tensor:
    """L_s = Σ_i ‖μ(φ_i(g(t))) − μ(φ_i(s))‖² + Σ_i ‖σ(φ_i(g(t))) − σ(φ_i(s))‖²
    (Huang & Belongie 2017, eq. 13), each norm a mean over images and channels.

    φ_i are the encoder's layers relu1_1, relu2_1, relu3_1, relu4_1: only the channel-wise
    mean and standard deviation are matched, not the Gram matrices of Gatys et al.
    """
    total = tf.constant(0.0, tf.float32)
    for style_features, generated_features in zip(style, generated):
        style_mean, style_std = channel_mean_std(style_features)
        mean, std = channel_mean_std(generated_features)
        total += tf.reduce_mean(tf.square(mean - style_mean)) + tf.reduce_mean(tf.square(std - style_std))
    return total
