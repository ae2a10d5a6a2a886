"""Scoring one row of the comparison table: a set of images against the real test images.

`References` bundles what every row is scored against (the classifier, the test
images' features, the Parzen validation and test images, the KID and FID-count
settings); `score` gives one row's numbers for one seed, `feature_scores` the part that
needs only classifier outputs (shared with `experiments.score`); `summarize_row` turns a
row's per-seed numbers into mean ± std and bootstrap intervals; `baselines` are two
samplers that know only per-pixel training statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.classifier import FeatureClassifier
from common.data import Splits
from common.metrics import (
    choose_parzen_sigma,
    class_histogram,
    classifier_score,
    density_coverage,
    fid,
    fid_by_sample_count,
    fid_infinity,
    kid,
    knn_radii,
    parzen_log_likelihood,
    precision_recall,
)
from experiments.stats import summarize

PRECISION_K = 3  # Kynkäänniemi et al. 2019
DENSITY_K = 5    # Naeem et al. 2020
KID_SEED = 0     # the same subsets of the reference features for every row
# The per-seed numbers that get a mean, std and interval (when every seed has one).
SUMMARISED = ("fid", "kid", "classifier_score", "classes_covered", "class_kl_to_uniform", "precision",
              "recall", "density", "coverage", "parzen_log_likelihood", "fid_infinity", "test_nll",
              "test_bits_per_dim", "train_seconds", "epochs")


@dataclass
class References:
    """What every row is scored against, computed once per comparison."""

    classifier: FeatureClassifier
    features: np.ndarray        # classifier features of the test images (FID, precision/recall)
    validation: np.ndarray      # validation images for choosing the Parzen σ
    test: np.ndarray            # test images for the Parzen log-likelihood
    kid_subset_size: int = 1000
    kid_subsets: int = 100
    fid_counts: list[int] = field(default_factory=list)  # FID also on the first N samples
    radii: dict[int, np.ndarray] = field(default_factory=dict)  # {k: k-NN radii of `features`}


def references(splits: Splits, classifier: FeatureClassifier, parzen_validation: int,
               parzen_test: int, rng: np.random.Generator, **scoring: Any) -> References:
    """The test set's features and the Parzen images (a random validation subset, the first
    test images); `scoring`: the KID and FID-count fields of `References`."""
    validation = splits.x_validation[rng.permutation(len(splits.x_validation))[:parzen_validation]]
    features = classifier.features(splits.x_test)
    radii = {k: knn_radii(features, k) for k in (PRECISION_K, DENSITY_K)}  # once, not once per row
    return References(classifier, features, validation, splits.x_test[:parzen_test], **scoring,
                      radii=radii)


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


def feature_scores(features: np.ndarray, probabilities: np.ndarray | None,
                   reference_features: np.ndarray, kid_subset_size: int, kid_subsets: int,
                   reference_radii: dict[int, np.ndarray] | None = None) -> dict[str, Any]:
    """FID, KID (mean and std over subsets), precision/recall (k = 3), density/coverage
    (k = 5), and, when class `probabilities` are given (a classifier's, not Inception
    features), the classifier score and the class histogram, of samples whose `features`
    are given, against `reference_features` (whose k-NN radii `reference_radii`, {k: radii},
    are computed here when not given)."""
    radii = reference_radii or {}
    precision, recall = precision_recall(reference_features, features, k=PRECISION_K,
                                         real_radii=radii.get(PRECISION_K))
    density, coverage = density_coverage(reference_features, features, k=DENSITY_K,
                                         real_radii=radii.get(DENSITY_K))
    kid_mean, kid_std = kid(features, reference_features, kid_subset_size, kid_subsets, KID_SEED)
    scores = {"fid": fid(features, reference_features), "kid": kid_mean, "kid_std": kid_std,
              "precision": precision, "recall": recall, "density": density, "coverage": coverage}
    if probabilities is None:
        return scores
    histogram = class_histogram(probabilities, probabilities.shape[1])
    return {**scores, "classifier_score": classifier_score(probabilities),
            "classes_covered": histogram.classes_covered,
            "class_kl_to_uniform": histogram.kl_to_uniform, "class_counts": histogram.counts.tolist()}


def score(images: np.ndarray, references: References) -> dict[str, Any]:
    """Every sample metric for one row of the table and one seed, for images (n, H, W, C) in [0, 1]."""
    classifier = references.classifier
    features = classifier.features(images)
    row = feature_scores(features, classifier.probabilities(images), references.features,
                         references.kid_subset_size, references.kid_subsets, references.radii)
    counts = [count for count in references.fid_counts if count <= len(images)]
    by_count = fid_by_sample_count(features, references.features, counts)
    sigma = choose_parzen_sigma(images, references.validation)
    parzen, parzen_error = parzen_log_likelihood(images, references.test, sigma)
    return {**row, "fid_by_samples": {str(count): value for count, value in by_count.items()},
            "fid_infinity": fid_infinity(counts, list(by_count.values()))[0] if len(counts) > 1 else None,
            "parzen_sigma": sigma, "parzen_log_likelihood": parzen, "parzen_standard_error": parzen_error}


def summarize_row(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """{metric: `experiments.stats.summarize` of its per-seed values} for the `SUMMARISED`
    metrics every seed has, and "fid_by_samples": {count: the same} for the FID counts."""
    summary: dict[str, Any] = {}
    for key in SUMMARISED:
        values = [row.get(key) for row in per_seed]
        if all(value is not None for value in values):
            summary[key] = summarize(values)
    counts = per_seed[0].get("fid_by_samples", {})
    summary["fid_by_samples"] = {count: summarize([row["fid_by_samples"][count] for row in per_seed])
                                 for count in counts}
    return summary


def run_numbers(family: str, metrics: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """A model row's numbers from its run's schema-2 metrics (see experiments.runs) and settings.

    The row keeps the comparison's own names: `epochs` ← `epochs_trained`,
    `generator_parameters` ← `sampler_parameters`, `total_parameters` ← `parameters`; the
    test NLL and its standard error and k are None for a family that has none. Bits per
    dimension are kept only for runs on 8-bit values (no `--binarize`): those of binarized
    digits measure another distribution.
    """
    eight_bit = settings.get("binarize", "none") == "none"
    return {"model": family, "epochs": metrics["epochs_trained"],
            "train_seconds": metrics["train_seconds"],
            "generator_parameters": metrics["sampler_parameters"],
            "total_parameters": metrics["parameters"], "test_nll": metrics.get("test_nll"),
            "test_nll_standard_error": metrics.get("test_nll_standard_error"),
            "test_bits_per_dim": metrics.get("test_bits_per_dim") if eight_bit else None,
            "nll_k": metrics.get("nll_k")}
