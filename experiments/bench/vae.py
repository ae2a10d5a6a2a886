"""Training throughput of the VAE (mlp, conv) next to the keras-io VAE example's code.

    python -m experiments.bench.vae --steps 100 --repeats 3
    python -m experiments.bench.vae --dataset shapes --image-size 32 --likelihood logistic   # colour

Each model trains with `fit` on the same dynamically binarized MNIST pipeline and batch
size; after a warm-up epoch (tracing, caches) the fastest of `--repeats` timed epochs of
`--steps` batches gives examples per second. The keras-io model is rebuilt here as that example writes it
(https://keras.io/examples/generative/vae/: sigmoid decoder, `binary_crossentropy` on
probabilities, latent 2), so the comparison is its code against ours on this machine.
On another dataset or size only our conv VAE (latent 32, `--likelihood`) is timed, on the
grey/colour levels. Results are printed and written to `--out`.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from common.config import parse_settings, precision_setting, setting
from common.data import load_splits, make_dataset
from common.data_settings import check_dataset, check_image_options
from common.errors import run_cli
from common.files import write_json
from common.precision import use_precision
from common.runs import library_versions, set_seed
from experiments.bench.timing import EpochTimer
from vae.choices import LIKELIHOODS
from vae.model import build_vae


class KerasIoSampling(layers.Layer):
    """keras-io's `Sampling` layer, verbatim in substance."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(shape=ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


class KerasIoVAE(keras.Model):
    """The keras-io example's VAE class and architecture (latent_dim = 2)."""

    def __init__(self, latent_dim: int = 2, **kwargs):
        super().__init__(**kwargs)
        inputs = keras.Input(shape=(28, 28, 1))
        x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(inputs)
        x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
        x = layers.Flatten()(x)
        x = layers.Dense(16, activation="relu")(x)
        z_mean = layers.Dense(latent_dim, name="z_mean")(x)
        z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
        z = KerasIoSampling()([z_mean, z_log_var])
        self.encoder = keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")
        latent_inputs = keras.Input(shape=(latent_dim,))
        x = layers.Dense(7 * 7 * 64, activation="relu")(latent_inputs)
        x = layers.Reshape((7, 7, 64))(x)
        x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
        x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
        outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
        self.decoder = keras.Model(latent_inputs, outputs, name="decoder")
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(ops.sum(
                keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {m.name: m.result() for m in self.metrics}


@dataclass
class BenchSettings:
    steps: int = setting(100, "batches per timed epoch", positive=True)
    repeats: int = setting(3, "timed epochs per model (the fastest counts)", positive=True)
    batch_size: int = setting(128, "examples per batch (keras-io uses 128)", positive=True)
    data_dir: str | None = setting(None, "folder holding mnist.npz; unset: $DATA_DIR")
    out: str = setting("experiments/results/vae/bench.json", "where to write the results")
    seed: int = setting(0, "seed", min=0)
    dataset: str = setting("mnist", "dataset (docs/datasets.md); not mnist: our conv VAE only")
    image_size: int | None = setting(None, "resize to this square size (a multiple of 4)")
    likelihood: str = setting("logistic", "decoder of the conv VAE off MNIST", choices=LIKELIHOODS)
    precision: str = precision_setting()

    def validate(self) -> None:
        check_dataset(self.dataset)
        check_image_options(self.image_size, None)


def bench_models(settings: BenchSettings, splits) -> tuple[dict, str]:
    """{name: build} and the binarization: the three MNIST models, else our conv VAE."""
    shape = splits.image_shape
    if settings.dataset == "mnist" and shape == (28, 28, 1):
        return {
            "vae mlp 784-500-500-50 (ours)": lambda: build_vae("mlp", 50),
            "vae conv latent 2 (ours)": lambda: build_vae("conv", 2),
            "keras-io VAE example, conv latent 2": lambda: KerasIoVAE(2),
        }, "dynamic"
    name = f"vae conv {'×'.join(map(str, shape))} latent 32 {settings.likelihood} (ours)"
    return {name: lambda: build_vae("conv", 32, image_shape=shape,
                                    likelihood=settings.likelihood)}, "none"


def examples_per_second(model: keras.Model, data: tf.data.Dataset, steps: int,
                        batch_size: int, repeats: int) -> float:
    """Train one warm-up epoch, then time `repeats` epochs of `steps` batches; the fastest
    counts (on a shared machine it is the one least slowed by other processes)."""
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    timer = EpochTimer()
    model.fit(data, epochs=1 + repeats, steps_per_epoch=steps, callbacks=[timer], verbose=0,
              shuffle=False)
    return steps * batch_size / min(timer.seconds[1:])


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(BenchSettings, argv, __doc__.splitlines()[0],
                              prog="python -m experiments.bench.vae")
    set_seed(settings.seed)
    splits = load_splits(settings.dataset, settings.data_dir, image_size=settings.image_size)
    models, binarize = bench_models(settings, splits)
    data = make_dataset(splits.x_train, batch_size=settings.batch_size, shuffle=True,
                        binarize=binarize, seed=settings.seed, drop_remainder=True, repeat=True)
    results = []
    for name, build in models.items():
        with use_precision(settings.precision):
            model = build()
        rate = examples_per_second(model, data, settings.steps, settings.batch_size,
                                   settings.repeats)
        parameters = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        results.append({"model": name, "examples_per_second": round(rate, 1),
                        "parameters": parameters})
        print(f"{name:40s} {rate:10.0f} examples/s  ({parameters:,} parameters)", flush=True)
    write_json(settings.out, {
        "results": results, "steps": settings.steps, "repeats": settings.repeats,
        "batch_size": settings.batch_size, "dataset": settings.dataset, "precision": settings.precision,
        "image_shape": list(splits.image_shape),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "load_average_1min_at_end": round(os.getloadavg()[0], 2),
                    "gpus": len(tf.config.list_physical_devices("GPU"))},
        "versions": library_versions()})
    print(f"wrote {settings.out}")


if __name__ == "__main__":
    run_cli(main)
