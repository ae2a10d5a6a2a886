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
"""

from __future__ import annotations

import argparse
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from common.data import load_splits
from common.errors import UserError, run_cli
from common.images import SAVE_FORMATS, save_image
from common.plots import image_grid
from gan.losses import discriminator_loss
from gan.model import UPSAMPLING, build_discriminator, build_generator, from_unit_range, to_unit_range
from gan.sample import generator_classes, load_generator, output_activation


def real_images(args: argparse.Namespace, activation: str) -> np.ndarray:
    """The training split in the generator's output range."""
    splits = load_splits(args.dataset, args.data_dir, image_size=args.image_size)
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


def draw(args: argparse.Namespace) -> None:
    """Fit G to `args.images` training images; write its outputs beside the targets."""
    images = real_images(args, "linear")[:args.images]
    generator = build_generator("dcgan", args.noise_dim, "linear", images.shape[1:], args.width,
                                upsample=args.upsample)
    noise = np.random.default_rng(args.seed).normal(size=(len(images), args.noise_dim)).astype(np.float32)
    fit_generator(generator, images, noise, args.steps, args.seed)
    drawn = to_unit_range(generator(noise[:32], training=False).numpy(), "linear")
    pairs = np.stack([drawn, to_unit_range(images[:32], "linear")], axis=1).reshape(-1, *images.shape[1:])
    save_image(args.out, image_grid(pairs, columns=16))
    print(f"wrote {args.out}: G's outputs (odd columns) beside their targets (even columns)")


def separate(args: argparse.Namespace) -> None:
    """Train a fresh D against a run's frozen generator; print its accuracy on both."""
    generator = load_generator(args.run, raw=args.raw)
    if generator_classes(generator):
        raise UserError(f"{args.run}: a conditional generator; separate takes unconditional runs")
    images = real_images(args, output_activation(generator))
    discriminator = build_discriminator("dcgan", images.shape[1:], args.width)
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

    rng, size = np.random.default_rng(args.seed), generator.inputs[0].shape[-1]
    for index in range(1, args.steps + 1):
        z = rng.normal(size=(64, size)).astype(np.float32)
        real_right, fake_right = step(images[rng.integers(0, len(images), 64)], z)
        if index % 100 == 0:
            print(f"step {index}: D right on {float(real_right):.0%} of real, "
                  f"{float(fake_right):.0%} of G's samples", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("probe", choices=("draw", "separate"))
    parser.add_argument("--dataset", default="shapes")
    parser.add_argument("--data-dir", help="where the dataset's files are (default: $DATA_DIR)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=32, help="the dcgan width of G (draw) or D (separate)")
    parser.add_argument("--upsample", choices=UPSAMPLING, default="transposed", help="draw: G's doublings")
    parser.add_argument("--noise-dim", type=int, default=100, help="draw: length of z")
    parser.add_argument("--images", type=int, default=512, help="draw: training images fitted")
    parser.add_argument("--steps", type=int, default=None, help="steps (default: draw 3000, separate 1000)")
    parser.add_argument("--run", help="separate: a gan.train run folder")
    parser.add_argument("--raw", action="store_true",
                        help="separate: the trained generator even when the run saved an EMA one")
    parser.add_argument("--out", default="draw.png", help="draw: the picture written")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = 3000 if args.probe == "draw" else 1000
    if args.steps < 1 or args.images < 1 or args.width < 1:
        raise UserError("--steps, --images and --width must be positive")
    keras.utils.set_random_seed(args.seed)
    if args.probe == "draw" and Path(args.out).suffix.lower() not in SAVE_FORMATS:
        raise UserError(f"--out {args.out}: write a {', '.join(SAVE_FORMATS)} picture")
    if args.probe == "separate" and not args.run:
        raise UserError("separate needs --run (a gan.train run folder)")
    (draw if args.probe == "draw" else separate)(args)


if __name__ == "__main__":
    run_cli(main)
