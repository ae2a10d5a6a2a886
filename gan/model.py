"""Generator and discriminator networks, and the GAN whose `train_step` is Algorithm 1.

Goodfellow et al., "Generative Adversarial Nets" (2014), Algorithm 1: each training
iteration takes k discriminator steps, each on a fresh minibatch of real data and a fresh
minibatch of noise, then one generator step on a fresh minibatch of noise.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from common.ema import ema_decay_at, update_ema
from common.errors import UserError
from common.networks import MNIST_SHAPE, conv_levels
from gan import losses, stabilizers
from gan.choices import ARCHITECTURES, DOWNSAMPLING, UPSAMPLING

PIXEL_MEAN_CLIP = 1e-7  # pylearn2's clip before the logit of the pixel means


def dcgan_init(init: str) -> dict:
    """Kernel initialiser of dcgan layers: Radford et al. 2016's N(0, 0.02), or Keras' default
    Glorot uniform, U(±√(6 / (fan_in + fan_out)))."""
    if init == "radford":
        return {"kernel_initializer": keras.initializers.RandomNormal(0.0, 0.02)}
    return {}


def mlp_init(init: str, irange: float) -> dict:
    """Kernel initialiser of mlp layers: U(±irange) with `goodfellow` (the GAN paper's code:
    0.05 in G, 0.005 in D), else Keras' default Glorot uniform."""
    if init == "goodfellow":
        return {"kernel_initializer": keras.initializers.RandomUniform(-irange, irange)}
    return {}


def set_output_bias_from_pixel_means(generator: keras.Model, pixel_means: np.ndarray) -> None:
    """b = logit(clip(m, 1e-7, 1 − 1e-7)) for the mlp generator's last layer, so that at the
    start σ(b) is the training images' mean of each pixel (pylearn2's
    init_sigmoid_bias_from_marginals, which the paper's MNIST generator used)."""
    means = np.clip(np.asarray(pixel_means, np.float64).reshape(-1), PIXEL_MEAN_CLIP, 1 - PIXEL_MEAN_CLIP)
    layer = generator.get_layer("pixels")
    kernel, _ = layer.get_weights()
    layer.set_weights([kernel, np.log(means / (1 - means)).astype(np.float32)])


def dcgan_batch_norm(init: str) -> keras.layers.BatchNormalization:
    """Batch norm, synchronized: under tf.distribute its statistics are those of the global
    batch. Scale γ ~ N(1, 0.02) with the Radford init (γ = 1 with Glorot). Momentum 0.9
    (PyTorch's 0.1, as in the reference DCGAN code): the moving statistics that sample grids
    use keep up with a generator that changes fast; Keras' 0.99 lags it by hundreds of steps."""
    gamma = keras.initializers.RandomNormal(1.0, 0.02) if init == "radford" else "ones"
    return keras.layers.BatchNormalization(momentum=0.9, synchronized=True, gamma_initializer=gamma)


def noise_size(generator: keras.Model) -> int:
    """The length of z: the generator's (first) input, also for a conditional [noise, label] one."""
    return int(generator.inputs[0].shape[-1])


def from_unit_range(images, activation: str):
    """Pixels in [0, 1] → the generator's output range: [−1, 1] for tanh and linear, [0, 1]
    for sigmoid."""
    return images if activation == "sigmoid" else images * 2.0 - 1.0


def to_unit_range(images, activation: str):
    """The generator's output → [0, 1] (the inverse of `from_unit_range`; a linear output is
    clipped to the pixel range)."""
    if activation == "sigmoid":
        return images
    return np.clip((images + 1.0) / 2.0, 0.0, 1.0) if activation == "linear" else (images + 1.0) / 2.0


@keras.saving.register_keras_serializable(package="gan")
class Maxout(keras.layers.Layer):
    """max over `pieces` linear units for each of `units` outputs (Goodfellow et al. 2013)."""

    def __init__(self, units: int, pieces: int, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units, self.pieces = units, pieces
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.linear = keras.layers.Dense(units * pieces, kernel_initializer=self.kernel_initializer)

    def call(self, inputs):
        pieces = keras.ops.reshape(self.linear(inputs), (-1, self.units, self.pieces))
        return keras.ops.max(pieces, axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "pieces": self.pieces,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@keras.saving.register_keras_serializable(package="gan")
class MixtureNoise(keras.layers.Layer):
    """z ~ N(0, I) of length d → a draw from a mixture of N Gaussians in d − 1 dimensions,
    z' = μ_c + z_{2..d}, with c = ⌊N·Φ(z_1)⌋ uniform over the N components and the means μ_c
    learnt with G (Gurumurthy et al. 2017, "DeLiGAN", here with unit σ).

    Why: the data may lie on disconnected pieces (the `shapes` dataset: 3 shapes × 6
    colours), and a continuous G of one connected Gaussian must put samples between them
    (Khayatkhoei et al. 2018). The means start N(0, spread²): with spread 3 and d = 100 two
    of them lie about 3·√(2·99) ≈ 42 apart against a radius √99 ≈ 10 for each piece.
    Taking c from z itself keeps G a function of a standard normal z, so sampling,
    interpolation and the EMA generator need nothing new.
    """

    def __init__(self, components: int, spread: float = 3.0, **kwargs):
        super().__init__(**kwargs)
        self.components, self.spread = components, spread

    def build(self, input_shape):
        self.means = self.add_weight(shape=(self.components, input_shape[-1] - 1), name="means",
                                     initializer=keras.initializers.RandomNormal(0.0, self.spread))

    def call(self, z):
        uniform = 0.5 * (1.0 + tf.math.erf(z[:, 0] / np.sqrt(2.0)))  # Φ(z_1) ~ U(0, 1)
        component = tf.minimum(tf.cast(uniform * self.components, tf.int32), self.components - 1)
        return tf.gather(self.means, component) + z[:, 1:]

    def get_config(self) -> dict:
        return {**super().get_config(), "components": self.components, "spread": self.spread}


def dcgan_upsampling(x, upsample: str, filters: int, init: str, use_bias: bool = True):
    """One doubling of G's resolution: Radford et al.'s stride-2 4×4 transposed convolution,
    or a nearest-neighbour resize and a 3×3 convolution (Odena, Dumoulin & Olah 2016,
    "Deconvolution and Checkerboard Artifacts"): a transposed convolution's kernels overlap
    unevenly on the output grid and leave a checkerboard that flat areas show; resizing
    first gives every output pixel the same number of kernel taps."""
    if upsample == "nearest":
        x = keras.layers.UpSampling2D(2, interpolation="nearest")(x)
        return keras.layers.Conv2D(filters, 3, padding="same", use_bias=use_bias, **dcgan_init(init))(x)
    if upsample != "transposed":
        raise UserError(f"unknown upsampling {upsample!r}; choose one of {', '.join(UPSAMPLING)}")
    return keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=use_bias,
                                        **dcgan_init(init))(x)


def dcgan_downsampling(x, downsample: str, filters: int, init: str):
    """One halving of D's resolution, with its LeakyReLU(0.2):
    Radford et al.'s stride-2 4×4 convolution, or a 3×3 convolution whose activations are
    then averaged over 2×2. Two reasons for the second (docs/gan.md, `shapes`): the gradient
    D passes back to G through a strided convolution is a transposed convolution, with the
    same uneven kernel overlap (and checkerboard) as G's own (Odena, Dumoulin & Olah 2016);
    and a linear filter sampled every second pixel folds a 2-pixel pattern into a flat
    offset, while one nonlinearity at full resolution before the pooling lets D see it."""
    if downsample not in DOWNSAMPLING:
        raise UserError(f"unknown downsampling {downsample!r}; choose one of {', '.join(DOWNSAMPLING)}")
    strided = downsample == "strided"
    x = keras.layers.Conv2D(filters, 4 if strided else 3, strides=2 if strided else 1,
                            padding="same", **dcgan_init(init))(x)
    x = keras.layers.LeakyReLU(0.2)(x)
    return x if strided else keras.layers.AveragePooling2D(2)(x)


def build_generator(arch: str, noise_dim: int = 100, output_activation: str = "tanh",
                    image_shape: tuple[int, int, int] = MNIST_SHAPE, width: int = 64,
                    init: str = "glorot", noise_components: int = 0,
                    upsample: str = "transposed") -> keras.Model:
    """Noise (B, noise_dim) → images (B, H, W, C) in the range of `output_activation` (tanh,
    sigmoid, or linear: unbounded, clipped for display; docs/gan.md says why colour data
    need it).

    mlp: the paper's MNIST generator, 100 → 1200 → 1200 → 784 with ReLU units (28×28 only).
    dcgan: Radford et al., "Unsupervised Representation Learning with Deep Convolutional
    GANs" (2016) — a dense layer to (H/2^L)×(W/2^L)×width·2^(L−1), then L stride-2 4×4
    transposed convolutions halving the filters, batch norm and ReLU everywhere but the
    output (L from `conv_levels`: 28 px starts at 7×7×128, 32 px at 4×4×256, 64 px at
    4×4×512). The batch norm is synchronized: under tf.distribute its statistics are those
    of the global batch, and its moving averages stay the same on every replica. `init`:
    see `dcgan_init` (dcgan) and `mlp_init` (mlp). The last layer is named `to_image`; it
    runs in float32 under mixed precision. `noise_components` N ≥ 2 first maps z to a
    mixture of N Gaussians (`MixtureNoise`). `upsample="nearest"` makes each doubling a
    nearest-neighbour resize and a 3×3 convolution (`dcgan_upsampling`).
    """
    levels = conv_levels(image_shape, arch)
    height, width_px, channels = image_shape
    noise = keras.Input((noise_dim,), name="noise")
    z = MixtureNoise(noise_components, name="mixture_noise")(noise) if noise_components else noise
    if arch == "mlp":
        x = keras.layers.Dense(1200, activation="relu", **mlp_init(init, 0.05))(z)
        x = keras.layers.Dense(1200, activation="relu", **mlp_init(init, 0.05))(x)
        x = keras.layers.Dense(height * width_px * channels, name="pixels", **mlp_init(init, 0.05))(x)
        x = keras.layers.Reshape(image_shape)(x)
    elif arch == "dcgan":
        start = (height >> levels, width_px >> levels, width * 2 ** (levels - 1))
        x = keras.layers.Dense(start[0] * start[1] * start[2], use_bias=False, **dcgan_init(init))(z)
        x = keras.layers.ReLU()(dcgan_batch_norm(init)(x))
        x = keras.layers.Reshape(start)(x)
        for level in range(levels - 1):
            filters = width * 2 ** (levels - 2 - level)
            x = dcgan_upsampling(x, upsample, filters, init, use_bias=False)
            x = keras.layers.ReLU()(dcgan_batch_norm(init)(x))
        x = dcgan_upsampling(x, upsample, channels, init)
    else:
        raise UserError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    images = keras.layers.Activation(output_activation, dtype="float32", name="to_image")(x)
    return keras.Model(noise, images, name=f"{arch}_generator")


def build_discriminator(arch: str, image_shape: tuple[int, int, int] = MNIST_SHAPE,
                        width: int = 64, init: str = "glorot",
                        downsample: str = "strided") -> keras.Model:
    """Images (B, H, W, C) → one logit (or critic value) per image, in float32.

    mlp: the paper's MNIST discriminator, two maxout layers of 240 units × 5 pieces with
    dropout (20% on the input, 50% on hidden units), as in the authors' pylearn2 setup
    (`init`: see `mlp_init`).
    dcgan: L stride-2 4×4 convolutions of width·2^i filters with LeakyReLU(0.2) (Radford
    et al. 2016), without batch norm, so that the gradient penalty of WGAN-GP stays a
    per-sample quantity (D's batch norm and Karras et al.'s minibatch-std map were tried and
    only made runs worse: experiments/results/gan/). `init`: see `dcgan_init`. `downsample="average"` makes each
    halving a 3×3 convolution, its activation and an average pool (`dcgan_downsampling`).
    """
    levels = conv_levels(image_shape, arch)
    images = keras.Input(image_shape, name="images")
    logit_init = {}
    if arch == "mlp":
        x = keras.layers.Flatten()(images)
        x = keras.layers.Dropout(0.2)(x)
        x = keras.layers.Dropout(0.5)(Maxout(240, 5, **mlp_init(init, 0.005))(x))
        x = keras.layers.Dropout(0.5)(Maxout(240, 5, **mlp_init(init, 0.005))(x))
        logit_init = mlp_init(init, 0.005)
    elif arch == "dcgan":
        x = images
        for level in range(levels):
            x = dcgan_downsampling(x, downsample, width * 2 ** level, init)
        x = keras.layers.Flatten()(x)
        logit_init = dcgan_init(init)
    else:
        raise UserError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    logits = keras.layers.Dense(1, dtype="float32", name="logit", **logit_init)(x)
    return keras.Model(images, logits, name=f"{arch}_discriminator")


class GAN(keras.Model):
    """A generator and a discriminator trained by `fit` with Algorithm 1 in `train_step`.

    The dataset yields real images shaped (B, k, H, W, C): k fresh minibatches per
    iteration, stacked along axis 1 so that `tf.distribute` splits the batch axis B across
    replicas. The two optimizers' `iterations` are the update counters: after n iterations
    d_updates = k·n and g_updates = n. The loss is looked up by name in
    `gan.losses.OBJECTIVES`; the logged values are epoch means (metric trackers, reset by
    Keras every epoch), the counters are returned as they are.

    Stabilisers (docs/gan.md): `r1_gamma` adds γ/2·R1 to D's loss, `augment` is the
    DiffAugment policy applied to every input of D, `ema_decay` keeps `ema_generator`, a
    moving average of G's weights; with `n_classes` the pair is conditional (the dataset
    then yields (images, (B, k) labels)), its fake labels uniform over the classes or, given
    `label_frequencies` π (the cluster sizes of `gan.clusters`), drawn from π.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, loss: str = "nonsaturating",
                 k: int = 1, label_smoothing: float = 0.0, gp_weight: float = 10.0, seed: int = 0,
                 r1_gamma: float = 0.0, augment: tuple[str, ...] = (), ema_decay: float | None = None,
                 n_classes: int = 0, label_frequencies: np.ndarray | None = None, **kwargs):
        super().__init__(**kwargs)
        # The noise z (and WGAN-GP's ε) come from one generator: made under a tf.distribute
        # scope, it gives every replica its own stream, and a checkpoint holds its state.
        self.noise = tf.random.Generator.from_seed(seed)
        self.objective = losses.objective(loss)
        self.generator, self.discriminator = generator, discriminator
        self.loss_name, self.k = loss, k
        self.label_smoothing, self.gp_weight = label_smoothing, gp_weight
        self.noise_dim = noise_size(generator)
        # Stabilisers (gan/stabilizers.py, docs/gan.md): R1 weight γ, the DiffAugment policy,
        # the EMA generator, and the classes of a conditional pair (0: unconditional).
        self.r1_gamma, self.augment, self.n_classes = r1_gamma, tuple(augment), n_classes
        self.label_cdf = None  # fake labels by inverse transform: y = #{j : cdf_j ≤ u}, u ~ U[0, 1)
        if label_frequencies is not None:
            self.label_cdf = tf.constant(np.cumsum(label_frequencies)[:-1], tf.float32)
        self.ema_decay, self.ema_generator = ema_decay, None
        if ema_decay is not None:
            self.ema_generator = keras.models.clone_model(generator)
            self.ema_generator.set_weights(generator.get_weights())
        self.trackers: dict[str, keras.metrics.Mean] = {}
        self.built = True  # both networks are built; there is no `call` for Keras to trace

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return list(self.trackers.values())  # listed so that Keras resets them every epoch

    def compile(self, d_optimizer: keras.optimizers.Optimizer,
                g_optimizer: keras.optimizers.Optimizer) -> None:
        super().compile()
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer
        # Built now so that a checkpoint restores their slots at once, not lazily.
        d_optimizer.build(self.discriminator.trainable_variables)
        g_optimizer.build(self.generator.trainable_variables)
        # One tracker per logged value, made here (outside the traced train_step).
        names = ["d_loss", "g_loss", "d_grad_norm", "g_grad_norm",
                 *(["d_real", "d_fake"] if self.objective.logits else ["critic_real", "critic_fake"]),
                 *(["gradient_penalty"] if self.objective.gradient_penalty else []),
                 *(["r1_penalty"] if self.r1_gamma > 0 else [])]
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}

    @staticmethod
    def _objective(optimizer: keras.optimizers.Optimizer, loss: tf.Tensor) -> tf.Tensor:
        """What the tape differentiates: this replica's share of the mean loss (the optimizer
        sums gradients over replicas), loss-scaled under mixed_float16."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return optimizer.scale_loss(loss / replicas)

    @staticmethod
    def _apply(optimizer: keras.optimizers.Optimizer, objective: tf.Tensor, tape: tf.GradientTape,
               variables: list) -> tf.Tensor:
        """One optimizer step; returns the global norm of this replica's unscaled gradient."""
        gradients = tape.gradient(objective, variables)
        optimizer.apply_gradients(zip(gradients, variables))  # unscales under mixed_float16
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        scale = optimizer.scale_loss(tf.constant(1.0))
        return tf.linalg.global_norm(gradients) * replicas / scale

    def _generate(self, noise: tf.Tensor, labels: tf.Tensor | None) -> tf.Tensor:
        return self.generator(noise if labels is None else [noise, labels], training=True)

    def _discriminate(self, images: tf.Tensor, labels: tf.Tensor | None) -> tf.Tensor:
        """D's output for `images` as D sees them: with DiffAugment when on, and the labels
        of a conditional (projection) discriminator."""
        if self.augment:
            images = stabilizers.diff_augment(images, self.augment, self.noise)
        return self.discriminator(images if labels is None else [images, labels], training=True)

    def _fake_labels(self, batch_size: int | tf.Tensor) -> tf.Tensor | None:
        """Classes for a fake minibatch, uniform over the classes or drawn from the label
        frequencies (None when unconditional)."""
        if not self.n_classes:
            return None
        if self.label_cdf is not None:
            return tf.searchsorted(self.label_cdf, self.noise.uniform([batch_size]), side="right")
        return self.noise.uniform([batch_size], 0, self.n_classes, dtype=tf.int32)

    def discriminator_step(self, real: tf.Tensor, labels: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        """One update of D on a real minibatch (with its labels when conditional) and a fresh
        noise minibatch; G is untouched."""
        batch = tf.shape(real)[0]
        fake_labels = self._fake_labels(batch)
        fake = self._generate(self.noise.normal([batch, self.noise_dim]), fake_labels)
        with tf.GradientTape() as tape:
            real_out = self._discriminate(real, labels)
            fake_out = self._discriminate(fake, fake_labels)
            smoothing = (self.label_smoothing,) if self.objective.logits else ()
            loss, logs = self.objective.discriminator(real_out, fake_out, *smoothing)
            if self.objective.gradient_penalty:
                epsilon = self.noise.uniform([batch, 1, 1, 1], dtype=real.dtype)
                logs["gradient_penalty"] = losses.gradient_penalty(
                    lambda x: self._discriminate(x, labels), real, fake, epsilon)
                loss += self.gp_weight * logs["gradient_penalty"]
            if self.r1_gamma > 0:
                logs["r1_penalty"] = losses.r1_penalty(lambda x: self._discriminate(x, labels), real)
                loss += 0.5 * self.r1_gamma * logs["r1_penalty"]
            objective = self._objective(self.d_optimizer, loss)
        norm = self._apply(self.d_optimizer, objective, tape, self.discriminator.trainable_variables)
        return {"d_loss": loss, **logs, "d_grad_norm": norm}

    def generator_step(self, batch_size: int | tf.Tensor) -> dict[str, tf.Tensor]:
        """One update of G on a fresh noise minibatch; D's weights are untouched. The EMA
        generator, when there is one, then moves towards G (`common.ema.update_ema`)."""
        noise = self.noise.normal([batch_size, self.noise_dim])
        labels = self._fake_labels(batch_size)
        with tf.GradientTape() as tape:
            fake_out = self._discriminate(self._generate(noise, labels), labels)
            loss, logs = self.objective.generator(fake_out)
            objective = self._objective(self.g_optimizer, loss)
        norm = self._apply(self.g_optimizer, objective, tape, self.generator.trainable_variables)
        if self.ema_generator is not None:
            decay = ema_decay_at(self.ema_decay, self.g_optimizer.iterations)
            update_ema(self.ema_generator.trainable_variables,
                                   self.generator.trainable_variables, decay)
            stabilizers.copy_variables(self.ema_generator.non_trainable_variables,
                                       self.generator.non_trainable_variables)
        return {"g_loss": loss, **logs, "g_grad_norm": norm}

    def train_step(self, data: tf.Tensor | tuple[tf.Tensor, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Algorithm 1, one iteration: k discriminator steps, then one generator step.

        `data` is the (B, k, H, W, C) real images, or (images, (B, k) labels) when
        conditional. Logged D values are those of the last of the k steps.
        """
        real_batches, labels = data if isinstance(data, tuple) else (data, None)
        for i in range(self.k):
            logs = self.discriminator_step(real_batches[:, i], None if labels is None else labels[:, i])
        logs.update(self.generator_step(tf.shape(real_batches)[0]))
        for name, value in logs.items():
            self.trackers[name].update_state(value)
        return {**{name: tracker.result() for name, tracker in self.trackers.items()},
                "d_updates": self.d_optimizer.iterations, "g_updates": self.g_optimizer.iterations}
