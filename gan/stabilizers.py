"""GAN stabilisers, each switched on by a flag of `gan.train` (docs/gan.md, "Stabilisers").

- `SpectralNorm`, `spectrally_normalized`: Miyato et al., "Spectral Normalization for
  Generative Adversarial Networks", ICLR 2018 (eq. 8 and Algorithm 1): every weight W of
  the discriminator is used as W / σ(W), σ the largest singular value, estimated by one
  power-iteration step per training call with the vector u kept between calls.
- `copy_variables`: the EMA generator's batch-norm statistics (its weights' average is
  `common.ema`'s).
- `translate`, `cutout`, `diff_augment`: Zhao et al., "Differentiable Augmentation for
  Data-Efficient GAN Training", NeurIPS 2020 (§3, the `translation` and `cutout` policies):
  the same random, differentiable transformation T is applied to every image D sees, real
  or fake, in D's and in G's step, so D cannot memorise the training set and G's gradient
  passes through T.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import ops

TRANSLATION_RATIO = 0.125  # Zhao et al.'s defaults: shifts up to 1/8 of the side,
CUTOUT_RATIO = 0.5  # a square of half the side zeroed


@keras.saving.register_keras_serializable(package="gan")
class SpectralNorm(keras.layers.Wrapper):
    """A Dense or Conv2D layer whose kernel W is used as W / σ(W) (Miyato et al. 2018).

    W is reshaped to a matrix (fan-in × units); u (1 × units) is non-trainable state. Each
    training call takes one power-iteration step, v = normalise(u Wᵀ), u = normalise(v W),
    and σ = v W uᵀ with u, v held constant, so the gradient of W / σ includes σ's own
    dependence on W (their eq. 12). Outside training u is used as it is.
    Unlike `keras.layers.SpectralNormalization`, which overwrites the kernel with W / σ in
    every training call, W stays the trained parameter, as in the paper.
    """

    def build(self, input_shape):
        if not isinstance(self.layer, (keras.layers.Dense, keras.layers.Conv2D)):
            raise ValueError(f"SpectralNorm wraps Dense or Conv2D, not {type(self.layer).__name__}")
        super().build(input_shape)
        units = self.layer.kernel.shape[-1]
        self.u = self.add_weight(shape=(1, units), initializer=keras.initializers.RandomNormal(),
                                 trainable=False, name="u", dtype="float32", aggregation="mean")

    def normalized_kernel(self, training: bool = False) -> tf.Tensor:
        """W / σ(W), float32; with `training`, one power-iteration step first (u updated)."""
        kernel = ops.cast(self.layer.kernel.value, "float32")
        matrix = ops.reshape(kernel, (-1, kernel.shape[-1]))
        u = self.u.value
        v = ops.stop_gradient(_normalize(ops.matmul(u, ops.transpose(matrix))))
        if training:
            u = ops.stop_gradient(_normalize(ops.matmul(v, matrix)))
            self.u.assign(u)
        sigma = ops.sum(ops.matmul(v, matrix) * u)
        return kernel / sigma

    def call(self, inputs, training=None):
        layer = self.layer
        kernel = ops.cast(self.normalized_kernel(bool(training)), inputs.dtype)
        if isinstance(layer, keras.layers.Conv2D):
            outputs = ops.conv(inputs, kernel, strides=layer.strides, padding=layer.padding,
                               data_format=layer.data_format, dilation_rate=layer.dilation_rate)
        else:
            outputs = ops.matmul(inputs, kernel)
        if layer.use_bias:
            outputs = outputs + ops.cast(layer.bias.value, inputs.dtype)
        return layer.activation(outputs)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


def _normalize(vector: tf.Tensor) -> tf.Tensor:
    return vector / (ops.sqrt(ops.sum(ops.square(vector))) + 1e-12)


def _clone_with_spectral_norm(layer: keras.layers.Layer) -> keras.layers.Layer:
    fresh = layer.__class__.from_config(layer.get_config())
    if isinstance(fresh, (keras.layers.Dense, keras.layers.Conv2D)):
        # The wrapper takes the layer's name (D's output stays "logit") and its dtype policy.
        fresh.name = f"{layer.name}_kernel"
        return SpectralNorm(fresh, name=layer.name, dtype=layer.dtype_policy)
    return fresh


def spectrally_normalized(discriminator: keras.Model) -> keras.Model:
    """A fresh copy of a functional discriminator with every Dense and Conv2D layer wrapped
    in `SpectralNorm` (new weights; other layers unchanged)."""
    return keras.models.clone_model(discriminator, clone_function=_clone_with_spectral_norm)


# --- the EMA generator's batch-norm statistics ------------------------------------------------

def copy_variables(target: Sequence[tf.Variable], source: Sequence[tf.Variable]) -> None:
    """target ← source (the EMA generator's batch-norm statistics follow the trained ones)."""
    for to, value in zip(target, source):
        to.assign(value)


# --- DiffAugment -----------------------------------------------------------------------------

def translate(images: tf.Tensor, shift_y: tf.Tensor, shift_x: tf.Tensor) -> tf.Tensor:
    """Each image (B, H, W, C) moved down by shift_y[b] and right by shift_x[b] pixels
    (int32 (B,)), zeros shifted in. A product with one-hot shift matrices, so it is exact
    and differentiable with respect to the images."""
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    # rows[b, i, j] = 1 where j = i − shift_y[b]: output row i takes input row j.
    rows = tf.one_hot(tf.range(height)[None, :] - shift_y[:, None], height, dtype=images.dtype)
    columns = tf.one_hot(tf.range(width)[None, :] - shift_x[:, None], width, dtype=images.dtype)
    return tf.einsum("bij,bjkc,blk->bilc", rows, images, columns)


def cutout(images: tf.Tensor, centre_y: tf.Tensor, centre_x: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Each image with the size[0]×size[1] square centred at (centre_y[b], centre_x[b]) set
    to 0 (clipped at the border); Zhao et al.'s cutout."""
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    y, x = tf.range(height)[None, :], tf.range(width)[None, :]
    inside_y = (y >= centre_y[:, None] - size[0] // 2) & (y < centre_y[:, None] - size[0] // 2 + size[0])
    inside_x = (x >= centre_x[:, None] - size[1] // 2) & (x < centre_x[:, None] - size[1] // 2 + size[1])
    hole = tf.cast(inside_y[:, :, None] & inside_x[:, None, :], images.dtype)
    return images * (1.0 - hole)[..., None]


def diff_augment(images: tf.Tensor, policy: Sequence[str], rng: tf.random.Generator) -> tf.Tensor:
    """`policy`'s transformations in order, with fresh random parameters per image from
    `rng`: translation by up to ±1/8 of each side, cutout of a square of half the side."""
    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    for name in policy:
        if name == "translation":
            reach_y, reach_x = int(height * TRANSLATION_RATIO + 0.5), int(width * TRANSLATION_RATIO + 0.5)
            shift_y = rng.uniform([batch], -reach_y, reach_y + 1, dtype=tf.int32)
            shift_x = rng.uniform([batch], -reach_x, reach_x + 1, dtype=tf.int32)
            images = translate(images, shift_y, shift_x)
        elif name == "cutout":
            size = (int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5))
            centre_y = rng.uniform([batch], 0, height + (1 - size[0] % 2), dtype=tf.int32)
            centre_x = rng.uniform([batch], 0, width + (1 - size[1] % 2), dtype=tf.int32)
            images = cutout(images, centre_y, centre_x, size)
    return images
