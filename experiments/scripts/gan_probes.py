"""Two probes that split a failing GAN's problem into its parts (docs/gan.md, `shapes`).

    python -m experiments.scripts.gan_probes draw --dataset shapes --image-size 32 --upsample nearest \
        --out draw.png
    python -m experiments.scripts.gan_probes separate --run runs/gan/NAME --raw --dataset shapes \
        --image-size 32

- `draw`: can the generator's network draw the data at all? G is fitted by plain regression
  (mean squared error) to map fixed noise vectors z_i to fixed training images x_i, no D
  involved. If its outputs come out crisp, the architecture is not what limits the GAN.
- `separate`: can the discriminator's network tell the data from a trained G's samples? A
  fresh D is trained against a run's frozen G (its EMA generator unless --raw) with the GAN's
  D loss (`gan.losses.discriminator_loss`) and its accuracy printed every 100 steps. If it
  soon tells them apart, D's architecture sees the flaws and the GAN's trouble lies in the
  game between the two.

Each probe lists its own flags: `python -m experiments.scripts.gan_probes draw --help`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from common.config import parse_command, setting
from common.data import load_splits
from common.data_settings import check_dataset
from common.errors import UserError, run_cli
from common.images import SAVE_FORMATS, save_image
from common.plots import image_grid
from gan.choices import UPSAMPLING
from gan.losses import discriminator_loss
from gan.model import build_discriminator, build_generator, from_unit_range, to_unit_range
from gan.sample import generator_classes, load_generator, output_activation


@dataclass
class ProbeSettings:
    """The settings both probes share."""

    dataset: str = setting("shapes", "dataset (docs/datasets.md)")
    data_dir: str | None = setting(None, "where the dataset's files are (unset: $DATA_DIR)")
    image_size: int = setting(32, "side of the images, in pixels", positive=True)
    width: int = setting(32, "the dcgan width of G (draw) or D (separate)", positive=True)
    seed: int = setting(0, "seed", min=0)

    def validate(self) -> None:
        check_dataset(self.dataset)


@dataclass
class DrawSettings(ProbeSettings):
    upsample: str = setting("transposed", "G's doublings", choices=UPSAMPLING)
    noise_dim: int = setting(100, "length of z", positive=True)
    images: int = setting(512, "training images fitted", positive=True)
    steps: int = setting(3000, "regression steps", positive=True)
    out: str = setting("draw.png", "the picture written")

    def validate(self) -> None:
        super().validate()
        if Path(self.out).suffix.lower() not in SAVE_FORMATS:
            raise UserError(f"--out {self.out}: write a {', '.join(SAVE_FORMATS)} picture")


@dataclass
class SeparateSettings(ProbeSettings):
    run: str | None = setting(None, "a gan.train run folder (required)")
    raw: bool = setting(False, "the trained generator even when the run saved an EMA one")
    steps: int = setting(1000, "discriminator steps", positive=True)

    def validate(self) -> None:
        super().validate()
        if not self.run:
            raise UserError("separate needs --run (a gan.train run folder)")


PROG = "python -m experiments.scripts.gan_probes"
COMMANDS = {"draw": (DrawSettings, "Fit G by regression to training images; write its outputs "
                                   "beside them."),
            "separate": (SeparateSettings, "Train a fresh D against a run's frozen G; print its "
                                           "accuracy.")}


def real_images(settings: ProbeSettings, activation: str) -> np.ndarray:
    """The training split in the generator's output range."""
    splits = load_splits(settings.dataset, settings.data_dir, image_size=settings.image_size)
    return from_unit_range(splits.x_train, activation).astype(np.float32)


def fit_generator(generator: keras.Model, targets: np.ndarray, noise: np.ndarray, steps: int,
                  seed: int) -> float:
    """`steps` Adam (10⁻³) steps of minibatch regression G(z_i) → x_i; the last minibatch's MSE."""
    optimizer = keras.optimizers.Adam(1e-3)

    @tf.function
    def step(images, z):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(generator(z, training=True) - images))
        optimizer.apply_gradients(zip(tape.gradient(loss, generator.trainable_variables),
                                      generator.trainable_variables))
        return loss

    rng, loss = np.random.default_rng(seed), 0.0
    for index in range(1, steps + 1):
        batch = rng.integers(0, len(targets), 64)
        loss = float(step(targets[batch], noise[batch]))
        if index % 500 == 0:
            print(f"step {index}: mean squared error {loss:.4f}", flush=True)
    return loss


def draw(settings: DrawSettings) -> None:
    """Fit G to `settings.images` training images; write its outputs beside the targets."""
    images = real_images(settings, "linear")[:settings.images]
    generator = build_generator("dcgan", settings.noise_dim, "linear", images.shape[1:],
                                settings.width, upsample=settings.upsample)
    noise = np.random.default_rng(settings.seed).normal(size=(len(images), settings.noise_dim))
    noise = noise.astype(np.float32)
    fit_generator(generator, images, noise, settings.steps, settings.seed)
    drawn = to_unit_range(generator(noise[:32], training=False).numpy(), "linear")
    pairs = np.stack([drawn, to_unit_range(images[:32], "linear")], axis=1).reshape(-1, *images.shape[1:])
    save_image(settings.out, image_grid(pairs, columns=16))
    print(f"wrote {settings.out}: G's outputs (odd columns) beside their targets (even columns)")


def separate(settings: SeparateSettings) -> None:
    """Train a fresh D against a run's frozen generator; print its accuracy on both."""
    generator = load_generator(settings.run, raw=settings.raw)
    if generator_classes(generator):
        raise UserError(f"{settings.run}: a conditional generator; separate takes unconditional "
                        "runs")
    images = real_images(settings, output_activation(generator))
    discriminator = build_discriminator("dcgan", images.shape[1:], settings.width)
    optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)

    @tf.function
    def step(real, z):
        with tf.GradientTape() as tape:
            real_out = discriminator(real, training=True)
            fake_out = discriminator(generator(z, training=False), training=True)
            loss, _ = discriminator_loss(real_out, fake_out)
        optimizer.apply_gradients(zip(tape.gradient(loss, discriminator.trainable_variables),
                                      discriminator.trainable_variables))
        return tf.reduce_mean(tf.cast(real_out > 0, tf.float32)), tf.reduce_mean(tf.cast(fake_out < 0, tf.float32))

    rng, size = np.random.default_rng(settings.seed), generator.inputs[0].shape[-1]
    for index in range(1, settings.steps + 1):
        z = rng.normal(size=(64, size)).astype(np.float32)
        real_right, fake_right = step(images[rng.integers(0, len(images), 64)], z)
        if index % 100 == 0:
            print(f"step {index}: D right on {float(real_right):.0%} of real, "
                  f"{float(fake_right):.0%} of G's samples", flush=True)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):  # each probe lists its own flags with PROBE --help
        print(f"usage: {PROG} {'|'.join(COMMANDS)} [options]\n\n{__doc__.splitlines()[0]}\n")
        for probe, (_, description) in COMMANDS.items():
            print(f"  {probe:9} {description}")
        print(f"\neach probe's flags: {PROG} PROBE --help")
        return
    probe, settings = parse_command(argv, PROG, COMMANDS)
    keras.utils.set_random_seed(settings.seed)
    (draw if probe == "draw" else separate)(settings)


if __name__ == "__main__":
    run_cli(main)
