"""Diffusion training throughput: `diffusion.model.Diffusion` against keras-io's DDPM step, same U-Net.

    python -m experiments.bench.diffusion --out experiments/results/diffusion/bench.json

Both train the U-Net of recipes/diffusion/mnist.json (28×28×1) on MNIST-shaped batches of
`--batch` random images for `--steps` steps after `--warmup` steps (tracing), `--repeats`
times in turn, with Adam at the same learning rate, and report images per second:

- `ours`: `Diffusion.train_step` as `diffusion.train` compiles it (XLA; its random draws
  stateless from a seed variable), L_simple, the EMA of the trainable weights after each step.
- `keras-io`: the training step of keras-io's "Denoising Diffusion Probabilistic Model"
  example (A. K. Nain, examples/generative/ddpm.py) as that example runs it: int64 steps,
  the noising coefficients gathered from precomputed √ᾱ and √(1 − ᾱ) tables, the loss from
  `compile(loss=MeanSquaredError())`, `jit_compile` left at Keras' "auto", and the EMA
  assigned to every weight of the network after each step. Re-stated here (the example is
  a script, not a library), with the same network.

The medians over the repeats are printed and written to `--out`; the ratio ours / theirs is
the median of the repeats' ratios (each repeat times both, one after the other, so a
machine whose speed drifts moves both sides of a ratio alike).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from common.config import parse_settings, setting
from common.errors import run_cli
from common.files import read_json, write_json
from common.runs import library_versions
from diffusion.losses import make_schedule
from diffusion.model import Diffusion, build_unet

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "diffusion" / "mnist.json"


class KerasIOStep(keras.Model):
    """keras-io's DDPM training step (module docstring) around `network`."""

    def __init__(self, network: keras.Model, timesteps: int, ema: float = 0.999):
        super().__init__()
        self.network, self.timesteps, self.ema = network, timesteps, ema
        self.ema_network = keras.models.clone_model(network)
        alpha_bars = make_schedule("linear", timesteps).alpha_bars
        self.sqrt_alpha_bars = tf.constant(np.sqrt(alpha_bars), tf.float32)
        self.sqrt_one_minus_alpha_bars = tf.constant(np.sqrt(1.0 - alpha_bars), tf.float32)

    def train_step(self, images):
        batch = tf.shape(images)[0]
        t = tf.random.uniform((batch,), 0, self.timesteps, dtype=tf.int64)
        with tf.GradientTape() as tape:
            noise = tf.random.normal(tf.shape(images), dtype=images.dtype)
            scale = tf.reshape(tf.gather(self.sqrt_alpha_bars, t), (batch, 1, 1, 1))
            spread = tf.reshape(tf.gather(self.sqrt_one_minus_alpha_bars, t), (batch, 1, 1, 1))
            predicted = self.network([scale * images + spread * noise, tf.cast(t, tf.int32)], training=True)
            loss = self.compute_loss(y=noise, y_pred=predicted)
        gradients = tape.gradient(loss, self.network.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.network.trainable_weights))
        for weight, average in zip(self.network.weights, self.ema_network.weights):
            average.assign(self.ema * average + (1 - self.ema) * weight)
        return {"loss": loss}


@dataclass
class Settings:
    batch: int = setting(64, "images per step (the recipe's batch)", positive=True)
    steps: int = setting(40, "timed steps per repeat", positive=True)
    warmup: int = setting(5, "untimed steps first (tracing)", positive=True)
    repeats: int = setting(5, "timed repeats of each, in turn", positive=True)
    out: str | None = setting(None, "also write the results to this JSON file")


def compiled(kind: str, recipe: dict) -> keras.Model:
    network = build_unet((28, 28, 1), recipe["features"], recipe["res_blocks"], recipe["attention"])
    optimizer = keras.optimizers.Adam(recipe["lr"])
    if kind == "ours":
        model = Diffusion(network, recipe["schedule"], recipe["timesteps"], recipe["ema"])
        model.compile(optimizer=optimizer)
    else:
        model = KerasIOStep(network, recipe["timesteps"], recipe["ema"])
        model.compile(optimizer=optimizer, loss=keras.losses.MeanSquaredError())
    return model


def images_per_second(model: keras.Model, data: tf.data.Dataset, steps: int, batch: int) -> float:
    started = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> dict:
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0], prog="python -m experiments.bench.diffusion")
    recipe = read_json(RECIPE, "recipe")
    images = np.random.default_rng(0).uniform(-1, 1, (settings.batch * 8, 28, 28, 1)).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices(images).batch(settings.batch, drop_remainder=True).repeat()
    models = {kind: compiled(kind, recipe) for kind in ("ours", "keras-io")}
    for model in models.values():
        model.fit(data, steps_per_epoch=settings.warmup, epochs=1, verbose=0)
    rates = {kind: [] for kind in models}
    for _ in range(settings.repeats):
        for kind, model in models.items():
            rates[kind].append(images_per_second(model, data, settings.steps, settings.batch))
    medians = {kind: statistics.median(values) for kind, values in rates.items()}
    results = {"network": {key: recipe[key] for key in ("features", "res_blocks", "attention")},
               "parameters": models["ours"].network.count_params(), "batch": settings.batch,
               "images_per_second": medians, "repeats": rates,
               "ratio": statistics.median(a / b for a, b in zip(rates["ours"], rates["keras-io"])),
               "threads": os.environ.get("TF_NUM_INTRAOP_THREADS") or os.cpu_count(),
               "machine": platform.processor() or platform.machine(), "versions": library_versions()}
    print(f"ours {medians['ours']:.1f} images/s, keras-io {medians['keras-io']:.1f} images/s "
          f"(median ratio {results['ratio']:.2f}; {settings.repeats} paired repeats of {settings.steps} steps)")
    if settings.out:
        write_json(settings.out, results)
    return results


if __name__ == "__main__":
    run_cli(main)
