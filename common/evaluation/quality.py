"""Sample quality during training: a Keras callback that scores the model's samples.

Every `every` epochs it draws `n` samples and logs to TensorBoard (eval split) their
scores against held-out real images (FID, KID, precision/recall, density/coverage, the
classifier score and class coverage), from the one scoring path
(`common.evaluation.scoring.score`) with the project's feature classifier. These FIDs are
comparable across this project's runs, not with Inception FID.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from common.data import load_splits
from common.evaluation.classifier import FeatureClassifier, get_classifier
from common.evaluation.scoring import LEAST_SAMPLES, References, reference_set, score
from common.tensorboard import TensorBoardLogger


class SampleQuality(keras.callbacks.Callback):
    """Log the scores of `sample(n)` every `every` epochs.

    `sample(n)` returns n images (N, H, W[, C]) in [0, 1]. `reference_images` default to
    the test split of the classifier's dataset; their features are computed once. The
    latest values are kept in `self.latest` (and all of them in `self.history`) for the
    run's metrics.json; at the end of an epoch they are also added to Keras' epoch logs as
    `sample_<name>`, so the run's history records them. `prefix` goes before every name
    (`ema_`: a second instance scores a GAN's EMA generator). With `labels(n)`, the classes
    `sample(n)` was asked for, it also logs the `classification_accuracy_score`. Given
    `references_from`, another instance scoring against the same images, it uses that one's
    references, so they are computed once.
    """

    def __init__(self, sample: Callable[[int], np.ndarray], classifier: FeatureClassifier,
                 logger: TensorBoardLogger, every: int, n: int = 2000,
                 reference_images: np.ndarray | None = None, prefix: str = "",
                 labels: Callable[[int], np.ndarray] | None = None,
                 references_from: SampleQuality | None = None):
        super().__init__()
        if every < 1 or n < LEAST_SAMPLES:
            raise ValueError(f"need every >= 1 and n >= {LEAST_SAMPLES}, got every={every}, n={n}")
        self.sample, self.classifier, self.logger = sample, classifier, logger
        self.every, self.n = every, n
        self.reference_images = reference_images
        self.prefix, self.labels = prefix, labels
        self._references: References | None = None
        self.references_from = references_from
        self.latest: dict[str, float] = {}
        self.history: list[dict[str, float]] = []

    def references(self) -> References:
        """What the samples are scored against (computed on first use)."""
        if self.references_from is not None:
            return self.references_from.references()
        if self._references is None:
            images = self.reference_images
            if images is None:
                images = load_splits(self.classifier.dataset, self.classifier.data_dir,
                                     **self.classifier.image_options).x_test
            self._references = reference_set(self.classifier.features(images), self.classifier)
        return self._references

    def evaluate(self, step: int) -> dict[str, float]:
        """Score n fresh samples and log them at `step`."""
        images = np.asarray(self.sample(self.n), np.float32)
        scores = score(images, self.references(), None if self.labels is None else self.labels(self.n))
        counts = scores.pop("class_counts")
        values = {self.prefix + name: float(value) for name, value in scores.items()}
        self.logger.scalars(values, step, split="eval")
        self.logger.histogram(f"{self.prefix}sample_classes", np.repeat(np.arange(len(counts)), counts), step,
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


def training_classifier(settings: Any) -> FeatureClassifier | None:
    """The classifier that scores a trainer's samples (its `eval` and image data settings),
    or None when `--no-eval` or when none is cached (with a notice saying how to build it)."""
    if not settings.eval:
        return None
    return get_classifier(settings.dataset, settings.data_dir, settings.image_size, settings.channels,
                          if_missing="skip")


def sample_quality_callback(settings: Any, draw: Callable[[int], np.ndarray], labels: Callable | None,
                            logger: TensorBoardLogger) -> SampleQuality | None:
    """A trainer's `SampleQuality` from its settings (`eval`, `eval_every`, `eval_samples` and
    the image data settings), or None (with a notice) when off or no classifier is cached."""
    classifier = training_classifier(settings)
    if classifier is None:
        return None
    return SampleQuality(draw, classifier, logger, every=settings.eval_every, n=settings.eval_samples,
                         labels=labels)
