"""The VAE: Gaussian encoder, reparameterized sample, Bernoulli decoder (Kingma & Welling 2013).

`VAE` is a `keras.Model` with its own `train_step` / `test_step` (keras-io style), so
`fit`, `evaluate`, callbacks, `.keras` saving and `tf.distribute` work as usual. The
encoder maps images (H, W, C) to (μ, log σ²); the decoder maps z to the parameters of
p(x|z) (`vae.choices.LIKELIHOODS`: Bernoulli logits by default).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from common.errors import UserError
from common.networks import MNIST_SHAPE, conv_levels
from vae.choices import ARCHITECTURES, OBJECTIVES
from vae.losses import (
    gaussian_kl,
    importance_log_weights,
    iwae_log_likelihood,
    likelihood_mean,
    output_channels,
    reconstruction_loss,
)


def conv_dense_units(image_shape: tuple[int, int, int]) -> int:
    """The conv VAE's dense layer: 16 up to 28×28 (the keras-io network), 256 above."""
    return 16 if image_shape[0] * image_shape[1] <= 28 * 28 else 256


@keras.saving.register_keras_serializable(package="vae")
class Reparameterize(layers.Layer):
    """The reparameterization trick: z = μ + σ ⊙ ε with ε ~ N(0, I) and σ = exp(½ log σ²).

    The randomness is moved into ε, which does not depend on the encoder, so z is a
    deterministic, differentiable function of (μ, log σ²) and gradients of any
    E_q[f(z)] flow back into the encoder (Kingma & Welling 2013, section 2.4).
    Inputs of any shape (..., J); leading sample axes give several z per x.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, mean, log_var):
        epsilon = keras.random.normal(ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * epsilon

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}


def build_encoder(arch: str, latent_dim: int, hidden_units: Sequence[int] = (500, 500),
                  image_shape: tuple[int, int, int] = MNIST_SHAPE) -> keras.Model:
    """q(z|x): images → (μ, log σ²), each (batch, latent_dim), float32 even under mixed precision.

    `mlp`: H·W·C → hidden_units (tanh, as in Kingma & Welling and Burda et al.) → z; 28×28 only.
    `conv`: the keras-io VAE example's encoder generalised to (H, W, C): L stride-2 3×3
    ReLU convolutions of 32·2^i filters (L from `common.networks.conv_levels`: 2 for 28 px,
    3 for 32, 4 for 64), then Dense(`conv_dense_units`); `hidden_units` is not used.
    """
    levels = conv_levels(image_shape, arch)
    images = keras.Input(image_shape, name="images")
    if arch == "mlp":
        hidden = layers.Flatten()(images)
        for index, units in enumerate(hidden_units):
            hidden = layers.Dense(units, activation="tanh", name=f"hidden_{index + 1}")(hidden)
    elif arch == "conv":
        hidden = images
        for level in range(levels):
            hidden = layers.Conv2D(32 * 2 ** level, 3, strides=2, padding="same",
                                   activation="relu")(hidden)
        hidden = layers.Flatten()(hidden)
        hidden = layers.Dense(conv_dense_units(image_shape), activation="relu")(hidden)
    else:
        raise UserError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    mean = layers.Dense(latent_dim, dtype="float32", name="mean")(hidden)
    log_var = layers.Dense(latent_dim, dtype="float32", name="log_var")(hidden)
    return keras.Model(images, [mean, log_var], name="encoder")


def build_decoder(arch: str, latent_dim: int, hidden_units: Sequence[int] = (500, 500),
                  image_shape: tuple[int, int, int] = MNIST_SHAPE,
                  likelihood: str = "bernoulli") -> keras.Model:
    """p(x|z): z (batch, latent_dim) → the likelihood's parameters (batch, H, W, C·k), float32
    (k = 2 for the logistic's μ and log s, else 1: logits).

    The mirror image of `build_encoder`; `conv` is the keras-io decoder (Dense to
    (H/2^L)×(W/2^L)×32·2^(L−1), L stride-2 transposed convolutions; 7×7×64 for 28 px) with
    its final sigmoid left out: the losses take logits.
    """
    levels = conv_levels(image_shape, arch)
    height, width, channels = image_shape
    out_shape = (height, width, output_channels(likelihood, channels))
    z = keras.Input((latent_dim,), name="z")
    if arch == "mlp":
        hidden = z
        for index, units in enumerate(reversed(hidden_units)):
            hidden = layers.Dense(units, activation="tanh", name=f"hidden_{index + 1}")(hidden)
        logits = layers.Dense(int(np.prod(out_shape)), dtype="float32", name="logits")(hidden)
        logits = layers.Reshape(out_shape, dtype="float32")(logits)
    elif arch == "conv":
        start = (height >> levels, width >> levels, 32 * 2 ** (levels - 1))
        hidden = layers.Dense(int(np.prod(start)), activation="relu")(z)
        hidden = layers.Reshape(start)(hidden)
        for level in reversed(range(levels)):
            hidden = layers.Conv2DTranspose(32 * 2 ** level, 3, strides=2, padding="same",
                                            activation="relu")(hidden)
        logits = layers.Conv2DTranspose(out_shape[-1], 3, padding="same", dtype="float32",
                                        name="logits")(hidden)
    else:
        raise UserError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return keras.Model(z, logits, name="decoder")


def conditional_encoder(encoder: keras.Model, n_classes: int) -> keras.Model:
    """q(z|x, y) (Sohn et al., "Learning Structured Output Representation using Deep
    Conditional Generative Models", NeurIPS 2015): [images, label (B,)] → (μ, log σ²), the
    one-hot label concatenated to `encoder`'s last hidden layer, fresh μ and log σ² layers."""
    images = keras.Input(encoder.inputs[0].shape[1:], name="images")
    label = keras.Input((), dtype="int32", name="label")
    hidden = keras.Model(encoder.inputs, encoder.get_layer("mean").input, name="encoder_body")(images)
    hidden = layers.Concatenate()([hidden, layers.CategoryEncoding(n_classes, output_mode="one_hot")(label)])
    latent_dim = int(encoder.outputs[0].shape[-1])
    mean = layers.Dense(latent_dim, dtype="float32", name="mean")(hidden)
    log_var = layers.Dense(latent_dim, dtype="float32", name="log_var")(hidden)
    return keras.Model([images, label], [mean, log_var], name="encoder")


def conditional_decoder(body: keras.Model, n_classes: int) -> keras.Model:
    """p(x|z, y): [z, label (B,)] → `body`([z, one_hot(y)]); `body` takes latent_dim + n_classes."""
    z = keras.Input((int(body.inputs[0].shape[-1]) - n_classes,), name="z")
    label = keras.Input((), dtype="int32", name="label")
    one_hot = layers.CategoryEncoding(n_classes, output_mode="one_hot", name="label_one_hot")(label)
    return keras.Model([z, label], body(layers.Concatenate()([z, one_hot])), name="decoder")


@keras.saving.register_keras_serializable(package="vae")
class VAE(keras.Model):
    """Encoder + reparameterization + decoder, trained on the negative ELBO or IWAE bound.

    Calling the model returns the logits of a reconstruction from one z ~ q(z|x).
    `objective="elbo"`: training minimises reconstruction + w·KL, with w rising linearly
    from 0 to `beta` over the first `kl_warmup_steps` optimizer steps (w = beta when 0).
    `objective="iwae"`: it minimises −L_k, the importance-weighted bound with `iwae_k`
    samples per image (Burda et al. 2015, eq. 8; `iwae_bound`). The logged metrics are
    that objective (`loss`), the ELBO with w = 1 (`elbo`, nats, higher is better),
    `reconstruction` (−log p(x|z), one z) and `kl`, each averaged over examples.
    """

    def __init__(self, encoder: keras.Model, decoder: keras.Model, beta: float = 1.0,
                 kl_warmup_steps: int = 0, seed: int | None = None, likelihood: str = "bernoulli",
                 objective: str = "elbo", iwae_k: int = 1, **kwargs):
        super().__init__(**kwargs)
        if objective not in OBJECTIVES or iwae_k < 1:
            raise ValueError(f"objective must be one of {OBJECTIVES} and iwae_k ≥ 1, got "
                             f"{objective!r}, {iwae_k}")
        self.objective, self.iwae_k = objective, iwae_k
        self.likelihood = likelihood
        self.encoder = encoder
        self.decoder = decoder
        self.beta = beta
        self.kl_warmup_steps = kl_warmup_steps
        self.seed = seed
        self.reparameterize = Reparameterize(seed=seed, name="reparameterize")
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("loss", "elbo", "reconstruction", "kl")}

    @property
    def latent_dim(self) -> int:
        return int(self.encoder.outputs[0].shape[-1])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.encoder.inputs[0].shape[1:])

    @property
    def n_classes(self) -> int:
        """The classes of a conditional VAE (`conditional_decoder`); 0 when unconditional."""
        if len(self.decoder.inputs) < 2:
            return 0
        return int(self.decoder.get_layer("label_one_hot").num_tokens)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        # Listed here so that Keras resets them at the start of every epoch.
        return list(self.trackers.values())

    def _encode(self, images, labels, training: bool):
        return self.encoder(images if labels is None else [images, labels], training=training)

    def _decode(self, z, labels, training: bool):
        return self.decoder(z if labels is None else [z, labels], training=training)

    def call(self, inputs, training: bool = False):
        """Inputs: images, or [images, labels] for a conditional VAE."""
        images, labels = inputs if self.n_classes else (inputs, None)
        mean, log_var = self._encode(images, labels, training)
        return self._decode(self.reparameterize(mean, log_var), labels, training)

    def decode(self, z, labels=None) -> tf.Tensor:
        """E[x|z] (or E[x|z, y]) in [0, 1] (`vae.losses.likelihood_mean`) for latent codes z
        (batch, latent_dim)."""
        return likelihood_mean(self._decode(z, labels, False), self.likelihood)

    def kl_weight(self) -> tf.Tensor:
        """β, or during the warm-up β·min(1, step / kl_warmup_steps)."""
        if self.kl_warmup_steps <= 0:
            return tf.constant(self.beta, tf.float32)
        step = tf.cast(self.optimizer.iterations + 1, tf.float32)
        return self.beta * tf.minimum(1.0, step / float(self.kl_warmup_steps))

    def _terms(self, images, training: bool, labels=None) -> tuple[tf.Tensor, tf.Tensor]:
        """Per-example reconstruction −log p(x|z) and KL, with one z per image."""
        mean, log_var = self._encode(images, labels, training)
        logits = self._decode(self.reparameterize(mean, log_var), labels, training)
        return reconstruction_loss(images, logits, self.likelihood), gaussian_kl(mean, log_var)

    def log_weights(self, images, k: int | tf.Tensor, training: bool = False, labels=None) -> tf.Tensor:
        """(k, B) importance log-weights log p(x|z_i) + log p(z_i) − log q(z_i|x) of k fresh
        z_i ~ q(z|x) per image (`vae.losses.importance_log_weights`), from one decoder pass.
        A conditional VAE's labels (B,) give log p(x|y)'s weights."""
        mean, log_var = self._encode(images, labels, training)
        shape = tf.concat([[k], tf.shape(mean)], axis=0)
        z = self.reparameterize(tf.broadcast_to(mean, shape), tf.broadcast_to(log_var, shape))
        codes = tf.reshape(z, [-1, shape[-1]])  # row i·B + b is image b's sample i
        logits = self._decode(codes, None if labels is None else tf.tile(labels, [k]), training)
        logits = tf.reshape(logits, tf.concat([shape[:2], tf.shape(logits)[1:]], axis=0))
        return importance_log_weights(images, logits, z, mean, log_var, self.likelihood)

    def iwae_bound(self, images, k: int, training: bool = False, labels=None) -> tf.Tensor:
        """L_k = log (1/k) Σ_i w_i per image (B,), nats (Burda et al. 2015, eq. 8): the IWAE
        training objective. L_1 is the ELBO's one-sample estimate; E[L_k] rises with k."""
        return iwae_log_likelihood(self.log_weights(images, k, training, labels))

    def _split(self, data) -> tuple[tf.Tensor, tf.Tensor | None]:
        """(images, labels) of a batch; labels only for a conditional VAE."""
        if isinstance(data, tuple):
            return data[0], data[1] if self.n_classes else None
        return data, None

    def _update_metrics(self, loss, reconstruction, kl) -> dict[str, tf.Tensor]:
        values = {"loss": loss, "elbo": -(reconstruction + kl), "reconstruction": reconstruction,
                  "kl": kl}
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def train_step(self, data):
        images, labels = self._split(data)
        with tf.GradientTape() as tape:
            reconstruction, kl = self._terms(images, True, labels)
            if self.objective == "iwae":
                loss = -self.iwae_bound(images, self.iwae_k, True, labels)
            else:
                loss = reconstruction + self.kl_weight() * kl
            # Gradients are summed over replicas, so each replica's mean is divided by
            # their number (what Keras' built-in losses do under tf.distribute).
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            objective = self.optimizer.scale_loss(tf.reduce_mean(loss) / replicas)
        gradients = tape.gradient(objective, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self._update_metrics(loss, reconstruction, kl)

    def test_step(self, data):
        images, labels = self._split(data)
        reconstruction, kl = self._terms(images, False, labels)
        return self._update_metrics(reconstruction + self.kl_weight() * kl, reconstruction, kl)

    def get_config(self) -> dict:
        return {"name": self.name, "beta": self.beta, "kl_warmup_steps": self.kl_warmup_steps,
                "seed": self.seed, "likelihood": self.likelihood,
                "objective": self.objective, "iwae_k": self.iwae_k,
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder)}

    @classmethod
    def from_config(cls, config: dict) -> VAE:
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, **config)


def build_vae(arch: str, latent_dim: int, hidden_units: Sequence[int] = (500, 500),
              beta: float = 1.0, kl_warmup_steps: int = 0, seed: int | None = None,
              image_shape: tuple[int, int, int] = MNIST_SHAPE, likelihood: str = "bernoulli",
              objective: str = "elbo", iwae_k: int = 1, n_classes: int = 0) -> VAE:
    """A built (weights created) VAE for images of `image_shape`; with `n_classes`, the
    conditional VAE (`conditional_encoder`, `conditional_decoder`)."""
    encoder = build_encoder(arch, latent_dim, hidden_units, image_shape)
    decoder = build_decoder(arch, latent_dim + n_classes, hidden_units, image_shape, likelihood)
    if n_classes:
        encoder = conditional_encoder(encoder, n_classes)
        decoder = conditional_decoder(decoder, n_classes)
    model = VAE(encoder, decoder, beta=beta, kl_warmup_steps=kl_warmup_steps, seed=seed,
                likelihood=likelihood, objective=objective, iwae_k=iwae_k, name="vae")
    images = np.zeros((1, *image_shape), np.float32)
    model([images, np.zeros(1, np.int32)] if n_classes else images)
    return model


def encode_means(model: VAE, images: np.ndarray, batch_size: int = 1000,
                 labels: np.ndarray | None = None) -> np.ndarray:
    """E_q[z|x] = μ(x) (μ(x, y) with a conditional VAE's labels) for every image, (N, latent_dim) float32."""
    means = [model._encode(images[start:start + batch_size],
                           None if labels is None else labels[start:start + batch_size], False)[0]
             for start in range(0, len(images), batch_size)]
    return np.concatenate([ops.convert_to_numpy(m) for m in means]).astype(np.float32)


def active_units(means: np.ndarray, threshold: float = 1e-2) -> int:
    """Latent dimensions whose posterior mean varies with x: Cov_x(E_q[z_j|x]) > 10⁻².

    Burda et al. (2015), section 5.2: an inactive unit has the prior as its posterior
    for every x, so it carries no information.
    """
    return int(np.sum(np.var(means, axis=0) > threshold))


def importance_weighted_log_likelihood(model: VAE, images: np.ndarray, samples: int,
                                       batch_size: int = 100, max_values: int = 10_000_000,
                                       labels: np.ndarray | None = None,
                                       progress: keras.utils.Progbar | None = None) -> np.ndarray:
    """log p(x) (log p(x|y) with a conditional VAE's labels) estimated with `samples`
    importance samples per image (IWAE bound L_k).

    Memory stays bounded whatever the image size: one decoder pass makes at most
    `max_values` pixel values (12,700 codes of a 28×28 digit, 3,200 of a 32×32 colour image;
    the conv decoder's activations are some 20 times that), so k = 5000 runs in chunks; the
    (k, B) log-weights are combined with logsumexp.
    `progress` advances by each batch's images. Returns (N,) nats (negate for the NLL).
    """

    @tf.function(reduce_retracing=True)
    def log_weights(batch, count, batch_labels):
        # (count, B), one decoder pass over count·B codes
        return model.log_weights(batch, count, False, batch_labels)

    chunk = max(1, max_values // (batch_size * int(np.prod(images.shape[1:]))))
    results = []
    for start in range(0, len(images), batch_size):
        batch = tf.convert_to_tensor(images[start:start + batch_size], tf.float32)
        batch_labels = None if labels is None else tf.constant(labels[start:start + batch_size], tf.int32)
        weights = [log_weights(batch, tf.constant(min(chunk, samples - done)), batch_labels)
                   for done in range(0, samples, chunk)]
        results.append(iwae_log_likelihood(tf.concat(weights, axis=0)).numpy())
        if progress is not None:
            progress.add(len(batch))
    return np.concatenate(results).astype(np.float64)
