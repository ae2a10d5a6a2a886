"""Sample quality during training: a Keras callback that scores the model's samples.

Every `every` epochs it draws `n` samples and logs to TensorBoard (eval split) the FID
against held-out real images, the classifier score and the class coverage, all measured
with the project's feature classifier (`common.classifier`). These FIDs are comparable
across this project's runs, not with Inception FID.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from common.classifier import FeatureClassifier, classifier_for_training
from common.data import load_splits
from common.metrics import (
    class_histogram,
    classification_accuracy_score,
    classifier_score,
    frechet_distance,
    gaussian_fit,
)
from common.tensorboard import TensorBoardLogger


class SampleQuality(keras.callbacks.Callback):
    """Log FID, classifier score and class coverage of `sample(n)` every `every` epochs.

    `sample(n)` returns n images (N, 28, 28[, 1]) in [0, 1]. `reference_images` default to
    the test split of the classifier's dataset; their features are computed once. The
    latest values are kept in `self.latest` (and all of them in `self.history`) for the
    run's metrics.json; at the end of an epoch they are also added to Keras' epoch logs as
    `sample_<name>`, so the run's history records them. `prefix` goes before every name
    (`ema_`: a second instance scores a GAN's EMA generator). With `labels(n)`, the classes
    `sample(n)` was asked for, it also logs the `classification_accuracy_score`.
    """

    def __init__(self, sample: Callable[[int], np.ndarray], classifier: FeatureClassifier,
                 logger: TensorBoardLogger, every: int, n: int = 2000,
                 reference_images: np.ndarray | None = None, prefix: str = "",
                 labels: Callable[[int], np.ndarray] | None = None):
        super().__init__()
        if every < 1 or n < 2:
            raise ValueError(f"need every >= 1 and n >= 2, got every={every}, n={n}")
        self.sample, self.classifier, self.logger = sample, classifier, logger
        self.every, self.n = every, n
        self.reference_images = reference_images
        self.prefix, self.labels = prefix, labels
        self._reference_fit: tuple[np.ndarray, np.ndarray] | None = None
        self.latest: dict[str, float] = {}
        self.history: list[dict[str, float]] = []

    def reference_fit(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of the reference images' features (computed on first use)."""
        if self._reference_fit is None:
            images = self.reference_images
            if images is None:
                images = load_splits(self.classifier.dataset, self.classifier.data_dir,
                                     **self.classifier.image_options).x_test
            self._reference_fit = gaussian_fit(self.classifier.features(images))
        return self._reference_fit

    def evaluate(self, step: int) -> dict[str, float]:
        """Score n fresh samples and log them at `step`."""
        images = np.asarray(self.sample(self.n), np.float32)
        features = self.classifier.features(images)
        probabilities = self.classifier.probabilities(images)
        histogram = class_histogram(probabilities, probabilities.shape[1])
        values = {"fid": frechet_distance(*gaussian_fit(features), *self.reference_fit()),
                  "classifier_score": classifier_score(probabilities),
                  "classes_covered": float(histogram.classes_covered),
                  "class_kl_to_uniform": histogram.kl_to_uniform}
        if self.labels is not None:
            values["classification_accuracy_score"] = classification_accuracy_score(
                probabilities, self.labels(self.n))
        values = {self.prefix + name: value for name, value in values.items()}
        self.logger.scalars(values, step, split="eval")
        self.logger.histogram(f"{self.prefix}sample_classes", probabilities.argmax(axis=1), step,
                              split="eval")
        self.logger.flush()
        self.latest = values
        self.history.append({"epoch": step, **values})
        return values

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if (epoch + 1) % self.every == 0 and not getattr(self.model, "diverged", False):
            values = self.evaluate(epoch + 1)
            if logs is not None:  # into the epoch logs, so the run's history keeps them
                logs.update({f"sample_{name}": value for name, value in values.items()})


def sample_quality_callback(settings: Any, draw: Callable[[int], np.ndarray], labels: Callable | None,
                            logger: TensorBoardLogger) -> SampleQuality | None:
    """A trainer's `SampleQuality` from its settings (`eval`, `eval_every`, `eval_samples` and
    the image data settings), or None (with a notice) when off or no classifier is cached."""
    classifier = classifier_for_training(settings.dataset, settings.data_dir, settings.eval,
                                         settings.image_size, settings.channels)
    if classifier is None:
        return None
    return SampleQuality(draw, classifier, logger, every=settings.eval_every, n=settings.eval_samples,
                         labels=labels)
