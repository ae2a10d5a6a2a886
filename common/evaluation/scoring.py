"""Scoring samples: the one function every sample metric of the project comes from.

`References` holds what samples are scored against: the real images' features under one
feature network (the project classifier, or InceptionV3 for `experiments.score
--features inception`), their k-NN radii, the KID subset settings and, for the
comparison, the Parzen images and the sample counts of the FID-by-count curve.
`feature_scores` turns sample features into every metric; `score` does the same from
images through the references' classifier. Training-time evaluation
(`common.evaluation.quality.SampleQuality`, hence `gan.sample --score`), the comparison
(`experiments.compare`), the score CLI (`experiments.score`), `experiments.vae_prior` and
the diffusion step benchmark all go through it, so a number means the same wherever it is
printed. The classifier's numbers are comparable across this project's runs, not with
Inception FID.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.evaluation.classifier import FeatureClassifier
from common.evaluation.metrics import (
    choose_parzen_sigma,
    class_histogram,
    classification_accuracy_score,
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

PRECISION_K = 3  # Kynkäänniemi et al. 2019
DENSITY_K = 5    # Naeem et al. 2020
KID_SEED = 0     # the same subsets of the reference features for every set scored
LEAST_SAMPLES = DENSITY_K + 1  # the k-NN metrics need k other samples


@dataclass
class References:
    """What samples are scored against; build it with `reference_set` (which computes the radii)."""

    features: np.ndarray        # features of the real images (FID, KID, precision/recall …)
    classifier: FeatureClassifier | None = None  # gives sample features and class probabilities
    kid_subset_size: int = 1000  # shrunk to the number of samples when they are fewer
    kid_subsets: int = 100
    validation: np.ndarray | None = None  # images that choose the Parzen σ (comparison only)
    test: np.ndarray | None = None        # images the Parzen log-likelihood is taken on
    fid_counts: list[int] = field(default_factory=list)  # FID also on the first N samples
    radii: dict[int, np.ndarray] = field(default_factory=dict)  # {k: k-NN radii of `features`}


def reference_set(features: np.ndarray, classifier: FeatureClassifier | None = None,
                  **fields: Any) -> References:
    """`References` of real-image `features` with their k-NN radii (computed once here, not
    once per scored set); `fields`: the other fields of `References`."""
    radii = {k: knn_radii(features, k) for k in (PRECISION_K, DENSITY_K)}
    return References(features, classifier, **fields, radii=radii)


def feature_scores(features: np.ndarray, probabilities: np.ndarray | None, references: References,
                   labels: np.ndarray | None = None) -> dict[str, Any]:
    """FID, KID (mean and std over subsets), precision/recall (k = 3) and density/coverage
    (k = 5) of samples whose `features` are given; with class `probabilities` (a
    classifier's, not Inception's) also the classifier score and the class histogram, and
    with the `labels` the samples were drawn for, the classification accuracy score."""
    if len(features) < LEAST_SAMPLES:
        raise ValueError(f"{len(features)} samples; the k-NN metrics need at least {LEAST_SAMPLES}")
    real, radii = references.features, references.radii
    precision, recall = precision_recall(real, features, k=PRECISION_K, real_radii=radii.get(PRECISION_K))
    density, coverage = density_coverage(real, features, k=DENSITY_K, real_radii=radii.get(DENSITY_K))
    subset = min(references.kid_subset_size, len(features), len(real))
    kid_mean, kid_std = kid(features, real, subset, references.kid_subsets, KID_SEED)
    scores = {"fid": fid(features, real), "kid": kid_mean, "kid_std": kid_std,
              "precision": precision, "recall": recall, "density": density, "coverage": coverage}
    if probabilities is None:
        return scores
    histogram = class_histogram(probabilities, probabilities.shape[1])
    scores.update(classifier_score=classifier_score(probabilities), classes_covered=histogram.classes_covered,
                  class_kl_to_uniform=histogram.kl_to_uniform, class_counts=histogram.counts.tolist())
    if labels is not None:
        scores["classification_accuracy_score"] = classification_accuracy_score(probabilities, labels)
    return scores


def score(images: np.ndarray, references: References, labels: np.ndarray | None = None) -> dict[str, Any]:
    """Every metric of `images` (n, H, W, C) in [0, 1] through the references' classifier;
    the FID-by-count curve and the Parzen log-likelihood too when the references hold them."""
    classifier = references.classifier
    features = classifier.features(images)
    scores = feature_scores(features, classifier.probabilities(images), references, labels)
    if references.fid_counts:
        counts = [count for count in references.fid_counts if count <= len(images)]
        by_count = fid_by_sample_count(features, references.features, counts)
        scores["fid_by_samples"] = {str(count): value for count, value in by_count.items()}
        scores["fid_infinity"] = fid_infinity(counts, list(by_count.values()))[0] if len(counts) > 1 else None
    if references.test is not None:
        sigma = choose_parzen_sigma(images, references.validation)
        parzen, parzen_error = parzen_log_likelihood(images, references.test, sigma)
        scores.update(parzen_sigma=sigma, parzen_log_likelihood=parzen, parzen_standard_error=parzen_error)
    return scores
