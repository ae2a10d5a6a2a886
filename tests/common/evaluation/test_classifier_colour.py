"""The feature classifier on any labelled dataset (a small ResNet for colour), and
InceptionV3 pool features: shapes, cache round trip, unlabelled data and missing weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from common.data import Splits, load_splits
from common.errors import UserError
from common.evaluation import inception
from common.evaluation.classifier import (
    SmallResNet,
    classifier_path,
    dataset_fingerprint,
    read_cache,
    save_classifier,
    train_classifier,
)
from tests.helpers import assert_one_line_error


def tiny_shapes(size: int = 8) -> Splits:
    splits = load_splits("shapes", image_size=size)
    return Splits(splits.x_train[:64], splits.y_train[:64], splits.x_validation[:8],
                  splits.y_validation[:8], splits.x_test[:16], splits.y_test[:16], splits.classes)


@pytest.mark.slow
def test_colour_classifier_is_a_resnet_with_one_logit_per_class(tmp_path, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_CACHE", str(tmp_path))
    splits = tiny_shapes()
    result = train_classifier("shapes", splits, epochs=1, batch_size=32, width=4, feature_size=6,
                              augment=True, verbose=0, image_options={"image_size": 8})
    classifier = result.classifier
    assert isinstance(classifier.model, SmallResNet) and classifier.image_shape == (8, 8, 3)
    probabilities = classifier.probabilities(splits.x_test)
    assert probabilities.shape == (16, 3)  # square, circle, triangle
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert classifier.features(splits.x_test).shape == (16, 6)
    with pytest.raises(ValueError, match="8, 8, 3"):
        classifier.features(np.zeros((2, 8, 8, 1), np.float32))
    path = save_classifier(classifier)
    loaded = read_cache("shapes", dataset_fingerprint(splits))
    assert loaded.image_options == {"image_size": 8} and isinstance(loaded.model, SmallResNet)
    np.testing.assert_allclose(loaded.features(splits.x_test), classifier.features(splits.x_test),
                               rtol=1e-5, atol=1e-6)
    assert path.name.startswith("shapes-")


def test_cache_names_of_folders_have_no_separators(tmp_path, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_CACHE", str(tmp_path))
    path = classifier_path("folder:/data/my photos/", "ab" * 32)
    assert path.parent == tmp_path and path.name.startswith("folder-my-photos-")


def test_unlabelled_data_get_a_message_naming_inception():
    splits = tiny_shapes()
    unlabelled = Splits(splits.x_train, -np.ones_like(splits.y_train), splits.x_validation,
                        splits.y_validation, splits.x_test, -np.ones_like(splits.y_test))
    with pytest.raises(UserError, match="--features inception"):
        train_classifier("folder:x", unlabelled, epochs=1, verbose=0)


@pytest.mark.slow
def test_inception_features_of_any_size_grey_or_colour():
    # Untrained weights on the smallest input InceptionV3 takes: the graph, not the numbers.
    features = inception.InceptionFeatures(inception.inception_network("random", size=75))
    rng = np.random.default_rng(0)
    grey = features.features(rng.uniform(size=(3, 8, 8)).astype(np.float32), batch_size=2)
    colour = features.features(rng.uniform(size=(2, 12, 12, 3)).astype(np.float32))
    assert grey.shape == (3, inception.FEATURES) and colour.shape == (2, inception.FEATURES)
    assert np.isfinite(grey).all() and (grey >= 0).all()  # average-pooled ReLU maps


def test_missing_inception_weights_are_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("INCEPTION_WEIGHTS", str(tmp_path / "nowhere.h5"))
    with pytest.raises(UserError, match="INCEPTION_WEIGHTS=.*no such file"):
        inception.inception_network()
    monkeypatch.delenv("INCEPTION_WEIGHTS")

    def offline(**kwargs):
        raise OSError("URL fetch failure: no internet\nsecond line")

    monkeypatch.setattr(keras.applications, "InceptionV3", offline)
    with pytest.raises(UserError, match="no InceptionV3 weights .URL fetch failure") as error:
        inception.inception_network()
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_score_with_inception_and_no_weights_is_one_line(cli, tmp_path):
    images = np.zeros((8, 8, 8, 3), np.uint8)
    np.savez(tmp_path / "s.npz", images=images)
    result = cli("experiments.score", "--samples", str(tmp_path / "s.npz"), "--reference",
                 str(tmp_path / "s.npz"), "--features", "inception", "--kid-subset-size", "2",
                 env={"INCEPTION_WEIGHTS": str(tmp_path / "missing.h5")})
    assert_one_line_error(result, "INCEPTION_WEIGHTS")
