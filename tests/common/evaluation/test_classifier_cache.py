"""common.evaluation.classifier: a tiny classifier trained, cached, reloaded; bad caches give one-line errors.

The real MNIST classifier is never trained here (`python -m experiments.classifier` does that).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from common.data import Splits, load_splits
from common.errors import UserError
from common.evaluation.classifier import (
    CODE_VERSION,
    DigitCNN,
    FeatureClassifier,
    classifier_path,
    dataset_fingerprint,
    get_classifier,
    read_cache,
    save_classifier,
    train_classifier,
)
from experiments.classifier import main as classifier_main
from tests.helpers import assert_one_line_error


def toy_splits(n: int = 400, seed: int = 0) -> Splits:
    """Noise images with a bright 4×4 patch whose row of 2×5 positions is the class."""
    rng = np.random.default_rng(seed)

    def make(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 10, count).astype(np.int32)
        images = rng.uniform(0, 0.2, (count, 28, 28, 1)).astype(np.float32)
        for image, label in zip(images, labels):
            top, left = 4 + 12 * (label // 5), 2 + 5 * (label % 5)
            image[top:top + 6, left:left + 4] = 1.0
        return images, labels

    return Splits(*make(n), *make(50), *make(100))


@pytest.fixture(scope="module")
def toy() -> tuple[Splits, FeatureClassifier, float]:
    splits = toy_splits()
    result = train_classifier("mnist", splits, epochs=8, batch_size=32, learning_rate=1e-2,
                              width=4, feature_size=8, augment=False, verbose=0)
    return splits, result.classifier, result.test_accuracy


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.slow
def test_tiny_classifier_learns_the_toy_task_and_has_the_right_outputs(toy):
    splits, classifier, accuracy = toy
    assert accuracy > 0.8  # chance is 0.1
    features = classifier.features(splits.x_test[:7, ..., 0])  # (N, 28, 28) is accepted too
    probabilities = classifier.probabilities(splits.x_test[:7])
    assert features.shape == (7, 8) and (features >= 0).all()  # ReLU features
    assert probabilities.shape == (7, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    # Inference is deterministic (no dropout) and independent of the batch split.
    np.testing.assert_allclose(classifier.features(splits.x_test, batch_size=13),
                               classifier.features(splits.x_test, batch_size=100), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        classifier.features(np.zeros((2, 32, 32, 1)))


@pytest.mark.slow  # whole programs or real data: seconds each
def test_cache_round_trip_gives_the_same_outputs(toy, cache):
    splits, classifier, _ = toy
    path = save_classifier(classifier)
    fingerprint = dataset_fingerprint(splits)
    assert path == classifier_path("mnist", fingerprint)
    assert path.parent == cache and path.name.endswith(f"-v{CODE_VERSION}.keras")
    assert [p.name for p in cache.iterdir()] == [path.name]  # no temporary file left behind
    loaded = read_cache("mnist", fingerprint)
    assert isinstance(loaded.model, DigitCNN) and loaded.dataset == "mnist"
    np.testing.assert_allclose(loaded.features(splits.x_test), classifier.features(splits.x_test),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.probabilities(splits.x_test),
                               classifier.probabilities(splits.x_test), rtol=1e-5, atol=1e-6)


def test_fingerprint_changes_with_the_data():
    a, b = toy_splits(seed=0), toy_splits(seed=1)
    assert dataset_fingerprint(a) == dataset_fingerprint(toy_splits(seed=0))
    assert dataset_fingerprint(a) != dataset_fingerprint(b)


def test_missing_cache_says_how_to_build_it(cache):
    with pytest.raises(UserError, match="python -m experiments.classifier --dataset fashion_mnist"):
        read_cache("fashion_mnist", "0" * 64)


def test_corrupt_cache_is_a_user_error(cache):
    path = classifier_path("mnist", "ab" * 32)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a keras file")
    with pytest.raises(UserError, match="corrupt classifier cache") as error:
        read_cache("mnist", "ab" * 32)
    assert "\n" not in str(error.value)


@pytest.mark.slow  # trains the toy classifier
def test_cache_from_other_data_is_a_user_error(toy, cache):
    splits, classifier, _ = toy
    source = save_classifier(classifier)
    # Someone copies the file to the name of another dataset / another copy of the data.
    for dataset, fingerprint in (("fashion_mnist", dataset_fingerprint(splits)), ("mnist", "cd" * 32)):
        target = classifier_path(dataset, fingerprint)
        shutil.copy(source, target)
        with pytest.raises(UserError, match="other data"):
            read_cache(dataset, fingerprint)


@pytest.mark.slow  # whole programs or real data: seconds each
def test_get_classifier_without_a_cache_errs_skips_or_names_the_command(data_dir, cache, capsys):
    with pytest.raises(UserError, match="python -m experiments.classifier --dataset mnist"):
        get_classifier("mnist", data_dir, if_missing="error")
    assert get_classifier("mnist", data_dir, if_missing="skip") is None
    assert "python -m experiments.classifier --dataset mnist`" in capsys.readouterr().out
    assert not cache.exists()  # neither trained one
    with pytest.raises(UserError, match="unknown dataset"):
        get_classifier("svhn", data_dir, if_missing="error")


@pytest.mark.slow
def test_classifier_cli_rejects_bad_input(cli, cache):
    result = cli("experiments.classifier", "--epochs", "0", env={"CLASSIFIER_CACHE": str(cache)})
    assert_one_line_error(result, "--epochs")
    for args, fragment in ((["--dataset", "svhn"], "--dataset"),
                           (["--learning-rate", "nan"], "--learning-rate"),
                           (["--data-dir", "/nonexistent/folder"], "/nonexistent/folder")):
        with pytest.raises(UserError, match=fragment):
            classifier_main(args)
    assert not cache.exists()


@pytest.mark.slow  # whole programs or real data: seconds each
def test_classifier_cli_refuses_to_replace_a_cached_classifier(data_dir, cache):
    # The real fingerprint's file exists (here: junk); without --overwrite nothing is trained.
    path = classifier_path("mnist", dataset_fingerprint(load_splits("mnist", data_dir)))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"junk")
    with pytest.raises(UserError, match="--overwrite"):
        classifier_main(["--data-dir", data_dir])
    assert path.read_bytes() == b"junk"
