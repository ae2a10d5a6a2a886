"""What `python -m gan.train` runs once its settings are valid: data, networks, the GAN's
fit and the files of its run folder (gan/train.py has the settings and lists the files).

Imported only when training starts, so that `--help` and bad flags answer before TensorFlow
loads.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure
from PIL import Image

from common.checkpoints import save_model
from common.conditioning import class_count, cycled_labels
from common.data import load_splits, make_dataset
from common.errors import UserError
from common.evaluation.quality import SampleQuality, training_classifier
from common.files import atomic_write
from common.images import save_image
from common.plots import image_grid, plot_curves, save_figure
from common.training import TrainingRun
from gan.choices import parse_augmentations
from gan.clusters import CLUSTERS_FILE, fit_clusters, load_clusters, proportional_labels, save_clusters
from gan.conditional import EMBEDDING_SIZE, conditional_generator, projection_discriminator
from gan.losses import objective
from gan.model import (
    GAN,
    build_discriminator,
    build_generator,
    from_unit_range,
    set_output_bias_from_pixel_means,
    to_unit_range,
)
from gan.optimizers import build_optimizer
from gan.sample import EMA_GENERATOR_FILE, GENERATOR_FILE, best_file, sample_images
from gan.stabilizers import spectrally_normalized
from gan.train import Settings

GRID_SIZE = 64  # fixed-noise samples shown each epoch (8 × 8)
GRID_PADDING = 2  # common.plots.image_grid's default


def make_training_data(images: np.ndarray, settings: Settings,
                       labels: np.ndarray | None = None) -> tf.data.Dataset:
    """Endless (batch, k, H, W, C) batches: k fresh minibatches per iteration, scaled to
    the generator's output range, reshuffled every pass over the data; with `labels`,
    (images, (batch, k) labels) pairs."""
    batch, k, shape = settings.batch_size, settings.k, images.shape[1:]
    dataset = make_dataset(images, labels, batch_size=batch * k, shuffle=True, seed=settings.seed,
                           drop_remainder=True, repeat=True)

    def stack(images: tf.Tensor, *labels: tf.Tensor) -> tf.Tensor | tuple[tf.Tensor, tf.Tensor]:
        images = tf.reshape(from_unit_range(images, settings.output_activation), (batch, k, *shape))
        return (images, tf.reshape(labels[0], (batch, k))) if labels else images

    return dataset.map(stack, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def write_gif(frames: list[Path], path: Path) -> None:
    """An animated GIF of the per-epoch sample grids (the last frame held longer)."""
    images = [Image.open(frame) for frame in frames]
    images = [image.convert("L" if image.mode == "L" else "RGB") for image in images]
    durations = [400] * (len(images) - 1) + [2000]
    with atomic_write(path) as handle:
        images[0].save(handle, format="GIF", save_all=True, append_images=images[1:],
                       duration=durations, loop=0)


def write_progress(frames: list[Path], path: Path, rows: int = 10, height: int = 28) -> None:
    """The first row of up to `rows` evenly spaced epoch grids, one labelled row per epoch."""
    chosen = sorted({frames[round(i)] for i in np.linspace(0, len(frames) - 1, min(rows, len(frames)))})
    figure = Figure(figsize=(4.2, 0.6 * len(chosen)))
    axes = figure.subplots(len(chosen), 1, squeeze=False)
    for axis, frame in zip(axes[:, 0], chosen):
        grid = np.asarray(Image.open(frame))
        axis.imshow(grid[:GRID_PADDING + height + GRID_PADDING], cmap="gray", vmin=0, vmax=255)
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_ylabel(f"epoch {int(frame.stem.split('_')[1])}", rotation=0, ha="right", va="center")
    figure.subplots_adjust(hspace=0.05)
    save_figure(figure, path)


def plot_training(run_dir: Path, metrics: dict[str, Any], loss: str) -> None:
    """curves.png (losses) and outputs.png (D(x), D(G(z)) or critic values) over steps."""
    steps = metrics.get("step_history", {})
    if not steps.get("step"):
        return
    x = steps["step"]
    plot_curves(run_dir / "curves.png", {"D loss": (x, steps["d_loss"]), "G loss": (x, steps["g_loss"])},
                title="losses (running means over each epoch)", xlabel="generator step")
    names = {"d_real": "D(x)", "d_fake": "D(G(z))", "critic_real": "C(x)", "critic_fake": "C(G(z))",
             "gradient_penalty": "gradient penalty"}
    outputs = {label: (x, steps[name]) for name, label in names.items() if name in steps}
    logits = objective(loss).logits
    plot_curves(run_dir / "outputs.png", outputs,
                title="discriminator outputs" if logits else "critic outputs",
                xlabel="generator step", ylabel="mean over the batch")


@dataclass
class FixedInputs:
    """The noise (and labels, when conditional) of the per-epoch sample grid: 8 × 8, or
    for a conditional model 8 rows × one column per class (≤ 16)."""

    noise: np.ndarray
    labels: np.ndarray | None
    columns: int

    @classmethod
    def draw(cls, settings: Settings, n_classes: int) -> FixedInputs:
        columns = min(n_classes, 16) if n_classes else 8
        count = GRID_SIZE if not n_classes else 8 * columns
        noise = np.random.default_rng(settings.seed).standard_normal((count, settings.noise_dim))
        labels = (np.arange(count) % columns).astype(np.int32) if n_classes else None
        return cls(noise.astype(np.float32), labels, columns)

    def images(self, generator: keras.Model, activation: str) -> np.ndarray:
        inputs = self.noise if self.labels is None else [self.noise, self.labels]
        return to_unit_range(generator(inputs, training=False).numpy(), activation)


class TrainingMonitor(keras.callbacks.Callback):
    """Step scalars every --log-every steps into TensorBoard and metrics.json's
    `step_history`; per epoch: the fixed-noise grid, GIF, progress strip, generator file
    (and the EMA generator's file and grid, samples_ema.png) and curves."""

    def __init__(self, run: TrainingRun, settings: Settings, fixed: FixedInputs):
        super().__init__()
        self.run, self.settings, self.fixed = run, settings, fixed

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        values = {name: float(value) for name, value in (logs or {}).items()}
        step = int(values.get("g_updates", 0))
        if step % self.settings.log_every == 0 and all(map(np.isfinite, values.values())):
            self.run.logger.scalars(values, step)
            history = self.run.metrics.setdefault("step_history", {})
            for name, value in {"step": step, **values}.items():
                history.setdefault(name, []).append(value)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if getattr(self.model, "diverged", False):
            return
        generator, run_dir = self.model.generator, self.run.run_dir
        samples = self.fixed.images(generator, self.settings.output_activation)
        self.run.logger.images("samples", samples, epoch + 1)
        frames = run_dir / "samples"
        save_image(frames / f"epoch_{epoch + 1:03d}.png", image_grid(samples, self.fixed.columns))
        write_gif(sorted(frames.glob("epoch_*.png")), run_dir / "samples.gif")
        write_progress(sorted(frames.glob("epoch_*.png")), run_dir / "progress.png",
                       height=samples.shape[1])
        save_model(generator, run_dir / GENERATOR_FILE)
        self.keep_if_best(generator, "", epoch + 1, logs or {})
        ema = self.model.ema_generator
        if ema is not None:
            ema_samples = self.fixed.images(ema, self.settings.output_activation)
            self.run.logger.images("samples_ema", ema_samples, epoch + 1)
            save_image(run_dir / "samples_ema.png", image_grid(ema_samples, self.fixed.columns))
            save_model(ema, run_dir / EMA_GENERATOR_FILE)
            self.keep_if_best(ema, "ema_", epoch + 1, logs or {})
        plot_training(run_dir, self.run.metrics, self.settings.loss)

    def keep_if_best(self, generator: keras.Model, prefix: str, epoch: int, logs: dict) -> None:
        """Save `generator` as generator[_ema]_best.keras, and its epoch and FID as
        metrics.json's `best_[ema_]fid`, when this epoch's sample FID is the run's lowest.
        GAN scores drift after their best epoch (docs/gan.md), so the last epoch's generator
        is not always the one to keep. The earlier FIDs are those of metrics.json's history,
        which a resume cuts back to the checkpointed epochs."""
        fid = logs.get(f"sample_{prefix}fid")
        if fid is None or not np.isfinite(fid):
            return
        earlier = [value for value in self.run.metrics["history"].get(f"sample_{prefix}fid", [])
                   if value is not None]
        if earlier and fid >= min(earlier):
            return
        save_model(generator, self.run.run_dir / best_file(EMA_GENERATOR_FILE if prefix else GENERATOR_FILE))
        self.run.metrics[f"best_{prefix}fid"] = {"epoch": epoch, "fid": float(fid)}


def build(settings: Settings, run: TrainingRun, image_shape: tuple[int, int, int],
          steps_per_epoch: int = 1, n_classes: int = 0, pixel_means: np.ndarray | None = None,
          label_frequencies: np.ndarray | None = None) -> GAN:
    """The generator, discriminator and their optimizers, compiled into a `GAN`; with
    `n_classes`, the conditional pair of `gan.conditional` (fake labels drawn from
    `label_frequencies` when given). `pixel_means` (the training images' mean) set G's
    output biases under `--init goodfellow`."""
    noise_dim = settings.noise_dim + (EMBEDDING_SIZE if n_classes else 0)
    generator = build_generator(settings.arch, noise_dim, settings.output_activation,
                                image_shape, settings.width, init=settings.init,
                                noise_components=settings.noise_components, upsample=settings.upsample)
    if settings.init == "goodfellow":
        set_output_bias_from_pixel_means(generator, pixel_means)
    discriminator = build_discriminator(settings.arch, image_shape, settings.width, init=settings.init,
                                        downsample=settings.downsample)
    if settings.spectral_norm:
        discriminator = spectrally_normalized(discriminator)
    if n_classes:
        generator = conditional_generator(generator, n_classes)
        discriminator = projection_discriminator(discriminator, n_classes, settings.spectral_norm)
    augment = parse_augmentations(settings.diffaugment) if settings.diffaugment else ()
    model = GAN(generator, discriminator, loss=settings.loss, k=settings.k,
                label_smoothing=settings.label_smoothing, gp_weight=settings.gp_weight,
                seed=settings.seed, r1_gamma=settings.r1, augment=augment, ema_decay=settings.ema,
                n_classes=n_classes, label_frequencies=label_frequencies)
    # D's optimizer counts k updates per generator step, so its epochs are k times longer.
    d_optimizer, g_optimizer = (
        build_optimizer(settings.optimizer, lr, settings.beta1, settings.beta2, updates)
        for lr, updates in ((settings.lr_d, steps_per_epoch * settings.k), (settings.lr_g, steps_per_epoch)))
    model.compile(d_optimizer=run.optimizer(d_optimizer), g_optimizer=run.optimizer(g_optimizer))
    return model


def sample_quality(settings: Settings, model: GAN, classifier, run: TrainingRun, n_classes: int,
                   label_frequencies: np.ndarray | None = None) -> list[SampleQuality]:
    """FID, classifier score and class histogram of the samples (mode collapse shows there),
    the classification accuracy score when conditional on classes (with clusters, samples
    are drawn in proportion to the cluster sizes instead); for the EMA generator as well,
    logged as `ema_*`."""
    if classifier is None:
        return []
    labels = (lambda n: cycled_labels(n, n_classes)) if n_classes else None
    if label_frequencies is not None:
        labels = functools.partial(proportional_labels, frequencies=label_frequencies)
    generators = {"": model.generator, "ema_": model.ema_generator}
    qualities: list[SampleQuality] = []
    for prefix, generator in generators.items():
        if generator is not None:  # the EMA generator's scores use the same references
            qualities.append(SampleQuality(
                lambda n, g=generator: sample_images(g, n, seed=settings.seed, labels=labels and labels(n)),
                classifier, run.logger, every=settings.eval_every, n=settings.eval_samples, prefix=prefix,
                labels=labels if label_frequencies is None else None,
                references_from=qualities[0] if qualities else None))
    return qualities


def training_labels(settings: Settings, run: TrainingRun, splits) -> tuple[np.ndarray | None,
                                                                          np.ndarray | None]:
    """(labels of the training images, cluster frequencies): the classes with --conditional
    (`train` counts them, which refuses unlabelled data); with --clusters the k-means
    clusters, fitted on the first start and read back on a resume (so the labels never
    change under a run); (None, None) otherwise."""
    if settings.conditional:
        return splits.y_train, None
    if not settings.clusters:
        return None, None
    if settings.resume and (run.shared_dir / CLUSTERS_FILE).is_file():
        return load_clusters(run.shared_dir)
    return fit_clusters(splits.x_train, settings.clusters, settings.seed)


def train(settings: Settings) -> Path:
    """Train as `settings` say; returns the run folder."""
    # The run (and its tf.distribute strategy) first: a multi-worker strategy must exist
    # before any TensorFlow op. Nothing is written before `run.start`.
    with TrainingRun("gan", settings, settings.epochs) as run:
        splits = load_splits(settings.dataset, settings.data_dir, image_size=settings.image_size,
                             channels=settings.channels)
        images = splits.x_train
        if settings.batch_size * settings.k > len(images):
            raise UserError(f"--batch-size × --k = {settings.batch_size * settings.k} exceeds the "
                            f"{len(images)} training images")
        labels, frequencies = training_labels(settings, run, splits)
        n_classes = 0 if labels is None else settings.clusters or class_count(labels)
        classifier = training_classifier(settings)
        steps_per_epoch = len(images) // (settings.batch_size * settings.k)
        if settings.steps_per_epoch:
            steps_per_epoch = min(steps_per_epoch, settings.steps_per_epoch)
        with run.strategy.scope():
            # The mean image only seeds the goodfellow init's output biases: a full pass over
            # the data that other runs need not make.
            pixel_means = images.mean(axis=0) if settings.init == "goodfellow" else None
            model = build(settings, run, images.shape[1:], steps_per_epoch, n_classes, pixel_means,
                          frequencies)
        ema = {"generator_ema": model.ema_generator} if model.ema_generator is not None else {}
        run.start({"generator": model.generator, "discriminator": model.discriminator,
                   "d_optimizer": model.d_optimizer, "g_optimizer": model.g_optimizer,
                   "noise": model.noise, **ema},
                  steps=model.g_optimizer.iterations, parameters=model.count_params(),
                  sampler_parameters=model.generator.count_params(),
                  hparams=["sample_fid", "sample_classifier_score"])
        if frequencies is not None and not (run.run_dir / CLUSTERS_FILE).is_file():
            save_clusters(run.run_dir, labels, frequencies)  # a resume read them from there
        quality = sample_quality(settings, model, classifier, run, n_classes, frequencies)
        data = make_training_data(images, settings, labels)
        run.fit(model, data, steps_per_epoch,
                callbacks=[*quality, TrainingMonitor(run, settings, FixedInputs.draw(settings, n_classes))])
        metrics = run.finish(discriminator_steps=int(model.d_optimizer.iterations.numpy()),
                             classes=[] if settings.clusters else list(splits.classes))
    if not settings.quiet:
        print(f"{run.run_dir}: {metrics['epochs_trained']:.3g} epochs ({metrics['steps']} generator steps), "
              f"{metrics['train_seconds']:.0f} s; samples in {run.run_dir / 'samples.gif'}")
    return run.run_dir
