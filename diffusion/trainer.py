"""What `python -m diffusion.train` runs once its settings are valid: data, the U-Net's fit,
the per-epoch grids and the final bound (diffusion/train.py has the settings).

Imported only when training starts, so that `--help` and bad flags answer before TensorFlow
loads.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from common.checkpoints import save_model
from common.conditioning import class_columns, class_count, cycled_labels
from common.config import progress_verbosity
from common.data import Splits, load_training_splits, make_dataset
from common.evaluation.quality import sample_quality_callback
from common.plots import plot_curves, write_samples
from common.runs import check_resumed_settings
from common.tensorboard import TensorBoardLogger
from common.training import TrainingRun
from diffusion.losses import bits_per_dim
from diffusion.model import Diffusion, build_diffusion, variational_bound
from diffusion.sample import MODEL_FILE, DiffusionSampler
from diffusion.train import Settings

GRID = 64  # the per-epoch grid's images, from one fixed x_T
EPOCH_TEST_IMAGES = 1000  # the test images of the per-epoch loss

# What the weights mean: --resume refuses another value of these.
RESUME_KEEPS = ("schedule", "timesteps", "dataset", "features", "res_blocks", "attention", "conditional")


def load_data(settings: Settings) -> tuple[Splits, tf.data.Dataset, tf.data.Dataset, int]:
    """(splits, training batches, test batches, steps per epoch); bad data settings raise
    `UserError` before anything is written."""
    splits = load_training_splits(settings)
    labelled = settings.conditional
    capped = settings.steps_per_epoch is not None
    train = make_dataset(splits.x_train, splits.y_train if labelled else None, batch_size=settings.batch_size,
                         shuffle=True, seed=settings.seed, repeat=capped)
    held_out = slice(0, EPOCH_TEST_IMAGES)  # the per-epoch loss: a cheap, fixed subset
    test = make_dataset(splits.x_test[held_out], splits.y_test[held_out] if labelled else None,
                        batch_size=min(500, len(splits.x_test[held_out])))
    steps = settings.steps_per_epoch or math.ceil(len(splits.x_train) / settings.batch_size)
    return splits, train, test, steps


class EpochGrid(keras.callbacks.Callback):
    """Every epoch: 64 images of the EMA weights from one fixed x_T, in samples.png and TensorBoard."""

    def __init__(self, draw, path: Path, logger: TensorBoardLogger, columns: int):
        super().__init__()
        self.draw, self.path, self.logger, self.columns = draw, path, logger, columns

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if getattr(self.model, "diverged", False):
            return
        images = self.draw(GRID)
        write_samples(self.path, images, self.columns)
        self.logger.images("samples", images, epoch + 1, columns=self.columns)


def drawing(model: Diffusion, settings: Settings, n_classes: int):
    """n → n images of the EMA weights by DDIM (η = 0, --sample-steps) from --seed's x_T."""
    sampler = DiffusionSampler(model.ema_network, model.schedule, {})

    def draw(n: int) -> np.ndarray:
        labels = cycled_labels(n, n_classes) if n_classes else None
        return sampler.draw(n, settings.seed, labels, steps=settings.sample_steps)

    return draw


def final_metrics(model: Diffusion, settings: Settings, splits: Splits) -> dict[str, Any]:
    """The bound on the first --bound-images test images, with the EMA weights."""
    n = min(settings.bound_images, len(splits.x_test))
    if n == 0:
        return {}
    labels = splits.y_test[:n] if model.n_classes else None
    nats = variational_bound(model.ema_network, splits.x_test[:n], model.schedule, labels, seed=settings.seed,
                             progress=progress_verbosity(settings.quiet))
    dims = int(np.prod(splits.image_shape))
    mean, error = float(nats.mean()), float(nats.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    return {"test_bound_nats": mean, "test_bound_nats_stderr": error, "bound_images": n,
            "test_bits_per_dim": float(bits_per_dim(mean, dims)),
            "test_bits_per_dim_stderr": float(bits_per_dim(error, dims))}


def train(settings: Settings) -> Path:
    """Train (or resume) a diffusion model as `settings` say; returns the run folder."""
    with TrainingRun("diffusion", settings, settings.epochs) as run:
        if settings.resume:
            check_resumed_settings(settings, run.run_dir, "diffusion", RESUME_KEEPS)
        splits, train_data, test_data, steps_per_epoch = load_data(settings)
        n_classes = class_count(splits.y_train) if settings.conditional else 0
        with run.strategy.scope():
            model = build_diffusion(splits.image_shape, settings.features, settings.res_blocks, settings.attention,
                                    settings.dropout, n_classes, schedule=settings.schedule,
                                    timesteps=settings.timesteps, ema_decay=settings.ema,
                                    label_dropout=settings.label_dropout, seed=settings.seed)
            optimizer = run.optimizer(keras.optimizers.Adam(settings.lr))
            model.compile(optimizer=optimizer)  # XLA ("auto"): its draws are stateless, so seeded
            optimizer.build(model.network.trainable_variables)
        parameters = model.network.count_params()
        run.start({"network": model.network, "ema_network": model.ema_network, "optimizer": optimizer,
                   "noise_seed": model.seed_generator.state},
                  steps=optimizer.iterations, parameters=parameters, sampler_parameters=parameters,
                  hparams=["test_loss", "test_bits_per_dim"])
        optimizer.learning_rate.assign(settings.lr)  # a resume may lower it (a manual step decay)
        draw = drawing(model, settings, n_classes)
        labels = (lambda n: cycled_labels(n, n_classes)) if n_classes else None
        columns = class_columns(GRID, n_classes)
        quality = sample_quality_callback(settings, draw, labels, run.logger)
        run.fit(model, train_data, steps_per_epoch, validation_data=test_data,
                callbacks=[EpochGrid(draw, run.run_dir / "samples.png", run.logger, columns),
                           *([quality] if quality else [])])
        save_model(model.ema_network, run.run_dir / MODEL_FILE)
        history = run.metrics["history"]
        plot_curves(run.run_dir / "curves.png", {"train": (history["epoch"], history["train_loss"]),
                                                 "test (EMA)": (history["epoch"], history["test_loss"])},
                    title="diffusion: L_simple per epoch", xlabel="epoch", ylabel="mean (ε − ε̂)²")
        final = {**final_metrics(model, settings, splits), "classes": list(splits.classes)}
        if quality is not None:
            final["sample_quality"] = {**quality.evaluate(run.metrics["epochs"]), "samples": quality.n,
                                       "sampling_steps": settings.sample_steps}
        metrics = run.finish(**final)
    if not settings.quiet:
        bound = (f"; bound {metrics['test_bits_per_dim']:.3f} bits/dim on {metrics['bound_images']} test images"
                 if "test_bits_per_dim" in metrics else "")
        print(f"{run.run_dir}: test loss {history['test_loss'][-1]:.4f}{bound}; "
              f"{metrics['train_seconds'] / 60:.1f} min of training", flush=True)
    return run.run_dir
