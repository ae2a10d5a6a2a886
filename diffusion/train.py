"""Train a denoising diffusion model (DDPM) and report its sample quality and likelihood bound.

    python -m diffusion.train --config recipes/diffusion/mnist.json   # the documented MNIST result
    python -m diffusion.train --epochs 1 --max-minutes 10              # MNIST, 8-bit grey levels
    python -m diffusion.train --dataset shapes --image-size 32          # colour
    python -m diffusion.train --conditional                             # p(x | y), guidance-ready

Every epoch: the simple loss on the first 1,000 test images with the averaged weights
(`test_loss`), and
64 images from fixed noise (DDIM, `--sample-steps`) in samples.png and TensorBoard; every
`--eval-every` epochs the FID, classifier score and class coverage of `--eval-samples`
samples, when the dataset's classifier is cached. At the end the EMA U-Net is saved as
model.keras (what `diffusion.sample` loads), and the variational bound is measured on the
first `--bound-images` test images (metrics.json `test_bits_per_dim`, `test_bound_nats`).
Results go to runs/diffusion/<name>/ (docs/runs.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from common.checkpoints import save_model
from common.conditioning import class_columns, class_count, cycled_labels
from common.config import parse_settings, setting
from common.data import ImageDataSettings, Splits, load_splits, make_dataset
from common.errors import UserError, run_cli
from common.evaluation import sample_quality_callback
from common.plots import plot_curves, write_samples
from common.runs import load_run_config
from common.tensorboard import TensorBoardLogger
from common.training import TrainingRun, TrainingSettings
from diffusion.losses import SCHEDULES, bits_per_dim
from diffusion.model import Diffusion, build_diffusion, variational_bound
from diffusion.sample import MODEL_FILE, DiffusionSampler

GRID = 64  # the per-epoch grid's images, from one fixed x_T
EPOCH_TEST_IMAGES = 1000  # the test images of the per-epoch loss


@dataclass
class Settings(TrainingSettings, ImageDataSettings):
    features: int = setting(32, "U-Net width at full resolution (× 1, 2, 2, … below), a multiple of 8",
                            positive=True)
    res_blocks: int = setting(2, "residual blocks per resolution", positive=True)
    attention: bool = setting(True, "self-attention in the middle, at the lowest resolution")
    dropout: float = setting(0.0, "dropout in every residual block (Ho et al.: 0.1 on CIFAR-10)",
                             min=0.0, max=0.9)
    schedule: str = setting("linear", "noise schedule: linear (Ho et al. 2020) or cosine (Nichol & "
                                      "Dhariwal 2021)", choices=SCHEDULES)
    timesteps: int = setting(1000, "diffusion steps T", min=2)
    ema: float = setting(0.999, "decay of the weights' moving average that samples", min=0.0, max=0.99999)
    epochs: int = setting(10, "training epochs", positive=True)
    steps_per_epoch: int | None = setting(None, "cap on batches per epoch; unset: one pass", positive=True)
    batch_size: int = setting(64, "examples per batch", positive=True)
    lr: float = setting(5e-4, "Adam learning rate", positive=True)
    conditional: bool = setting(False, "class-conditional, with the null class for guidance")
    label_dropout: float = setting(0.1, "conditional: share of labels replaced by the null class "
                                        "(Ho & Salimans: 0.1–0.2)", min=0.0, max=1.0)
    sample_steps: int = setting(50, "DDIM steps of the epoch grids and the sample scores", positive=True)
    eval: bool = setting(True, "score samples (FID, classifier score, class coverage) with the "
                               "cached classifier, when there is one")
    eval_every: int = setting(5, "epochs between sample-quality scores", positive=True)
    eval_samples: int = setting(1000, "samples per sample-quality score", min=2)
    bound_images: int = setting(100, "test images the final likelihood bound is measured on "
                                     "(T network passes each; 0: none)", min=0)

    def validate(self) -> None:
        super().validate()
        self.check_images("conv")
        if self.features % 8:
            raise UserError(f"--features: must be a multiple of 8 (group norm's groups), got {self.features}")
        if self.sample_steps > self.timesteps:
            raise UserError(f"--sample-steps: {self.sample_steps} is more than --timesteps {self.timesteps}")


def load_data(settings: Settings) -> tuple[Splits, tf.data.Dataset, tf.data.Dataset, int]:
    """(splits, training batches, test batches, steps per epoch); bad data settings raise
    `UserError` before anything is written."""
    splits = load_splits(settings.dataset, settings.data_dir, image_size=settings.image_size,
                         channels=settings.channels)
    if settings.batch_size > len(splits.x_train):
        raise UserError(f"--batch-size: {settings.batch_size} is larger than the training set "
                        f"({len(splits.x_train)} images)")
    if settings.conditional:
        class_count(splits.y_train)  # unlabelled data: a UserError now
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
                             progress=not settings.quiet)
    dims = int(np.prod(splits.image_shape))
    mean, error = float(nats.mean()), float(nats.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    return {"test_bound_nats": mean, "test_bound_nats_stderr": error, "bound_images": n,
            "test_bits_per_dim": float(bits_per_dim(mean, dims)),
            "test_bits_per_dim_stderr": float(bits_per_dim(error, dims))}


def train(settings: Settings) -> Path:
    """Train (or resume) a diffusion model as `settings` say; returns the run folder."""
    with TrainingRun("diffusion", settings, settings.epochs) as run:
        if settings.resume:
            check_resume(settings, run.run_dir)
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


def check_resume(settings: Settings, run_dir: Path) -> None:
    """A resumed run keeps its process, network and data: another one is refused with one line."""
    old = load_run_config(run_dir, "diffusion")["settings"]
    for name in ("schedule", "timesteps", "dataset", "features", "res_blocks", "attention", "conditional"):
        if old.get(name) != getattr(settings, name):
            raise UserError(f"--resume: {run_dir} was trained with --{name.replace('_', '-')} {old.get(name)}, "
                            f"not {getattr(settings, name)}; start a new run for another")


def main(argv: list[str] | None = None) -> None:
    train(parse_settings(Settings, argv, __doc__.splitlines()[0], prog="python -m diffusion.train"))


if __name__ == "__main__":
    run_cli(main)
