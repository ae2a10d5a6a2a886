"""What `python -m vae.train` runs once its settings are valid: data, the VAE's fit, the
test-set numbers and the files of its run folder (vae/train.py has the settings).

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
from common.config import progress_verbosity
from common.data import Splits, binary_test_images, load_training_splits, make_dataset
from common.data_settings import DATASETS
from common.evaluation.quality import SampleQuality, training_classifier
from common.images import save_image
from common.plots import image_grid, plt, save_figure
from common.tensorboard import TensorBoardLogger
from common.training import TrainingRun
from vae.losses import bits_per_dim
from vae.model import (
    VAE,
    active_units,
    build_vae,
    encode_means,
    importance_weighted_log_likelihood,
)
from vae.sample import (
    MODEL_FILE,
    decode,
    figure_to_array,
    latent_scatter,
    manifold,
    reconstruction_grid,
    sample_images,
)
from vae.train import Settings


def binarization(settings: Settings) -> str:
    """--binarize, or when unset: dynamic for a Bernoulli decoder on digits, else none."""
    if settings.binarize is not None:
        return settings.binarize
    digits = settings.likelihood == "bernoulli" and settings.dataset in DATASETS
    return "dynamic" if digits else "none"


class TestSetEvaluation(keras.callbacks.Callback):
    """Per epoch on the test split: active units, the IW-NLL (every `nll_every` epochs)
    and image grids in TensorBoard. Adds `val_active_units` and `val_nll` to the logs."""

    def __init__(self, settings: Settings, images: np.ndarray, labels: np.ndarray,
                 logger: TensorBoardLogger):
        super().__init__()
        self.settings = settings
        self.images, self.labels = images, labels
        self.logger = logger
        # Fixed across epochs and runs, so sample grids can be compared.
        self.z = np.random.default_rng(0).standard_normal((64, settings.latent_dim))
        self.z = self.z.astype(np.float32)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs if logs is not None else {}
        if getattr(self.model, "diverged", False):
            return
        # A conditional VAE encodes (and scores) each test image with its label.
        given = self.labels if self.model.n_classes else None
        means = encode_means(self.model, self.images, labels=given)
        logs["val_active_units"] = active_units(means)
        settings = self.settings
        if settings.nll_k_train and (epoch + 1) % settings.nll_every == 0:
            count = settings.nll_examples
            logs["val_nll"] = -float(np.mean(importance_weighted_log_likelihood(
                self.model, self.images[:count], settings.nll_k_train,
                labels=None if given is None else given[:count])))
        step = epoch + 1
        self.logger.image("reconstructions", reconstruction_grid(
            self.model, self.images[:40], labels=None if given is None else given[:40]), step, "eval")
        self.logger.images("samples", decode(self.model, self.z), step, columns=8)
        if settings.latent_dim == 2:
            self.logger.image("manifold", manifold(self.model), step)
            self.logger.image("latent_scatter", figure_to_array(
                latent_scatter(means, self.labels, f"test set, epoch {step}")), step, "eval")


def sample_quality(settings: Settings, model: VAE, logger: TensorBoardLogger) -> SampleQuality | None:
    """The sample-quality callback, or None (with a notice) when off or no classifier is cached."""
    classifier = training_classifier(settings)
    if classifier is None:
        return None
    # A conditional VAE samples the classes in turn, and is scored on obeying them too.
    labels = (lambda n: cycled_labels(n, model.n_classes)) if model.n_classes else None
    return SampleQuality(lambda n: sample_images(model, n, seed=settings.seed), classifier, logger,
                         every=settings.eval_every, labels=labels)


def write_figures(model: VAE, run_dir: Path, test_images: np.ndarray, test_labels: np.ndarray,
                  history: dict[str, list]) -> None:
    """The same grids as in TensorBoard, as PNG files in the run folder, plus the curves."""
    given = test_labels if model.n_classes else None
    save_image(run_dir / "reconstructions.png", reconstruction_grid(
        model, test_images[:40], labels=None if given is None else given[:40]))
    columns = model.n_classes or 8  # conditional: one column per class
    z = np.random.default_rng(0).standard_normal((8 * columns, model.latent_dim)).astype(np.float32)
    save_image(run_dir / "samples.png", image_grid(decode(model, z), columns))
    if model.latent_dim == 2:
        save_image(run_dir / "manifold.png", manifold(model))
        save_figure(latent_scatter(encode_means(model, test_images, labels=given), test_labels,
                                   "posterior means of the test set"), run_dir / "latent_scatter.png")
    epochs = history.get("epoch", [])
    curves = {label: (epochs, [-v for v in history[key]]) for label, key in
              (("train −ELBO", "train_elbo"), ("test −ELBO", "test_elbo")) if key in history}
    if "test_nll" in history:
        nll_epochs = [e for e, v in zip(epochs, history["test_nll"]) if v is not None]
        curves["test NLL (IWAE, small k, subset)"] = (nll_epochs,
                                              [v for v in history["test_nll"] if v is not None])
    if epochs:
        figure, axes = plt.subplots(figsize=(6, 4))
        for label, (x, y) in curves.items():
            axes.plot(x, y, label=label)
        # The first epochs lie far above the rest: scale the axis to the last 90 %.
        late = [v for _, y in curves.values() for v in y[len(y) // 10:]]
        axes.set(title="VAE: bounds on −log p(x) per epoch", xlabel="epoch",
                 ylabel="nats per image", ylim=(min(late) - 2, max(late) + 2))
        axes.grid(alpha=0.3)
        axes.legend()
        save_figure(figure, run_dir / "curves.png")


def load_data(settings: Settings) -> tuple[Splits, np.ndarray, tf.data.Dataset, tf.data.Dataset, int]:
    """(splits, binary test images, training and test datasets, steps per epoch); bad data
    settings raise `UserError` before anything is written."""
    splits = load_training_splits(settings)
    test_images = binary_test_images(splits.x_test, binarization(settings))
    capped = settings.steps_per_epoch is not None
    # A conditional VAE gets (images, labels) batches.
    train_labels, test_labels = ((splits.y_train, splits.y_test) if settings.conditional else (None, None))
    train_data = make_dataset(splits.x_train, train_labels, batch_size=settings.batch_size,
                              shuffle=True, binarize=binarization(settings), seed=settings.seed,
                              repeat=capped)
    test_data = make_dataset(test_images, test_labels, batch_size=min(1000, len(test_images)))
    steps_per_epoch = settings.steps_per_epoch or math.ceil(len(splits.x_train) / settings.batch_size)
    return splits, test_images, train_data, test_data, steps_per_epoch


def final_metrics(settings: Settings, model: VAE, test_data: tf.data.Dataset,
                  test_images: np.ndarray, test_labels: np.ndarray) -> dict[str, Any]:
    """The test-set numbers of the finished model: ELBO terms, IW-NLL with k = --nll-k."""
    test = model.evaluate(test_data, return_dict=True, verbose=0)
    if not settings.quiet:
        print(f"estimating the test NLL with k={settings.nll_k} on {len(test_images)} images",
              flush=True)
    given = test_labels if model.n_classes else None  # −log p(x|y) for a conditional VAE
    progress = keras.utils.Progbar(len(test_images), verbose=progress_verbosity(settings.quiet))
    log_likelihood = importance_weighted_log_likelihood(model, test_images, settings.nll_k, labels=given,
                                                        progress=progress)
    nll = -float(np.mean(log_likelihood))
    return {
        "test_nll": nll,
        "test_bits_per_dim": bits_per_dim(nll, int(np.prod(test_images.shape[1:]))),
        "test_nll_standard_error": float(np.std(log_likelihood) / math.sqrt(len(log_likelihood))),
        "nll_k": settings.nll_k,
        "test_elbo": float(test["elbo"]),
        "test_reconstruction": float(test["reconstruction"]),
        "test_kl": float(test["kl"]),
        "active_units": active_units(encode_means(model, test_images, labels=given)),
        "likelihood": binarization(settings) != "none" or settings.likelihood != "bernoulli",
    }


def train(settings: Settings) -> Path:
    """Train (or resume) a VAE as `settings` say; returns the run folder."""
    # The run (and its tf.distribute strategy) first: a multi-worker strategy must exist
    # before any TensorFlow op. Nothing is written before `run.start`.
    with TrainingRun("vae", settings, settings.epochs) as run:
        splits, test_images, train_data, test_data, steps_per_epoch = load_data(settings)
        with run.strategy.scope():
            model = build_vae(settings.arch, settings.latent_dim, settings.hidden_units,
                              beta=settings.beta, seed=settings.seed,
                              kl_warmup_steps=settings.kl_warmup * steps_per_epoch,
                              image_shape=splits.image_shape, likelihood=settings.likelihood,
                              objective=settings.objective, iwae_k=settings.iwae_k,
                              n_classes=class_count(splits.y_train) if settings.conditional else 0)
            optimizer = run.optimizer(keras.optimizers.Adam(settings.lr))
            model.compile(optimizer=optimizer)
            optimizer.build(model.trainable_variables)
        run.start({"model": model, "optimizer": optimizer}, steps=optimizer.iterations,
                  parameters=model.count_params(), sampler_parameters=model.decoder.count_params(),
                  hparams=["test_nll", "test_elbo", "test_active_units"])
        # The checkpoint holds the old learning rate; the one asked for now wins, which
        # allows a manual step decay (resume with a lower --lr).
        optimizer.learning_rate.assign(settings.lr)
        if settings.resume:
            print(f"learning rate {settings.lr:g}", flush=True)
        if binarization(settings) == "none" and settings.likelihood == "bernoulli":
            print("note: --binarize none trains on grey levels; the ELBO and NLL below are "
                  "cross-entropies, not log-likelihoods", flush=True)
        quality = sample_quality(settings, model, run.logger)
        run.fit(model, train_data, steps_per_epoch, validation_data=test_data,
                callbacks=[TestSetEvaluation(settings, test_images, splits.y_test, run.logger),
                           *([quality] if quality else [])])
        # The final model first: a kill during the long NLL estimate must not lose it.
        save_model(model, run.run_dir / MODEL_FILE)
        write_figures(model, run.run_dir, test_images, splits.y_test, run.metrics["history"])
        final = {**final_metrics(settings, model, test_data, test_images, splits.y_test),
                 "classes": list(splits.classes)}
        if quality is not None:
            final["sample_quality"] = {**quality.evaluate(run.metrics["epochs"]), "samples": quality.n}
        metrics = run.finish(**final)
        run.logger.scalars({k: metrics[k] for k in ("test_nll", "test_elbo", "active_units")},
                           metrics["epochs"], "eval")
    if not settings.quiet:
        print(f"{run.run_dir}: test NLL {metrics['test_nll']:.2f} nats (k={settings.nll_k}), "
              f"({metrics['test_bits_per_dim']:.3f} bits/dim), "
              f"test ELBO {metrics['test_elbo']:.2f}, {metrics['active_units']} active units, "
              f"{metrics['train_seconds'] / 60:.1f} min of training"
              + ("" if metrics["likelihood"] else " (grey targets: not likelihoods)"), flush=True)
    return run.run_dir
