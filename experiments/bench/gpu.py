"""The prepared GPU check: the figures docs/benchmarks.md lacks for a GPU, in one command.

    python -m experiments.bench.gpu --out experiments/results/bench_gpu.json   # on a lent GPU, < 8 min

It measures, on whatever device TensorFlow picks (the GPU when there is one):
- style transfer: seconds for `--nst-iterations` L-BFGS and Adam iterations at
  `--nst-size` px (Tübingen × The Starry Night, the default losses; 500 at 512 px is the
  classic reference, 22 s on a Titan X);
- training throughput, images per second, of each trainable family at its MNIST recipe's
  network size (VAE mlp, GAN dcgan k = 1, PixelCNN gated), in float32 and in mixed precision
  (mixed_float16 with loss scaling on a GPU, mixed_bfloat16 on a CPU);
- the AdaIN decoder's training steps per second (batch `--adain-batch` of `--adain-size` px
  crops, random pixels: the speed does not depend on them).

Each throughput is one timed epoch of `--steps` steps after a warm-up epoch (tracing). The
results are printed as a Markdown table and written to `--out` with the device, the versions
and the settings. Needs VGG19_WEIGHTS and DATA_DIR. A CPU test runs it at tiny settings.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from common.config import parse_settings, setting
from common.data import load_splits, make_dataset
from common.errors import run_cli
from common.files import write_json
from common.images import load_image
from common.runs import library_versions, set_seed
from experiments.bench.nst import build as nst_objective
from experiments.bench.timing import EpochTimer
from gan.model import GAN, build_discriminator, build_generator
from gan.train import Settings as GANSettings
from gan.trainer import make_training_data
from nst import optimize
from nst.adain import AdaINTrainer
from nst.adain_net import AdaINStyleTransfer
from nst.layers import vgg19_weights
from nst.model import load_vgg19
from nst.run import Settings as NSTSettings
from pixelcnn.model import build_pixelcnn
from vae.model import build_vae

FAMILIES = ("vae", "gan", "pixelcnn")
BATCH_SIZES = {"vae": 100, "gan": 64, "pixelcnn": 64}  # each MNIST recipe's


@dataclass
class Settings:
    nst_size: int = setting(512, "style transfer image size, long side in px", positive=True)
    nst_iterations: int = setting(500, "style transfer iterations per optimiser", positive=True)
    steps: int = setting(50, "timed training steps per family and precision", positive=True)
    families: list[str] = setting(list(FAMILIES), "families whose training is timed", choices=FAMILIES)
    adain_size: int = setting(256, "AdaIN crop size in px", positive=True)
    adain_batch: int = setting(8, "AdaIN batch size", positive=True)
    data_dir: str | None = setting(None, "folder holding mnist.npz and images/ (default: $DATA_DIR)")
    out: str | None = setting(None, "also write the results to this JSON file")


def device() -> str:
    """What TensorFlow computes on: the first GPU's name, else the CPU."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)


def style_transfer_seconds(settings: Settings, images: Path) -> dict[str, float]:
    """{optimiser: wall seconds} for `nst_iterations` iterations at `nst_size` px."""
    content, style = load_image(images / "tubingen.jpg"), load_image(images / "starry_night.jpg")
    objective, initial, _ = nst_objective(load_vgg19(vgg19_weights()), content, style, settings.nst_size)
    objective.loss_and_gradient(initial)  # trace outside the clock
    seconds = {}
    for name in optimize.OPTIMIZERS:
        start = time.perf_counter()
        if name == "lbfgs":
            optimize.lbfgs(objective, initial, settings.nst_iterations, lambda *_: None)
        else:
            optimize.adam(objective, initial, settings.nst_iterations, NSTSettings.lr, lambda *_: None)
        seconds[name] = time.perf_counter() - start
    return seconds


def family_model(family: str, images: np.ndarray) -> tuple[keras.Model, tf.data.Dataset, list]:
    """(model, endless training data, optimizers) of `family` at its MNIST recipe's size."""
    batch = BATCH_SIZES[family]
    if family == "gan":
        data = make_training_data(images, GANSettings(batch_size=batch, k=1, output_activation="tanh"))
        model = GAN(build_generator("dcgan"), build_discriminator("dcgan"), k=1)
        return model, data, [keras.optimizers.Adam(2e-4, 0.5), keras.optimizers.Adam(2e-4, 0.5)]
    data = make_dataset(images, batch_size=batch, shuffle=True, binarize="dynamic", repeat=True)
    model = build_vae("mlp", 50) if family == "vae" else build_pixelcnn((28, 28, 1), "bernoulli", "gated", 32, 6, 5)
    return model, data, [keras.optimizers.Adam(1e-3)]


def training_images_per_second(family: str, images: np.ndarray, precision: str, steps: int) -> float:
    """Images per second of one timed epoch of `steps` steps after a warm-up epoch."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        set_seed(0)
        model, data, optimizers = family_model(family, images)
        if precision == "mixed_float16":
            optimizers = [keras.optimizers.LossScaleOptimizer(optimizer) for optimizer in optimizers]
        model.compile(*optimizers)
        timer = EpochTimer()
        model.fit(data, epochs=2, steps_per_epoch=steps, callbacks=[timer], verbose=0, shuffle=False)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return steps * BATCH_SIZES[family] / timer.seconds[-1]


def adain_steps_per_second(settings: Settings) -> float:
    """Decoder training steps per second on random crops, after a warm-up epoch."""
    trainer = AdaINTrainer(AdaINStyleTransfer.from_vgg19(vgg19_weights()), style_weight=10.0)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-4))
    shape = (settings.adain_batch, settings.adain_size, settings.adain_size, 3)
    crops = tf.random.stateless_uniform(shape, seed=(0, 1))
    data = tf.data.Dataset.from_tensors((crops, tf.reverse(crops, axis=[1]))).repeat()
    timer = EpochTimer()
    trainer.fit(data, epochs=2, steps_per_epoch=settings.steps, callbacks=[timer], verbose=0, shuffle=False)
    return settings.steps / timer.seconds[-1]


def report(results: dict) -> str:
    """The results as the Markdown table docs/benchmarks.md takes."""
    lines = [f"Device: {results['device']}; TensorFlow {results['versions']['tensorflow']}.", "",
             "| what | float32 | " + results["mixed_precision"] + " |", "|---|---:|---:|"]
    for family, rates in results["training_images_per_second"].items():
        lines.append(f"| {family} training, images/s | {rates['float32']:.0f} | {rates['mixed']:.0f} |")
    for name, seconds in results["style_transfer_seconds"].items():
        lines.append(f"| style transfer, {results['settings']['nst_iterations']} {name} iterations at "
                     f"{results['settings']['nst_size']} px, s | {seconds:.1f} | |")
    lines.append(f"| AdaIN decoder training, steps/s (batch {results['settings']['adain_batch']}, "
                 f"{results['settings']['adain_size']} px) | {results['adain_steps_per_second']:.2f} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0], prog="python -m experiments.bench.gpu")
    data_dir = settings.data_dir or os.environ.get("DATA_DIR")
    images = load_splits("mnist", data_dir).x_train
    mixed = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    started = time.perf_counter()
    results = {
        "device": device(), "mixed_precision": mixed,
        "training_images_per_second": {
            family: {"float32": training_images_per_second(family, images, "float32", settings.steps),
                     "mixed": training_images_per_second(family, images, mixed, settings.steps)}
            for family in settings.families},
        "style_transfer_seconds": style_transfer_seconds(settings, Path(data_dir or ".") / "images"),
        "adain_steps_per_second": adain_steps_per_second(settings),
        "settings": asdict(settings), "versions": library_versions()}
    results["seconds"] = time.perf_counter() - started
    print(report(results))
    if settings.out:
        write_json(settings.out, results)
    return results


if __name__ == "__main__":
    run_cli(main)
