"""PixelCNN networks: every output sees only the values before it in raster order.

Two stacks, chosen by `arch`:

- `plain` (van den Oord et al. 2016a, "Pixel Recurrent Neural Networks"): a 7×7 convolution
  with mask A (the centre pixel itself hidden), then residual 3×3 convolutions with mask B
  (the centre visible). Its receptive field has the known blind spot to the upper right.
- `gated` (van den Oord et al. 2016b, "Conditional Image Generation with PixelCNN
  Decoders"), the default: a vertical stack that sees every row above (all columns) and a
  horizontal stack that sees the pixels to the left in the current row, joined by a 1×1
  convolution from the vertical stack shifted down one row, so no pixel above is missed.
  Each layer is gated, y = tanh(W_f ∗ x + V_f h) ⊙ σ(W_g ∗ x + V_g h), with h the one-hot
  class (a class-conditional bias); the horizontal stack is residual, and every layer adds
  a 1×1 skip connection; the head (ReLU, 1×1, ReLU, 1×1) reads the last layer's output
  plus the skips.

The stacks keep causality by shape, not by masking half a kernel: the vertical kernel is
(k//2 + 1) × k over the rows above and the current one, the horizontal kernel 1 × (k//2 + 1)
over the current pixel and the ones to its left. Colour channels are predicted R → G → B:
feature maps belong to a channel in contiguous blocks, and wherever a kernel reads the
current pixel its taps are masked so that features of channel g see input channels < g
(mask A, the first layer) or ≤ g (mask B, every later layer).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from pixelcnn.choices import ARCHITECTURES
from pixelcnn.losses import bits_per_dim, negative_log_likelihood, outputs_per_value

MASK_TYPES = (None, "A", "B")
PLAIN_FIRST_KERNEL = 7  # van den Oord et al. 2016a's first layer


def channel_groups(features: int, channels: int, halves: int = 1) -> np.ndarray:
    """The colour channel each of `features` maps belongs to: contiguous blocks, repeated in
    each of `halves` halves (the two halves of a gate line up block for block)."""
    per_half = features // halves
    return (np.arange(features) % per_half) * channels // per_half


def kernel_mask(kernel_size: tuple[int, int], centre: tuple[int, int], in_features: int,
                out_features: int, channels: int, mask_type: str | None, halves: int = 1) -> np.ndarray:
    """The (kh, kw, in, out) 0/1 mask of a causal kernel whose tap `centre` reads the current pixel.

    Mask None keeps every tap. Mask A/B keeps the taps before the centre in raster order,
    drops those after it, and at the centre lets output features of channel g see input
    features of channel < g (A) or ≤ g (B).
    """
    mask = np.ones((*kernel_size, in_features, out_features), np.float32)
    if mask_type is None:
        return mask
    rows, columns = kernel_size
    r, c = centre
    mask[r, c + 1:] = 0.0
    mask[r + 1:] = 0.0
    seen_in = channel_groups(in_features, channels)[:, None]
    seen_out = channel_groups(out_features, channels, halves)[None, :]
    mask[r, c] = (seen_in < seen_out) if mask_type == "A" else (seen_in <= seen_out)
    return mask


@keras.saving.register_keras_serializable(package="pixelcnn")
class MaskedConv2D(keras.layers.Layer):
    """A convolution over zero-padded input, its kernel multiplied by a fixed causal mask.

    `padding` (top, bottom, left, right) is added before a VALID convolution, so the tap at
    (top, left) reads the output position itself; `kernel_mask` masks around that tap.
    `halves` = 2 for a layer whose outputs feed a gate.
    """

    def __init__(self, filters: int, kernel_size: tuple[int, int], padding: tuple[int, int, int, int],
                 channels: int, mask_type: str | None = None, halves: int = 1, **kwargs):
        super().__init__(**kwargs)
        if mask_type not in MASK_TYPES:
            raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
        self.filters, self.kernel_size, self.padding = filters, tuple(kernel_size), tuple(padding)
        self.channels, self.mask_type, self.halves = channels, mask_type, halves

    def build(self, input_shape) -> None:
        shape = (*self.kernel_size, int(input_shape[-1]), self.filters)
        self.kernel = self.add_weight(name="kernel", shape=shape, initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        self.mask = kernel_mask(self.kernel_size, self.padding[::2], shape[2], self.filters,
                                self.channels, self.mask_type, self.halves)  # NumPy: a constant in every graph

    @property
    def masked_kernel(self) -> tf.Tensor:
        return self.kernel * self.mask

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        top, bottom, left, right = self.padding
        padded = tf.pad(inputs, [[0, 0], [top, bottom], [left, right], [0, 0]])
        kernel = tf.cast(self.masked_kernel, self.compute_dtype)
        return tf.nn.conv2d(padded, kernel, 1, "VALID") + tf.cast(self.bias, self.compute_dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "padding": self.padding, "channels": self.channels, "mask_type": self.mask_type,
                "halves": self.halves}


def pointwise(filters: int, channels: int, mask_type: str | None = "B", halves: int = 1,
              name: str | None = None) -> MaskedConv2D:
    """A 1×1 convolution; mask B keeps channel g's features from reading later channels."""
    return MaskedConv2D(filters, (1, 1), (0, 0, 0, 0), channels, mask_type, halves, name=name)


def gate(features: tf.Tensor) -> tf.Tensor:
    """tanh(a) ⊙ σ(b) of the two halves [a, b] of the last axis."""
    a, b = tf.split(features, 2, axis=-1)
    return tf.tanh(a) * tf.sigmoid(b)


def down_shift(features: tf.Tensor) -> tf.Tensor:
    """Row r gets row r − 1 (zeros in row 0): the vertical stack's view of the rows above."""
    return tf.pad(features, [[0, 0], [1, 0], [0, 0], [0, 0]])[:, :-1]


@keras.saving.register_keras_serializable(package="pixelcnn")
class GatedBlock(keras.layers.Layer):
    """One gated layer: (v, h) → (v', h', skip) (van den Oord et al. 2016b, figure 2).

    v' = gate(V ∗ v + c_v), with V the (k//2+1) × k vertical kernel and c_v the class bias;
    h' = h + W_o · gate(H ∗ h + c_h + W_vh · shift(V ∗ v + c_v)), with H the 1 × (k//2+1) kernel;
    skip = W_s · gate(…). The first layer reads the image with mask A and has no residual.
    """

    def __init__(self, features: int, kernel_size: int, channels: int, first: bool = False,
                 n_classes: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.features, self.kernel_size, self.channels = features, kernel_size, channels
        self.first, self.n_classes = first, n_classes
        half = kernel_size // 2
        self.vertical = MaskedConv2D(2 * features, (half + 1, kernel_size), (half, 0, half, half),
                                     channels, None, 2, name="vertical")
        self.horizontal = MaskedConv2D(2 * features, (1, half + 1), (0, 0, half, 0), channels,
                                       "A" if first else "B", 2, name="horizontal")
        self.vertical_to_horizontal = pointwise(2 * features, channels, None, 2, name="vertical_to_horizontal")
        self.horizontal_out = pointwise(features, channels, name="horizontal_out")
        self.skip = pointwise(features, channels, name="skip")
        self.label_biases = [keras.layers.Dense(2 * features, use_bias=False, name=name)
                             for name in ("label_vertical", "label_horizontal")] if n_classes else []

    def call(self, vertical: tf.Tensor, horizontal: tf.Tensor,
             labels: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        v_features = self.vertical(vertical)
        h_features = self.horizontal(horizontal)
        if labels is not None:
            v_bias, h_bias = (dense(labels)[:, None, None, :] for dense in self.label_biases)
            v_features, h_features = v_features + v_bias, h_features + h_bias
        h_features = h_features + self.vertical_to_horizontal(down_shift(v_features))
        gated = gate(h_features)
        h_out = self.horizontal_out(gated)
        return gate(v_features), h_out if self.first else horizontal + h_out, self.skip(gated)

    def get_config(self) -> dict:
        return {**super().get_config(), "features": self.features, "kernel_size": self.kernel_size,
                "channels": self.channels, "first": self.first, "n_classes": self.n_classes}


@keras.saving.register_keras_serializable(package="pixelcnn")
class PixelCNN(keras.Model):
    """The autoregressive model p(x) = Π_i p(x_i | x_<i) (and p(x | y) with classes).

    Calling it on images in [0, 1] (and, with `n_classes`, their labels) gives the logits of
    every value's conditional: (B, H, W, C) for `bernoulli`, (B, H, W, C, 256) for
    `categorical`. The network sees 2x − 1. `train_step` minimises the mean −log p(x)
    (`pixelcnn.losses`); the logged `nll` is nats per image, `bits_per_dim` per value.
    """

    def __init__(self, image_shape: tuple[int, int, int], likelihood: str = "bernoulli",
                 arch: str = "gated", features: int = 64, layers: int = 8, kernel_size: int = 5,
                 n_classes: int = 0, **kwargs):
        super().__init__(**kwargs)
        if arch not in ARCHITECTURES or kernel_size % 2 == 0 or layers < 1:
            raise ValueError(f"arch must be one of {ARCHITECTURES}, kernel_size odd, layers ≥ 1; "
                             f"got {arch!r}, {kernel_size}, {layers}")
        self.image_shape = tuple(int(d) for d in image_shape)
        self.likelihood, self.arch, self.features = likelihood, arch, features
        self.layer_count, self.kernel_size, self.n_classes = layers, kernel_size, n_classes
        channels = self.image_shape[-1]
        if arch == "gated":
            self.blocks = [GatedBlock(features, kernel_size, channels, first=i == 0, n_classes=n_classes,
                                      name=f"gated_{i}") for i in range(layers)]
        else:
            self.blocks = plain_layers(features, layers, kernel_size, channels)
            self.label_bias = keras.layers.Dense(features, use_bias=False, name="label") if n_classes else None
        self.head = [pointwise(features, channels, name="head_1"),
                     pointwise(channels * outputs_per_value(likelihood), channels, name="head_2")]
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("nll", "bits_per_dim")}

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return list(self.trackers.values())

    def split(self, inputs) -> tuple[tf.Tensor, tf.Tensor | None]:
        """(images, one-hot labels or None) of `inputs` (images, or [images, labels])."""
        if not self.n_classes:
            return inputs, None
        images, labels = inputs
        return images, tf.one_hot(tf.cast(labels, tf.int32), self.n_classes, dtype=self.compute_dtype)

    def call(self, inputs, training: bool = False) -> tf.Tensor:
        images, labels = self.split(inputs)
        x = tf.cast(images, self.compute_dtype) * 2.0 - 1.0
        if self.arch == "gated":
            vertical, horizontal, skips = x, x, 0.0
            for block in self.blocks:
                vertical, horizontal, skip = block(vertical, horizontal, labels)
                skips = skips + skip
            hidden = horizontal + skips  # the last layer's output and every layer's skip
        else:
            hidden = self.blocks[0](x)
            if labels is not None:
                hidden = hidden + self.label_bias(labels)[:, None, None, :]
            for conv in self.blocks[1:]:
                hidden = hidden + conv(tf.nn.relu(hidden))
        logits = self.head[1](tf.nn.relu(self.head[0](tf.nn.relu(hidden))))
        return self.shape_logits(logits)

    def shape_logits(self, logits: tf.Tensor) -> tf.Tensor:
        """(…, C·K) → (…, C) for Bernoulli, (…, C, 256) for the categorical."""
        if self.likelihood == "bernoulli":
            return logits
        channels = self.image_shape[-1]
        return tf.reshape(logits, tf.concat([tf.shape(logits)[:-1], [channels, -1]], axis=0))

    def images_of(self, data) -> tuple[tf.Tensor, tf.Tensor | list]:
        """(images, model inputs) of a batch: images, or (images, labels)."""
        if self.n_classes:
            images, labels = data
            return images, [images, labels]
        return data, data

    def _nll(self, data, training: bool) -> tf.Tensor:
        images, inputs = self.images_of(data)
        return negative_log_likelihood(self.likelihood, images, self(inputs, training=training))

    def _track(self, nll: tf.Tensor) -> dict[str, tf.Tensor]:
        self.trackers["nll"].update_state(nll)
        self.trackers["bits_per_dim"].update_state(bits_per_dim(nll, int(np.prod(self.image_shape))))
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def train_step(self, data) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            nll = self._nll(data, training=True)
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            loss = self.optimizer.scale_loss(tf.reduce_mean(nll) / replicas)
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return self._track(nll)

    def test_step(self, data) -> dict[str, tf.Tensor]:
        return self._track(self._nll(data, training=False))

    def get_config(self) -> dict:
        return {**super().get_config(), "image_shape": self.image_shape, "likelihood": self.likelihood,
                "arch": self.arch, "features": self.features, "layers": self.layer_count,
                "kernel_size": self.kernel_size, "n_classes": self.n_classes}


def plain_layers(features: int, layers: int, kernel_size: int, channels: int) -> list[MaskedConv2D]:
    """The plain stack: a 7×7 mask-A convolution, then `layers` k×k mask-B residual ones."""
    first, half = PLAIN_FIRST_KERNEL // 2, kernel_size // 2
    return [MaskedConv2D(features, (PLAIN_FIRST_KERNEL,) * 2, (first,) * 4, channels, "A", name="plain_0"),
            *(MaskedConv2D(features, (kernel_size,) * 2, (half,) * 4, channels, "B", name=f"plain_{i + 1}")
              for i in range(layers))]


def build_pixelcnn(image_shape: tuple[int, int, int], likelihood: str = "bernoulli", arch: str = "gated",
                   features: int = 64, layers: int = 8, kernel_size: int = 5, n_classes: int = 0) -> PixelCNN:
    """A built PixelCNN (its weights exist, so optimizers and checkpoints can see them)."""
    model = PixelCNN(image_shape, likelihood, arch, features, layers, kernel_size, n_classes)
    images = tf.zeros((1, *image_shape))
    model([images, tf.zeros((1,), tf.int32)] if n_classes else images)
    return model
