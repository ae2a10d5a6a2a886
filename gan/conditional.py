"""Class-conditional generator and discriminator built around the unconditional networks.

- Generator: z and a learned class embedding e(y) are concatenated and fed to the
  unconditional body (Mirza & Osindero, "Conditional Generative Adversarial Nets", 2014,
  with an embedding in place of the one-hot code).
- Discriminator: the projection discriminator of Miyato & Koyama, "cGANs with Projection
  Discriminator", ICLR 2018 (eq. 3): D(x, y) = ψ(φ(x)) + e(y)ᵀ φ(x), with φ the
  unconditional D's features (its input to the `logit` layer), ψ that layer and e(y) a
  learned class embedding (spectrally normalised too under `--spectral-norm`).

Inputs are [images or noise, label] with integer labels of shape (B,).
"""

from __future__ import annotations

import keras

from gan.stabilizers import SpectralNorm

EMBEDDING_SIZE = 50  # the generator's class embedding, concatenated to z


def conditional_generator(body: keras.Model, n_classes: int,
                          embedding_size: int = EMBEDDING_SIZE) -> keras.Model:
    """[noise (B, Z), label (B,)] → images; `body` takes Z + `embedding_size` inputs."""
    noise_dim = int(body.inputs[0].shape[-1]) - embedding_size
    noise = keras.Input((noise_dim,), name="noise")
    label = keras.Input((), dtype="int32", name="label")
    embedded = keras.layers.Embedding(n_classes, embedding_size, name="class_embedding")(label)
    images = body(keras.layers.Concatenate()([noise, embedded]))
    return keras.Model([noise, label], images, name=f"conditional_{body.name}")


def projection_discriminator(discriminator: keras.Model, n_classes: int,
                             spectral_norm: bool = False) -> keras.Model:
    """[images, label (B,)] → ψ(φ(x)) + e(y)ᵀ φ(x), float32 (B, 1); shares `discriminator`'s
    layers (φ and ψ)."""
    images = keras.Input(discriminator.inputs[0].shape[1:], name="images")
    label = keras.Input((), dtype="int32", name="label")
    logit = discriminator.get_layer("logit")
    features = keras.Model(discriminator.inputs, logit.input, name="features")(images)
    one_hot = keras.layers.CategoryEncoding(n_classes, output_mode="one_hot")(label)
    embedding = keras.layers.Dense(features.shape[-1], use_bias=False, name="class_embedding")
    if spectral_norm:  # e(y) = Vᵀ one_hot(y): the row of V, normalised like every other weight
        embedding = SpectralNorm(keras.layers.Dense(features.shape[-1], use_bias=False),
                                 name="class_embedding")
    projection = keras.layers.Dot(axes=1)([embedding(one_hot), features])
    output = keras.layers.Add(dtype="float32", name="projection_logit")([logit(features), projection])
    return keras.Model([images, label], output, name=f"projection_{discriminator.name}")
