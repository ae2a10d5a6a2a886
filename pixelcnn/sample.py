"""Draw images from a trained PixelCNN: `python -m pixelcnn.sample --run RUN_DIR --n 64 --out s.png`.

`--out` ending in .png writes a grid; .npz writes `images` uint8, (N, H, W) for grey and
(N, H, W, 3) for colour. `--label C` (an index or a class name) on a class-conditional run
draws only that class; unset, the classes in turn.

Sampling is sequential: value i is drawn from p(x_i | x_<i) before value i + 1. The naive
way runs the whole network once per value (H·W·C passes). `CachedSampler` is Ramachandran
et al. 2017's fast generation ("Fast Generation for Convolutional Autoregressive Models"):
for the gated stack it keeps, per layer, the rows the vertical convolution needs and the
columns the horizontal one needs, and computes only what the new value changes: per pixel
one column of each horizontal layer, per row one row of each vertical layer, so a whole
image costs about one forward pass. Both draw value i by inverting its CDF at the same
uniform u_i, so for the same seed they draw the same images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from common.conditioning import class_columns, cycled_labels, label_index, requested_labels
from common.config import parse_settings, precision_setting, setting
from common.errors import UserError, first_line, run_cli
from common.plots import write_samples
from common.precision import load_model
from common.runs import load_run_config, lock_if_writing_into
from pixelcnn.losses import LEVELS
from pixelcnn.model import PixelCNN, gate

MODEL_FILE = "model.keras"
BEST_FILE = "model_best.keras"  # the weights of the lowest validation NLL (pixelcnn.train)
INTERPOLATION = "none: an autoregressive model has no latent space; rows of further samples"


def draw(likelihood: str, logits: tf.Tensor, uniform: tf.Tensor) -> tf.Tensor:
    """One value in [0, 1] per row from its conditional, by inverting the CDF at `uniform`.

    `logits` (B, K): one Bernoulli logit (x = 1 when u < σ(ℓ)) or 256 level logits (the
    first level whose CDF reaches u); `uniform` (B,) in [0, 1).
    """
    logits = tf.cast(logits, tf.float32)
    if likelihood == "bernoulli":
        return tf.cast(uniform < tf.sigmoid(logits[:, 0]), tf.float32)
    cdf = tf.cumsum(tf.nn.softmax(logits), axis=-1)
    level = tf.minimum(tf.reduce_sum(tf.cast(cdf < uniform[:, None], tf.int32), axis=-1), LEVELS - 1)
    return tf.cast(level, tf.float32) * (1.0 / (LEVELS - 1))  # not "/": graphs rewrite it to this


def uniforms(n: int, shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """The (n, H, W, C) uniforms a seed gives: the same images from either sampler."""
    return np.random.default_rng(seed).uniform(size=(n, *shape)).astype(np.float32)


def sample_naive(model: PixelCNN, uniform: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Images drawn by running the whole network once per value: (B, H, W, C) in [0, 1]."""
    height, width, channels = model.image_shape
    canvas = np.zeros(uniform.shape, np.float32)
    forward = tf.function(lambda x: model(x if labels is None else [x, labels]))
    for i in range(height):
        for j in range(width):
            for c in range(channels):
                logits = tf.reshape(forward(canvas)[:, i, j, c], (len(canvas), -1))
                canvas[:, i, j, c] = draw(model.likelihood, logits, uniform[:, i, j, c]).numpy()
    return canvas


class CachedSampler:
    """The gated stack's fast generation (module docstring): `sampler(uniform, labels)` →
    images (B, H, W, C) in [0, 1], the whole loop one compiled graph.

    Per layer it keeps the last k//2 + 1 rows entering the vertical convolution, the
    vertical features of the row above (what the shift hands the horizontal stack) and the
    last k//2 columns entering the horizontal convolution. A pixel's channels are drawn
    R → G → B, each pass with the channels drawn so far; the last pass's hidden values are
    exact for the whole pixel (no feature reads the last channel of its own pixel).
    """

    def __init__(self, model: PixelCNN):
        if model.arch != "gated":
            raise ValueError("cached sampling follows the gated stack; sample a plain one with sample_naive")
        self.model, self.half = model, model.kernel_size // 2
        self._graph = tf.function(self._sample)

    def __call__(self, uniform: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        one_hot = None if labels is None else tf.one_hot(labels, self.model.n_classes)
        return self._graph(tf.constant(uniform, tf.float32), one_hot).numpy()

    @staticmethod
    def _pointwise(layer, x: tf.Tensor) -> tf.Tensor:
        return tf.matmul(x, tf.cast(layer.masked_kernel[0, 0], tf.float32)) + tf.cast(layer.bias, tf.float32)

    def _pixel(self, x: tf.Tensor, h_left: list, above: list, biases: list) -> tuple[list, tf.Tensor]:
        """The horizontal stack and the head at one pixel whose input is x (B, C): (the input
        of every layer, the logits (B, C·K))."""
        inputs, h, skips = [], x, 0.0
        for block, left, v_above, bias in zip(self.model.blocks, h_left, above, biases):
            inputs.append(h)
            window = tf.concat([left, h[:, None, :]], axis=1)
            kernel = tf.cast(block.horizontal.masked_kernel[0], tf.float32)
            features = (tf.einsum("bkc,kco->bo", window, kernel) + tf.cast(block.horizontal.bias, tf.float32)
                        + self._pointwise(block.vertical_to_horizontal, v_above))
            gated = gate(features if bias is None else features + bias[1])
            out = self._pointwise(block.horizontal_out, gated)
            h = out if block.first else h + out
            skips = skips + self._pointwise(block.skip, gated)
        head_1, head_2 = self.model.head
        hidden = tf.nn.relu(h + skips)
        return inputs, self._pointwise(head_2, tf.nn.relu(self._pointwise(head_1, hidden)))

    def _row(self, rows_in: list, row: tf.Tensor, biases: list) -> tuple[list, list]:
        """The vertical stack over a finished row (B, W, C): (the updated rows entering each
        layer, each layer's vertical features of this row (B, W, 2f))."""
        updated, features, incoming = [], [], row
        for block, rows, bias in zip(self.model.blocks, rows_in, biases):
            rows = tf.concat([rows[:, 1:], incoming[:, None]], axis=1)
            padded = tf.pad(rows, [[0, 0], [0, 0], [self.half, self.half], [0, 0]])
            kernel = tf.cast(block.vertical.masked_kernel, tf.float32)
            v = tf.nn.conv2d(padded, kernel, 1, "VALID")[:, 0] + tf.cast(block.vertical.bias, tf.float32)
            v = v if bias is None else v + bias[0][:, None, :]
            updated.append(rows)
            features.append(v)
            incoming = gate(v)
        return updated, features

    def _sample(self, uniform: tf.Tensor, labels: tf.Tensor | None) -> tf.Tensor:
        model = self.model
        height, width, channels = model.image_shape
        per_value = 1 if model.likelihood == "bernoulli" else LEVELS
        batch = tf.shape(uniform)[0]
        blocks = model.blocks
        biases = [None if labels is None else [tf.matmul(labels, tf.cast(dense.kernel, tf.float32))
                                               for dense in block.label_biases] for block in blocks]
        widths = [channels] + [model.features] * (len(blocks) - 1)  # what enters each layer
        rows_in = [tf.zeros((batch, self.half + 1, width, c)) for c in widths]
        v_above = [tf.zeros((batch, width, 2 * model.features)) for _ in blocks]
        images = tf.TensorArray(tf.float32, size=height)
        for i in tf.range(height):
            h_left = [tf.zeros((batch, self.half, c)) for c in widths]
            row = tf.zeros((batch, width, channels))
            for j in tf.range(width):
                above = [tf.gather(v, j, axis=1) for v in v_above]
                pixel = tf.zeros((batch, channels))
                for c in range(channels):
                    inputs, logits = self._pixel(pixel * 2.0 - 1.0, h_left, above, biases)
                    value = draw(model.likelihood, logits[:, c * per_value:(c + 1) * per_value],
                                 uniform[:, i, j, c])
                    pixel = pixel + value[:, None] * tf.one_hot(c, channels)
                entered = [pixel * 2.0 - 1.0, *inputs[1:]]  # layer 0 keeps the finished pixel
                h_left = [tf.concat([left[:, 1:], x[:, None]], axis=1) for left, x in zip(h_left, entered)]
                row = row + tf.one_hot(j, width)[None, :, None] * pixel[:, None, :]
            images = images.write(i, row)
            rows_in, v_above = self._row(rows_in, row * 2.0 - 1.0, biases)
        return tf.transpose(images.stack(), [1, 0, 2, 3])


def sampler_of(model: PixelCNN):
    """The fastest exact sampler for `model`: (uniform, labels) → images."""
    if model.arch == "gated":
        return CachedSampler(model)
    return lambda uniform, labels=None: sample_naive(model, uniform, labels)


def sample_images(sampler, shape: tuple[int, int, int], n: int, seed: int = 0,
                  labels: np.ndarray | None = None, batch: int = 1000) -> np.ndarray:
    """n images (n, H, W, C) in [0, 1] from `sampler_of(model)`, `batch` at a time; the
    same seed gives the same images."""
    uniform = uniforms(n, shape, seed)
    return np.concatenate([sampler(uniform[i:i + batch], None if labels is None else labels[i:i + batch])
                           for i in range(0, n, batch)])


def load_pixelcnn(run_dir: str | Path, precision: str = "float32") -> PixelCNN:
    """The run's kept weights (model_best.keras: lowest validation NLL; else model.keras)."""
    run_dir = Path(run_dir)
    load_run_config(run_dir, "pixelcnn")
    path = next((run_dir / name for name in (BEST_FILE, MODEL_FILE) if (run_dir / name).is_file()), None)
    if path is None:
        raise UserError(f"{run_dir}: has no {MODEL_FILE} yet (the run has not finished)")
    try:
        return load_model(path, precision)
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: cannot load the model ({first_line(error)})") from None


@dataclass
class PixelCNNSampler:
    """A trained PixelCNN behind the protocol the comparison uses for every family.

    `sample(n, seed)` → (n, H, W, C) float32 in [0, 1] (exact ancestral samples, the classes
    in turn for a conditional run); `interpolations(rows)` → further samples, rows of 10
    (there is no latent space to walk); `curves(metrics)` → the exact NLL per epoch.
    """

    model: PixelCNN
    info: dict

    def __post_init__(self) -> None:
        self.sampler = sampler_of(self.model)

    def sample(self, n: int, seed: int) -> np.ndarray:
        labels = cycled_labels(n, self.model.n_classes) if self.model.n_classes else None
        return sample_images(self.sampler, self.model.image_shape, n, seed, labels)

    def interpolations(self, rows: int) -> np.ndarray:
        return self.sample(rows * 10, seed=1)

    def curves(self, metrics: dict) -> tuple[str, str, dict[str, tuple[list, list]]]:
        """Train, validation and test −log p(x) per epoch (exact, nats per image)."""
        history = metrics.get("history", {})
        epochs, curves = history.get("epoch", []), {}
        for key, label in (("train_nll", "train"), ("validation_nll", "validation"), ("test_nll", "test")):
            points = [(e, v) for e, v in zip(epochs, history.get(key) or []) if v is not None]
            if points:
                curves[label] = ([e for e, _ in points], [v for _, v in points])
        return "−log p(x) (nats per image, exact)", "epoch", curves


def load_sampler(run_dir: str | Path, precision: str = "float32") -> PixelCNNSampler:
    """The run's PixelCNN (`load_pixelcnn`) as a `PixelCNNSampler`."""
    model = load_pixelcnn(run_dir, precision)
    return PixelCNNSampler(model, {"family": "pixelcnn", "sampler_parameters": model.count_params(),
                                   "latent_dim": 0, "interpolation": INTERPOLATION})


@dataclass
class Settings:
    run: str = setting("", "run folder of a pixelcnn.train run")
    out: str = setting("samples.png", "output: .png grid or .npz with uint8 `images`")
    n: int = setting(64, "number of samples", positive=True, max=100000)
    seed: int = setting(0, "seed of the uniforms each value is drawn with", min=0)
    label: str | None = setting(None, "class-conditional runs: every sample of this class, an "
                                      "index or a class name (unset: the classes in turn)")
    precision: str = precision_setting()

    def validate(self) -> None:
        if not self.run:
            raise UserError("--run: give the run folder of a pixelcnn.train run")
        if Path(self.out).suffix.lower() not in (".png", ".npz"):
            raise UserError(f"--out: {self.out} must end in .png or .npz")


def main(argv: list[str] | None = None) -> Path:
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0], prog="python -m pixelcnn.sample")
    with lock_if_writing_into(settings.run, settings.out):
        model = load_pixelcnn(settings.run, settings.precision)
        labels = requested_labels(label_index(settings.label, settings.run), settings.n, model.n_classes,
                                  settings.run)
        images = sample_images(sampler_of(model), model.image_shape, settings.n, settings.seed, labels)
        cycled = model.n_classes if settings.label is None else 0
        write_samples(settings.out, images, class_columns(len(images), cycled))
    print(f"wrote {len(images)} samples to {settings.out}")
    return Path(settings.out)


if __name__ == "__main__":
    run_cli(main)
