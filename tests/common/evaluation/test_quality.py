"""common.evaluation.quality.SampleQuality: when it runs, what it logs, and that its numbers add up."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from common.evaluation.classifier import DigitCNN, FeatureClassifier
from common.evaluation.metrics import fid
from common.evaluation.quality import SampleQuality
from common.tensorboard import TensorBoardLogger


class RecordingLogger:
    def __init__(self):
        self.scalar_calls, self.histogram_calls = [], []

    def scalars(self, values, step, split="train"):
        self.scalar_calls.append((dict(values), step, split))

    def histogram(self, name, values, step, split="train"):
        self.histogram_calls.append((name, np.asarray(values), step, split))

    def flush(self):
        pass


@pytest.fixture(scope="module")
def classifier() -> FeatureClassifier:
    keras.utils.set_random_seed(0)
    model = DigitCNN("mnist", "0" * 64, width=4, feature_size=8)
    model.build((None, 28, 28, 1))
    return FeatureClassifier(model)  # untrained: enough to check the plumbing


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(200, 28, 28, 1)).astype(np.float32)


def test_logs_every_nth_epoch_to_the_eval_split(classifier, reference):
    logger = RecordingLogger()
    rng = np.random.default_rng(1)
    calls = []

    def sample(n):
        calls.append(n)
        return rng.uniform(size=(n, 28, 28)).astype(np.float32)

    callback = SampleQuality(sample, classifier, logger, every=2, n=64, reference_images=reference)
    for epoch in range(5):
        callback.on_epoch_end(epoch, {})
    assert calls == [64, 64]
    assert [(step, split) for _, step, split in logger.scalar_calls] == [(2, "eval"), (4, "eval")]
    values = logger.scalar_calls[-1][0]
    assert set(values) == {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage",
                           "classifier_score", "classes_covered", "class_kl_to_uniform"}
    assert all(np.isfinite(v) for v in values.values())
    assert 1.0 <= values["classifier_score"] <= 10.0 and 1 <= values["classes_covered"] <= 10
    name, labels, step, split = logger.histogram_calls[-1]
    assert (name, step, split, labels.shape) == ("sample_classes", 4, "eval", (64,))
    assert callback.latest == values and [h["epoch"] for h in callback.history] == [2, 4]


def test_fid_matches_the_metric_and_is_zero_for_the_reference_itself(classifier, reference):
    logger = RecordingLogger()
    callback = SampleQuality(lambda n: reference[:n], classifier, logger, every=1, n=200,
                             reference_images=reference)
    assert callback.evaluate(1)["fid"] == pytest.approx(0.0, abs=1e-6)
    other = np.clip(reference * 0.5, 0, 1)
    callback.sample = lambda n: other[:n]
    expected = fid(classifier.features(other), classifier.features(reference))
    assert callback.evaluate(2)["fid"] == pytest.approx(expected, rel=1e-6)


def test_runs_inside_fit_and_writes_tensorboard_events(classifier, reference, tmp_path):
    logger = TensorBoardLogger(tmp_path)
    callback = SampleQuality(lambda n: reference[:n], classifier, logger, every=1, n=50,
                             reference_images=reference)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(np.zeros((4, 1)), np.zeros((4, 1)), epochs=2, verbose=0, callbacks=[callback])
    logger.close()
    assert [h["epoch"] for h in callback.history] == [1, 2]
    assert list((tmp_path / "tensorboard" / "eval").glob("events.out.tfevents.*"))


def test_rejects_bad_arguments(classifier):
    with pytest.raises(ValueError):
        SampleQuality(lambda n: None, classifier, RecordingLogger(), every=0)


def test_an_instance_given_references_from_another_reuses_them(classifier, reference, monkeypatch):
    """The GAN's EMA scorer takes the plain scorer's references: the reference images'
    features are computed once, and both score against the same set."""
    featured = []
    features = classifier.features
    monkeypatch.setattr(classifier, "features", lambda images: featured.append(len(images)) or features(images))
    first = SampleQuality(lambda n: reference[:n], classifier, RecordingLogger(), every=1, n=50,
                          reference_images=reference)
    second = SampleQuality(lambda n: reference[:n], classifier, RecordingLogger(), every=1, n=50,
                           reference_images=reference, prefix="ema_", references_from=first)
    assert second.evaluate(1)["ema_fid"] == pytest.approx(first.evaluate(1)["fid"])
    assert second.references() is first.references() and featured.count(len(reference)) == 1
