"""Train a GAN on MNIST or Fashion-MNIST: `python -m gan.train --arch dcgan --k 1`.

Goodfellow et al. 2014, Algorithm 1 (k discriminator steps per generator step), with the
paper's minimax loss, its non-saturating variant, or WGAN-GP (Gulrajani et al. 2017).
A run folder (runs/gan/<name>) receives config.json, TensorBoard events, checkpoints of
both networks and both optimizers every epoch, `generator.keras` (rewritten every epoch),
a sample grid per epoch from a fixed noise batch (samples/epoch_NNN.png, samples.gif,
progress.png), step curves (curves.png, outputs.png) and metrics.json.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure
from PIL import Image

from common.checkpoints import (Checkpointer, CheckpointEveryEpoch, StopAfterTime, StopOnNaN,
                                save_model)
from common.classifier import classifier_for_training
from common.config import RunSettings, parse_settings, setting, settings_dict
from common.data import DATASETS, load_splits, make_dataset
from common.distribute import STRATEGIES, get_strategy
from common.errors import UserError, run_cli
from common.evaluation import SampleQuality
from common.files import atomic_write, read_json
from common.images import save_image
from common.plots import image_grid, plot_curves, save_figure
from common.runs import (METRICS_FILE, create_run, load_run_config, run_dir_for, set_seed,
                         write_metrics)
from common.tensorboard import TensorBoardLogger
from gan.losses import LOSSES
from gan.model import (ARCHITECTURES, GAN, IMAGE_SHAPE, OUTPUT_ACTIVATIONS, build_discriminator,
                       build_generator, from_unit_range, to_unit_range)
from gan.sample import GENERATOR_FILE, sample_images

MODEL_NAME = "gan"
GRID_SIZE = 64  # fixed-noise samples shown each epoch (8 × 8)
GRID_PADDING = 2  # common.plots.image_grid's default


@dataclass
class Settings(RunSettings):
    dataset: str = setting("mnist", "training images", choices=DATASETS)
    data_dir: str | None = setting(None, "folder holding mnist.npz / fashion-mnist.npz (default $DATA_DIR)")
    arch: str = setting("dcgan", "network pair: dcgan (conv) or mlp (the paper's)", choices=ARCHITECTURES)
    noise_dim: int = setting(100, "length of the noise vector z ~ N(0, I)", positive=True)
    output_activation: str = setting("tanh", "generator output; data are scaled to its range",
                                     choices=OUTPUT_ACTIVATIONS)
    loss: str = setting("nonsaturating", "GAN objective", choices=LOSSES)
    k: int = setting(1, "discriminator steps per generator step (Algorithm 1)", positive=True)
    label_smoothing: float = setting(0.0, "one-sided label smoothing: real target 1 - s", min=0.0, max=0.5)
    gp_weight: float = setting(10.0, "gradient penalty weight λ (wgan-gp)", min=0.0)
    batch_size: int = setting(64, "images per minibatch (each of the k D steps gets its own)", positive=True)
    epochs: int = setting(30, "passes over the training set, counted in discriminator minibatches",
                          positive=True)
    max_minutes: float | None = setting(None, "stop once this many minutes were spent in "
                                        "training steps (an equal-time budget; evaluation between "
                                        "epochs not counted; --epochs is then the upper limit; a "
                                        "resumed run gets a new budget)", positive=True)
    steps_per_epoch: int | None = setting(None, "cap on generator steps per epoch (default: a full pass)",
                                          positive=True)
    lr_d: float = setting(2e-4, "discriminator learning rate (Adam)", positive=True, max=1.0)
    lr_g: float = setting(2e-4, "generator learning rate (Adam)", positive=True, max=1.0)
    beta1: float = setting(0.5, "Adam β1 for both networks", min=0.0)
    beta2: float = setting(0.999, "Adam β2 for both networks", min=0.0)
    log_every: int = setting(50, "write step scalars to TensorBoard every N generator steps", positive=True)
    strategy: str = setting("default", "tf.distribute strategy", choices=STRATEGIES)
    mixed_precision: bool = setting(False, "compute in bfloat16, keep weights in float32")
    resume: bool = setting(False, "continue the run in --run-dir/--name from its last checkpoint")
    eval: bool = setting(True, "score samples (FID, classifier score, class coverage and histogram) "
                               "with the cached classifier of common.classifier")
    eval_every: int = setting(1, "epochs between sample-quality scores", positive=True)
    eval_samples: int = setting(10000, "samples scored each time", min=2)

    def validate(self) -> None:
        for name in ("beta1", "beta2"):
            if getattr(self, name) >= 1.0:
                raise UserError(f"--{name}: must be below 1, got {getattr(self, name)}")
        if self.loss == "wgan-gp" and self.label_smoothing > 0:
            raise UserError("--label-smoothing applies to the minimax and nonsaturating losses, "
                            "not to wgan-gp")
        if self.resume and not (self.run_dir or self.name):
            raise UserError("--resume needs the run's --run-dir or --name")


def make_training_data(images: np.ndarray, settings: Settings) -> tf.data.Dataset:
    """Endless (batch, k, 28, 28, 1) batches: k fresh minibatches per iteration, scaled to
    the generator's output range, reshuffled every pass over the data."""
    batch, k = settings.batch_size, settings.k
    dataset = make_dataset(images, batch_size=batch * k, shuffle=True, seed=settings.seed,
                           drop_remainder=True, repeat=True)

    def stack(images: tf.Tensor) -> tf.Tensor:
        return tf.reshape(from_unit_range(images, settings.output_activation), (batch, k, *IMAGE_SHAPE))

    return dataset.map(stack, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def write_gif(frames: list[Path], path: Path) -> None:
    """An animated GIF of the per-epoch sample grids (the last frame held longer)."""
    images = [Image.open(frame).convert("L") for frame in frames]
    durations = [400] * (len(images) - 1) + [2000]
    with atomic_write(path) as handle:
        images[0].save(handle, format="GIF", save_all=True, append_images=images[1:],
                       duration=durations, loop=0)


def write_progress(frames: list[Path], path: Path, rows: int = 10) -> None:
    """The first row of up to `rows` evenly spaced epoch grids, one labelled row per epoch."""
    chosen = sorted({frames[round(i)] for i in np.linspace(0, len(frames) - 1, min(rows, len(frames)))})
    figure = Figure(figsize=(4.2, 0.6 * len(chosen)))
    axes = figure.subplots(len(chosen), 1, squeeze=False)
    for axis, frame in zip(axes[:, 0], chosen):
        grid = np.asarray(Image.open(frame).convert("L"))
        axis.imshow(grid[:GRID_PADDING + 28 + GRID_PADDING], cmap="gray", vmin=0, vmax=255)
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_ylabel(f"epoch {int(frame.stem.split('_')[1])}", rotation=0, ha="right", va="center")
    figure.subplots_adjust(hspace=0.05)
    save_figure(figure, path)


def plot_training(run_dir: Path, metrics: dict[str, Any], loss: str) -> None:
    """curves.png (losses) and outputs.png (D(x), D(G(z)) or critic values) over steps."""
    steps = metrics.get("steps", {})
    if not steps.get("step"):
        return
    x = steps["step"]
    plot_curves(run_dir / "curves.png", {"D loss": (x, steps["d_loss"]), "G loss": (x, steps["g_loss"])},
                title="losses", xlabel="generator step")
    if loss == "wgan-gp":
        outputs = {"C(x)": (x, steps["critic_real"]), "C(G(z))": (x, steps["critic_fake"]),
                   "gradient penalty": (x, steps["gradient_penalty"])}
    else:
        outputs = {"D(x)": (x, steps["d_real"]), "D(G(z))": (x, steps["d_fake"])}
    plot_curves(run_dir / "outputs.png", outputs,
                title="critic outputs" if loss == "wgan-gp" else "discriminator outputs",
                xlabel="generator step", ylabel="mean over the batch")


class TrainingMonitor(keras.callbacks.Callback):
    """Step scalars every N steps; per epoch: means, fixed-noise grid, GIF, generator, metrics.

    Keras' own epoch logs are the last step's values; this keeps the epoch means, which
    go to metrics.json's `history`.
    """

    def __init__(self, run_dir: Path, logger: TensorBoardLogger, settings: Settings,
                 fixed_noise: np.ndarray, metrics: dict[str, Any], quality: SampleQuality | None):
        super().__init__()
        self.run_dir, self.logger, self.settings = run_dir, logger, settings
        self.fixed_noise, self.metrics, self.quality = fixed_noise, metrics, quality
        self.sums: dict[str, float] = {}
        self.count = 0
        self.epoch_start = self.last_batch_end = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.sums, self.count, self.epoch_start = {}, 0, time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        values = {name: float(value) for name, value in (logs or {}).items()}
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.count += 1
        self.last_batch_end = time.perf_counter()  # epoch time excludes the sample scoring after it
        step = int(values.get("g_updates", 0))
        if step % self.settings.log_every == 0 and all(map(math.isfinite, values.values())):
            self.logger.scalars(values, step)
            steps = self.metrics.setdefault("steps", {})
            for name, value in {"step": step, **values}.items():
                steps.setdefault(name, []).append(value)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if getattr(self.model, "diverged", False) or self.count == 0:
            return
        seconds = self.last_batch_end - self.epoch_start
        means = {name: total / self.count for name, total in self.sums.items()}
        means["d_updates"], means["g_updates"] = float(logs["d_updates"]), float(logs["g_updates"])
        row = {**means, "epoch_seconds": seconds}
        quality = self.quality.history[-1] if self.quality and self.quality.history else {}
        if quality.get("epoch") == epoch + 1:
            row.update(self.quality.latest)
        history, done = self.metrics["history"], len(self.metrics["history"].get("g_updates", []))
        for name in row.keys() | history.keys():  # None where a value was not measured that epoch
            history.setdefault(name, [None] * done).append(row.get(name))
        self.logger.scalars({f"epoch/{name}": value for name, value in means.items()}, epoch + 1)

        generator = self.model.generator
        samples = to_unit_range(generator(self.fixed_noise, training=False).numpy(),
                                self.settings.output_activation)
        self.logger.images("samples", samples, epoch + 1)
        self.logger.flush()
        frames = self.run_dir / "samples"
        save_image(frames / f"epoch_{epoch + 1:03d}.png", image_grid(samples, 8))
        write_gif(sorted(frames.glob("epoch_*.png")), self.run_dir / "samples.gif")
        write_progress(sorted(frames.glob("epoch_*.png")), self.run_dir / "progress.png")
        save_model(generator, self.run_dir / GENERATOR_FILE)
        self.metrics["epochs"] = epoch + 1
        self.metrics["train_seconds"] += seconds
        write_metrics(self.run_dir, self.metrics)
        plot_training(self.run_dir, self.metrics, self.settings.loss)


def previous_metrics(run_dir: Path, epochs_done: int) -> dict[str, Any] | None:
    """metrics.json of an interrupted run, cut back to the epochs its checkpoint holds."""
    path = run_dir / METRICS_FILE
    if epochs_done == 0 or not path.is_file():
        return None
    metrics = read_json(path, "metrics file")
    metrics["history"] = {name: values[:epochs_done] for name, values in metrics["history"].items()}
    last_step = metrics["history"]["g_updates"][-1]
    steps = metrics["steps"]
    keep = [i for i, step in enumerate(steps.get("step", [])) if step <= last_step]
    metrics["steps"] = {name: [values[i] for i in keep] for name, values in steps.items()}
    metrics["train_seconds"] = sum(metrics["history"]["epoch_seconds"])
    return metrics


def build(settings: Settings) -> GAN:
    """The generator, discriminator and their optimizers, compiled into a `GAN`."""
    generator = build_generator(settings.arch, settings.noise_dim, settings.output_activation)
    discriminator = build_discriminator(settings.arch)
    model = GAN(generator, discriminator, loss=settings.loss, k=settings.k,
                label_smoothing=settings.label_smoothing, gp_weight=settings.gp_weight)
    model.compile(
        d_optimizer=keras.optimizers.Adam(settings.lr_d, settings.beta1, settings.beta2),
        g_optimizer=keras.optimizers.Adam(settings.lr_g, settings.beta1, settings.beta2))
    return model


def train(settings: Settings) -> Path:
    """Train as `settings` say; returns the run folder."""
    images = load_splits(settings.dataset, settings.data_dir).x_train
    if settings.batch_size * settings.k > len(images):
        raise UserError(f"--batch-size × --k = {settings.batch_size * settings.k} exceeds the "
                        f"{len(images)} training images")
    classifier = classifier_for_training(settings.dataset, settings.data_dir, settings.eval)
    if settings.resume:
        run_dir = run_dir_for(MODEL_NAME, settings)
        load_run_config(run_dir, MODEL_NAME)
    else:
        run_dir = create_run(MODEL_NAME, settings)

    keras.mixed_precision.set_global_policy("mixed_bfloat16" if settings.mixed_precision else "float32")
    strategy = get_strategy(settings.strategy)
    with strategy.scope():
        model = build(settings)
        checkpointer = Checkpointer(run_dir / "checkpoints", max_to_keep=3,
                                    generator=model.generator, discriminator=model.discriminator,
                                    d_optimizer=model.d_optimizer, g_optimizer=model.g_optimizer)
        if settings.resume:
            checkpointer.restore()
    initial_epoch = checkpointer.epoch
    if settings.resume:
        create_run(MODEL_NAME, settings, resume=True)  # record the resumed command's settings
    # A resumed run draws new noise and a new data order instead of replaying epoch 1's.
    set_seed(settings.seed + initial_epoch, settings.deterministic)

    steps_per_epoch = len(images) // (settings.batch_size * settings.k)
    if settings.steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, settings.steps_per_epoch)
    metrics = previous_metrics(run_dir, initial_epoch) or {
        "epochs": 0, "train_seconds": 0.0, "history": {}, "steps": {}}
    metrics.update(parameters=model.generator.count_params(),
                   discriminator_parameters=model.discriminator.count_params(),
                   steps_per_epoch=steps_per_epoch)

    logger = TensorBoardLogger(run_dir)
    logger.config(settings_dict(settings))
    fixed_noise = np.random.default_rng(settings.seed).standard_normal(
        (GRID_SIZE, settings.noise_dim)).astype(np.float32)
    stop = StopOnNaN(monitor="d_loss")
    # FID, classifier score and the class histogram of the samples: mode collapse shows there.
    quality = None if classifier is None else SampleQuality(
        lambda n: sample_images(model.generator, n, seed=settings.seed), classifier, logger,
        every=settings.eval_every, n=settings.eval_samples)
    budget = StopAfterTime(60 * settings.max_minutes) if settings.max_minutes else None
    callbacks = [stop, *([budget] if budget else []), *([quality] if quality else []),
                 TrainingMonitor(run_dir, logger, settings, fixed_noise, metrics, quality),
                 CheckpointEveryEpoch(checkpointer)]
    model.fit(make_training_data(images, settings), epochs=settings.epochs,
              initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
              callbacks=callbacks, shuffle=False, verbose=0 if settings.quiet else 2)
    logger.close()
    if stop.bad_batch is not None:
        raise UserError(stop.message(checkpointer))
    if budget and budget.reached:  # the run is finished although it has fewer than --epochs
        metrics["time_budget_reached"] = True
        write_metrics(run_dir, metrics)
    if not settings.quiet:
        print(f"{run_dir}: {metrics['epochs']} epochs, {metrics['train_seconds']:.0f} s; "
              f"samples in {run_dir / 'samples.gif'}")
    return run_dir


def main(argv: list[str] | None = None) -> Path:
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0], prog="python -m gan.train")
    return train(settings)


if __name__ == "__main__":
    run_cli(main)
