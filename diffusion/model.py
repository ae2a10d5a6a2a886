"""The noise-predicting U-Net ε_θ(x_t, t[, y]) and the model that trains it.

The U-Net follows Ho et al. 2020 (appendix B), scaled down: a 3×3 convolution, then per
resolution `res_blocks` residual blocks (group norm, swish, 3×3 convolution, plus a
projection of the time embedding, group norm, swish, dropout, 3×3 convolution; a 1×1 on the
shortcut where widths differ) and a stride-2 convolution; a middle of two residual blocks
with self-attention between them (optional); the mirror image upwards, every block reading
the matching skip; group norm, swish and a zero-initialised 3×3 convolution to ε̂. The time
enters as the transformer's sinusoidal embedding (Vaswani et al. 2017) through a two-layer
MLP; with classes, a learned embedding of the label is added to it, index `n_classes` being
the null class that classifier-free guidance trains with (Ho & Salimans 2022).

Resolutions follow the image (`common.networks.conv_levels`): 28 → 14 → 7, 32 → … → 4,
64 → … → 4; widths are `features` × (1, 2, 2, 2, …).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from common.ema import ema_decay_at, update_ema
from common.networks import conv_levels
from diffusion.losses import Schedule, bound_term, make_schedule, prior_kl, q_sample, simple_loss

GROUPS = 8  # group norm's groups: widths are multiples of 8


@keras.saving.register_keras_serializable(package="diffusion")
class TimeEmbedding(keras.layers.Layer):
    """t (B,) → [sin(t·ω_k), cos(t·ω_k)] (B, dim), ω_k = 10000^(−k/(dim/2 − 1))."""

    def __init__(self, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim

    def call(self, t: tf.Tensor) -> tf.Tensor:
        half = self.dim // 2
        frequencies = tf.exp(-math.log(10000.0) * tf.range(half, dtype=tf.float32) / (half - 1))
        angles = tf.cast(t, tf.float32)[:, None] * frequencies[None, :]
        return tf.cast(tf.concat([tf.sin(angles), tf.cos(angles)], axis=-1), self.compute_dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "dim": self.dim}


def residual_block(x, embedding, width: int, dropout: float, name: str):
    """x + F(x, t): two group-normed 3×3 convolutions, the time (and class) embedding added
    between them (Ho et al.'s ResnetBlock)."""
    shortcut = x if x.shape[-1] == width else keras.layers.Conv2D(width, 1, name=f"{name}_shortcut")(x)
    h = keras.layers.Activation("swish")(keras.layers.GroupNormalization(GROUPS, name=f"{name}_norm1")(x))
    h = keras.layers.Conv2D(width, 3, padding="same", name=f"{name}_conv1")(h)
    projected = keras.layers.Dense(width, name=f"{name}_time")(keras.layers.Activation("swish")(embedding))
    h = h + keras.layers.Reshape((1, 1, width))(projected)
    h = keras.layers.Activation("swish")(keras.layers.GroupNormalization(GROUPS, name=f"{name}_norm2")(h))
    h = keras.layers.Dropout(dropout)(h)
    h = keras.layers.Conv2D(width, 3, padding="same", kernel_initializer="zeros", name=f"{name}_conv2")(h)
    return shortcut + h


def attention_block(x, name: str):
    """x + attention(norm(x)) over all positions of the feature map (one head)."""
    h = keras.layers.GroupNormalization(GROUPS, name=f"{name}_norm")(x)
    h = keras.layers.MultiHeadAttention(1, x.shape[-1], attention_axes=(1, 2), name=f"{name}_attention")(h, h)
    return x + h


def build_unet(image_shape: tuple[int, int, int], features: int = 32, res_blocks: int = 2,
               attention: bool = True, dropout: float = 0.0, n_classes: int = 0) -> keras.Model:
    """ε_θ as a functional model: inputs [x_t (B, H, W, C) in [−1, 1]-scale, t (B,) int32
    (, y (B,) int32, `n_classes` = the null class)], output ε̂ (B, H, W, C) in float32."""
    if features % GROUPS:
        raise ValueError(f"features must be a multiple of {GROUPS}, got {features}")
    levels = conv_levels(image_shape, "conv")
    widths = [features * min(2, 1 + level) for level in range(levels + 1)]
    image = keras.Input(image_shape, name="x_t")
    time = keras.Input((), dtype="int32", name="t")
    inputs = [image, time]
    embedding = TimeEmbedding(features, name="time_embedding")(time)
    embedding = keras.layers.Dense(4 * features, activation="swish", name="time_mlp1")(embedding)
    embedding = keras.layers.Dense(4 * features, name="time_mlp2")(embedding)
    if n_classes:
        label = keras.Input((), dtype="int32", name="y")
        inputs.append(label)
        embedding = embedding + keras.layers.Embedding(n_classes + 1, 4 * features, name="class_embedding")(label)
    x = keras.layers.Conv2D(features, 3, padding="same", name="conv_in")(image)
    skips = [x]
    for level, width in enumerate(widths):
        for block in range(res_blocks):
            x = residual_block(x, embedding, width, dropout, f"down{level}_{block}")
            skips.append(x)
        if level < levels:
            x = keras.layers.Conv2D(width, 3, strides=2, padding="same", name=f"down{level}_stride")(x)
            skips.append(x)
    x = residual_block(x, embedding, widths[-1], dropout, "middle_0")
    if attention:
        x = attention_block(x, "middle")
    x = residual_block(x, embedding, widths[-1], dropout, "middle_1")
    for level in reversed(range(levels + 1)):
        for block in range(res_blocks + 1):
            x = keras.layers.Concatenate()([x, skips.pop()])
            x = residual_block(x, embedding, widths[level], dropout, f"up{level}_{block}")
        if level:
            x = keras.layers.UpSampling2D(2, name=f"up{level}_resize")(x)
            x = keras.layers.Conv2D(widths[level], 3, padding="same", name=f"up{level}_conv")(x)
    x = keras.layers.Activation("swish")(keras.layers.GroupNormalization(GROUPS, name="norm_out")(x))
    eps = keras.layers.Conv2D(image_shape[-1], 3, padding="same", kernel_initializer="zeros",
                              dtype="float32", name="eps")(x)
    return keras.Model(inputs, eps, name="unet")


class Diffusion(keras.Model):
    """Trains ε_θ with the simple loss (Ho et al. 2020, Algorithm 1) and keeps an exponential
    moving average of its weights (`ema_network`, what samples and scores use).

    A batch is images in [0, 1] (or (images, labels)); they are scaled to [−1, 1]. With
    classes, each label is replaced by the null class with probability `label_dropout`, so
    one network learns p(x | y) and p(x) (classifier-free guidance). `test_step` reports
    the same loss with the averaged weights. Its random draws come from `seed_generator`
    (stateless draws from a seed variable: reproducible, resumable with the checkpoint, and
    compiled by XLA, which roughly doubles the steps per second on a CPU).
    """

    def __init__(self, network: keras.Model, schedule: str = "linear", timesteps: int = 1000,
                 ema_decay: float = 0.999, n_classes: int = 0, label_dropout: float = 0.1, seed: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.network, self.n_classes, self.label_dropout = network, n_classes, label_dropout
        self.ema_network = keras.models.clone_model(network)
        self.ema_network.set_weights(network.get_weights())
        self.schedule, self.timesteps, self.ema_decay = make_schedule(schedule, timesteps), timesteps, ema_decay
        self.alpha_bars = self.schedule.constant("alpha_bars")
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self) -> list:
        return [self.loss_tracker]

    def call(self, inputs, training: bool = False):
        return self.network(inputs, training=training)

    def noised(self, data) -> tuple[list, tf.Tensor, tf.Tensor | None]:
        """([x_t, t], ε, labels) for a batch: t uniform over the steps, ε ~ N(0, I)."""
        images, labels = data if isinstance(data, tuple) else (data, None)
        x0 = tf.cast(images, tf.float32) * 2.0 - 1.0
        t = keras.random.randint((tf.shape(x0)[0],), 0, self.timesteps, dtype="int32", seed=self.seed_generator)
        noise = keras.random.normal(tf.shape(x0), seed=self.seed_generator)
        return [q_sample(x0, t, noise, self.alpha_bars), t], noise, labels

    def train_step(self, data) -> dict[str, tf.Tensor]:
        inputs, noise, labels = self.noised(data)
        if self.n_classes:
            dropped = keras.random.uniform(tf.shape(labels), seed=self.seed_generator) < self.label_dropout
            inputs.append(tf.where(dropped, self.n_classes, tf.cast(labels, tf.int32)))
        variables = self.network.trainable_variables
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(simple_loss(noise, self.network(inputs, training=True)))
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(loss / replicas)
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        update_ema(self.ema_network.trainable_variables, variables,
                   ema_decay_at(self.ema_decay, self.optimizer.iterations))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data) -> dict[str, tf.Tensor]:
        inputs, noise, labels = self.noised(data)
        if self.n_classes:
            inputs.append(tf.cast(labels, tf.int32))
        self.loss_tracker.update_state(tf.reduce_mean(simple_loss(noise, self.ema_network(inputs))))
        return {"loss": self.loss_tracker.result()}


def build_diffusion(image_shape: tuple[int, int, int], features: int = 32, res_blocks: int = 2,
                    attention: bool = True, dropout: float = 0.0, n_classes: int = 0, **process) -> Diffusion:
    """A `Diffusion` around a fresh U-Net; `process`: schedule, timesteps, ema_decay, label_dropout, seed."""
    network = build_unet(image_shape, features, res_blocks, attention, dropout, n_classes)
    return Diffusion(network, n_classes=n_classes, **process)



def variational_bound(network: keras.Model, images: np.ndarray, process: Schedule, labels: np.ndarray | None = None,
                      seed: int = 0, batch: int = 250, progress: int = 0) -> np.ndarray:
    """The bound on −log p(x_0) (−log p(x_0 | y) with labels) of images in [0, 1] on the 8-bit
    grid, nats per image: L_T + Σ_t L_t + L_0 (`diffusion.losses`), each L_t at one draw of
    x_t ~ q(x_t | x_0), the estimate Ho et al. report. T network passes per image."""
    term = tf.function(lambda x0, t, y, seed_pair: _bound_term(network, process, x0, t, y, seed_pair))
    totals = []
    bar = keras.utils.Progbar(process.steps * len(images), verbose=progress, unit_name="pass") if progress else None
    for start in range(0, len(images), batch):
        x0 = tf.constant(images[start:start + batch], tf.float32) * 2.0 - 1.0
        y = None if labels is None else tf.constant(labels[start:start + batch], tf.int32)
        total = prior_kl(x0, process)
        for t in range(process.steps):
            total += term(x0, tf.constant(t), y, tf.constant([seed, start * process.steps + t]))
            if bar and t % 50 == 49:
                bar.add(50 * len(x0))
        totals.append(total.numpy())
    return np.concatenate(totals)


def _bound_term(network, process: Schedule, x0, t, labels, seed_pair):
    steps = tf.fill([tf.shape(x0)[0]], t)
    noise = tf.random.stateless_normal(tf.shape(x0), seed_pair)
    x_t = q_sample(x0, steps, noise, process.constant("alpha_bars"))
    eps = network([x_t, steps] if labels is None else [x_t, steps, labels])
    return bound_term(x0, x_t, steps, eps, process)
