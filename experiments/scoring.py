"""Scoring one row of the comparison table: a set of images against the real test images.

`References` bundles what every row is scored against (the classifier, the test
images' features, the Parzen validation and test images); `score` gives one row's
numbers; `baselines` are two samplers that know only per-pixel training statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from common.classifier import N_CLASSES, FeatureClassifier
from common.data import Splits
from common.metrics import (
    choose_parzen_sigma,
    class_histogram,
    classifier_score,
    fid,
    parzen_log_likelihood,
    precision_recall,
)


@dataclass
class References:
    """What every row is scored against, computed once per comparison."""

    classifier: FeatureClassifier
    features: np.ndarray        # classifier features of the test images (FID, precision/recall)
    validation: np.ndarray      # validation images for choosing the Parzen σ
    test: np.ndarray            # test images for the Parzen log-likelihood


def references(splits: Splits, classifier: FeatureClassifier, parzen_validation: int,
               parzen_test: int, rng: np.random.Generator) -> References:
    """The test set's features and the Parzen images (a random validation subset, the first test images)."""
    validation = splits.x_validation[rng.permutation(len(splits.x_validation))[:parzen_validation]]
    return References(classifier, classifier.features(splits.x_test), validation,
                      splits.x_test[:parzen_test])


def baselines(splits: Splits, n: int, seed: int) -> dict[str, np.ndarray]:
    """Samples (n, H, W, C) of two models that know only per-pixel statistics of the training set."""
    rng = np.random.default_rng(seed)
    train = splits.x_train
    mean, std = train.mean(axis=0), train.std(axis=0)
    shape = (n, *train.shape[1:])
    return {
        "Gaussian noise (per-pixel mean/std, clipped)":
            np.clip(mean + std * rng.standard_normal(shape), 0.0, 1.0).astype(np.float32),
        "Bernoulli (per-pixel training mean)": (rng.uniform(size=shape) < mean).astype(np.float32),
    }


def score(images: np.ndarray, references: References) -> dict[str, Any]:
    """Every sample metric for one row of the table, for images (n, H, W, C) in [0, 1]."""
    classifier = references.classifier
    features = classifier.features(images)
    probabilities = classifier.probabilities(images)
    histogram = class_histogram(probabilities, N_CLASSES)
    precision, recall = precision_recall(references.features, features, k=3)
    sigma = choose_parzen_sigma(images, references.validation)
    parzen, parzen_error = parzen_log_likelihood(images, references.test, sigma)
    return {"fid": fid(features, references.features),
            "classifier_score": classifier_score(probabilities),
            "classes_covered": histogram.classes_covered, "class_kl_to_uniform": histogram.kl_to_uniform,
            "class_counts": histogram.counts.tolist(), "precision": precision, "recall": recall,
            "parzen_sigma": sigma, "parzen_log_likelihood": parzen,
            "parzen_standard_error": parzen_error}


def run_numbers(family: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """A model row's numbers from its run's schema-2 metrics (see experiments.runs).

    The row keeps the comparison's own names: `epochs` ← `epochs_trained`,
    `generator_parameters` ← `sampler_parameters`, `total_parameters` ← `parameters`; the
    test NLL and its standard error and k are None for a family that has none.
    """
    return {"model": family, "epochs": metrics["epochs_trained"],
            "train_seconds": metrics["train_seconds"],
            "generator_parameters": metrics["sampler_parameters"],
            "total_parameters": metrics["parameters"], "test_nll": metrics.get("test_nll"),
            "test_nll_standard_error": metrics.get("test_nll_standard_error"),
            "nll_k": metrics.get("nll_k")}
