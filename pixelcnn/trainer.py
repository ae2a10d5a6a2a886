"""What `python -m pixelcnn.train` runs once its settings are valid: data, the PixelCNN's fit,
the weights kept by validation NLL and the test numbers (pixelcnn/train.py has the settings).

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
from common.conditioning import class_count, cycled_labels
from common.data import Splits, binary_test_images, load_training_splits, make_dataset
from common.evaluation.quality import sample_quality_callback
from common.images import save_image
from common.plots import image_grid, plot_curves
from common.runs import check_resumed_settings
from common.tensorboard import TensorBoardLogger
from common.training import TrainingRun
from pixelcnn.model import PixelCNN, build_pixelcnn
from pixelcnn.sample import BEST_FILE, MODEL_FILE, sample_images, sampler_of
from pixelcnn.train import Settings

# What the weights mean: --resume refuses another value of these.
RESUME_KEEPS = ("likelihood", "binarize", "dataset", "arch")


class HeldOutNLL(keras.callbacks.Callback):
    """Per epoch: the exact NLL of the validation split (logs `validation_nll`,
    `validation_bits_per_dim`), the weights kept as model_best.keras whenever it is the
    lowest so far, and 64 samples in TensorBoard."""

    def __init__(self, validation: tf.data.Dataset, best_file: Path, best_nll: float,
                 logger: TensorBoardLogger, draw):
        super().__init__()
        self.validation, self.best_file, self.best_nll = validation, best_file, best_nll
        self.logger, self.draw = logger, draw

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if getattr(self.model, "diverged", False):
            return
        result = self.model.evaluate(self.validation, return_dict=True, verbose=0)
        logs = logs if logs is not None else {}
        logs["validation_nll"], logs["validation_bits_per_dim"] = result["nll"], result["bits_per_dim"]
        if result["nll"] < self.best_nll:
            self.best_nll = result["nll"]
            save_model(self.model, self.best_file)
        self.logger.images("samples", self.draw(64), epoch + 1, columns=8)


def load_data(settings: Settings) -> tuple[Splits, dict[str, tf.data.Dataset], int]:
    """(splits, {"train", "validation", "test"} datasets, steps per epoch); bad data settings
    raise `UserError` before anything is written."""
    splits = load_training_splits(settings)
    labelled = settings.conditional
    capped = settings.steps_per_epoch is not None
    data = {"train": make_dataset(splits.x_train, splits.y_train if labelled else None,
                                  batch_size=settings.batch_size, shuffle=True, binarize=settings.binarize,
                                  seed=settings.seed, repeat=capped)}
    for name, images, labels in (("validation", splits.x_validation, splits.y_validation),
                                 ("test", splits.x_test, splits.y_test)):
        held_out = binary_test_images(images, settings.binarize)  # the same binary images every epoch
        data[name] = make_dataset(held_out, labels if labelled else None, batch_size=min(500, len(held_out)))
    steps = settings.steps_per_epoch or math.ceil(len(splits.x_train) / settings.batch_size)
    return splits, data, steps


def best_so_far(history: dict[str, list]) -> tuple[float, int]:
    """(lowest validation NLL, its epoch) of a resumed run's history; (inf, 0) for a new run."""
    values = [(v, e) for v, e in zip(history.get("validation_nll", []), history.get("epoch", [])) if v is not None]
    return min(values, default=(math.inf, 0))


def write_curves(history: dict[str, list], path: Path) -> None:
    """NLL per epoch (train, validation, test) as a PNG, on a log scale: the first epoch's
    NLL is tens of times the last's."""
    epochs = history.get("epoch", [])
    curves = {}
    for key, label in (("train_nll", "train"), ("validation_nll", "validation"), ("test_nll", "test")):
        points = [(e, v) for e, v in zip(epochs, history.get(key, [])) if v is not None]
        if points:
            curves[label] = tuple(zip(*points))
    plot_curves(path, curves, title="PixelCNN: exact −log p(x) per epoch", xlabel="epoch",
                ylabel="nats per image", log_y=True)


def final_metrics(model: PixelCNN, run: TrainingRun, test: tf.data.Dataset, best_nll: float) -> dict[str, Any]:
    """The test NLL of the kept weights (lowest validation NLL; the last ones if none was kept)."""
    best_file = run.run_dir / BEST_FILE
    if best_file.is_file():
        model.load_weights(best_file)
    result = model.evaluate(test, return_dict=True, verbose=0)
    _, best_epoch = best_so_far(run.metrics["history"])
    return {"test_nll": float(result["nll"]), "test_bits_per_dim": float(result["bits_per_dim"]),
            "best_epoch": best_epoch, "validation_nll": None if math.isinf(best_nll) else float(best_nll),
            "likelihood": model.likelihood}


def train(settings: Settings) -> Path:
    """Train (or resume) a PixelCNN as `settings` say; returns the run folder."""
    with TrainingRun("pixelcnn", settings, settings.epochs) as run:
        if settings.resume:
            check_resumed_settings(settings, run.run_dir, "pixelcnn", RESUME_KEEPS)
        splits, data, steps_per_epoch = load_data(settings)
        n_classes = class_count(splits.y_train) if settings.conditional else 0
        with run.strategy.scope():
            model = build_pixelcnn(splits.image_shape, settings.likelihood, settings.arch, settings.features,
                                   settings.layers, settings.kernel_size, n_classes)
            optimizer = run.optimizer(keras.optimizers.Adam(settings.lr))
            model.compile(optimizer=optimizer)
            optimizer.build(model.trainable_variables)
        run.start({"model": model, "optimizer": optimizer}, steps=optimizer.iterations,
                  parameters=model.count_params(), sampler_parameters=model.count_params(),
                  hparams=["test_nll", "test_bits_per_dim"])
        # The checkpoint holds the old learning rate; the one asked for now wins, which
        # allows a manual step decay (resume with a lower --lr), as vae.train does.
        optimizer.learning_rate.assign(settings.lr)
        decay = keras.callbacks.LearningRateScheduler(lambda epoch: settings.lr * settings.lr_decay ** epoch)
        labels = (lambda n: cycled_labels(n, n_classes)) if n_classes else None
        draw = drawing(model, settings.seed, labels)
        best_nll, _ = best_so_far(run.metrics["history"])
        quality = sample_quality_callback(settings, draw, labels, run.logger)
        run.fit(model, data["train"], steps_per_epoch, validation_data=data["test"],
                callbacks=[HeldOutNLL(data["validation"], run.run_dir / BEST_FILE, best_nll, run.logger, draw),
                           decay, *([quality] if quality else [])])
        save_model(model, run.run_dir / MODEL_FILE)
        final = {**final_metrics(model, run, data["test"], best_so_far(run.metrics["history"])[0]),
                 "classes": list(splits.classes)}
        save_image(run.run_dir / "samples.png", image_grid(draw(64), 8))
        write_curves(run.metrics["history"], run.run_dir / "curves.png")
        if quality is not None:
            final["sample_quality"] = {**quality.evaluate(run.metrics["epochs"]), "samples": quality.n}
        metrics = run.finish(**final)
    if not settings.quiet:
        print(f"{run.run_dir}: test NLL {metrics['test_nll']:.2f} nats ({metrics['test_bits_per_dim']:.4f} "
              f"bits/dim) with the weights of epoch {metrics['best_epoch']} (lowest validation NLL); "
              f"{metrics['train_seconds'] / 60:.1f} min of training", flush=True)
    return run.run_dir


def drawing(model: PixelCNN, seed: int, labels) -> Any:
    """n → n samples of `model` from `seed` (the classes `labels(n)` for a conditional one)."""
    sampler = sampler_of(model)

    def draw(n: int) -> np.ndarray:
        return sample_images(sampler, model.image_shape, n, seed, labels(n) if labels else None)

    return draw
