"""The comparison table's rows: what every row is scored against, the two per-pixel
baselines, a run's own numbers, and a row's per-seed numbers summarised.

The scores themselves come from `common.evaluation.scoring.score`, the one scoring path;
`summarize_row` turns a row's per-seed numbers into mean ± std and bootstrap intervals.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.data import Splits
from common.evaluation.classifier import FeatureClassifier
from common.evaluation.scoring import References, reference_set
from experiments.stats import summarize

# The per-seed numbers that get a mean, std and interval (when every seed has one).
SUMMARISED = ("fid", "kid", "classifier_score", "classes_covered", "class_kl_to_uniform", "precision",
              "recall", "density", "coverage", "parzen_log_likelihood", "fid_infinity", "test_nll",
              "test_bits_per_dim", "train_seconds", "epochs", "sample_seconds_per_1000")


def comparison_references(splits: Splits, classifier: FeatureClassifier, parzen_validation: int,
                          parzen_test: int, rng: np.random.Generator, **scoring: Any) -> References:
    """What every row is scored against: the test set's features, the Parzen images (a random
    validation subset, the first test images); `scoring`: the KID and FID-count fields."""
    validation = splits.x_validation[rng.permutation(len(splits.x_validation))[:parzen_validation]]
    return reference_set(classifier.features(splits.x_test), classifier, validation=validation,
                         test=splits.x_test[:parzen_test], **scoring)


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
    """A model row's numbers from its run's schema-2 metrics (see experiments.finished_runs) and settings.

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
