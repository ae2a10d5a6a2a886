"""Shared fixtures: the offline assets (skipped with a reason when unset), an empty and a
tiny classifier cache, the per-test seed and a CLI runner (the helpers are in tests/helpers.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import run_module, tiny_trainer


@pytest.fixture(autouse=True, scope="session")
def empty_classifier_cache(tmp_path_factory):
    """The suite never reads the user's cached classifiers (~/.cache/…): every test starts
    from an empty cache, and a test that needs a classifier makes one (`tiny_classifier_cache`)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLASSIFIER_CACHE", str(tmp_path_factory.mktemp("no_classifiers")))
        yield


@pytest.fixture(autouse=True)
def seeded_random_state():
    """Each test starts from the same Python, NumPy, TensorFlow and Keras seed, so a test's
    outcome does not depend on which tests its pytest-xdist worker ran before it."""
    import keras

    keras.utils.set_random_seed(0)


@pytest.fixture(scope="session")
def vgg19_weights() -> str:
    path = os.environ.get("VGG19_WEIGHTS")
    if not path or not Path(path).is_file():
        pytest.skip("VGG19_WEIGHTS is unset or missing: point it at vgg19_notop_q8.weights.h5")
    return path


@pytest.fixture(scope="session")
def data_dir() -> str:
    path = os.environ.get("DATA_DIR")
    if not path or not (Path(path) / "mnist.npz").is_file():
        pytest.skip("DATA_DIR is unset or holds no mnist.npz: point it at ../shared/assets")
    return path


@pytest.fixture(scope="session")
def asset_images(data_dir: str) -> Path:
    """The classic NST photos and paintings in $DATA_DIR/images."""
    path = Path(data_dir) / "images"
    if not (path / "tubingen.jpg").is_file():
        pytest.skip("$DATA_DIR/images/tubingen.jpg is missing")
    return path


@pytest.fixture
def cli():
    """`cli("nst.run", "--size", "64")` → CompletedProcess with stdout/stderr/returncode."""
    return run_module


@pytest.fixture(scope="session")
def tiny_classifier_cache(data_dir, tmp_path_factory) -> dict[str, str]:
    """{"CLASSIFIER_CACHE", "DATA_DIR"}: a temporary cache holding a tiny MNIST classifier."""
    from common.data import load_splits
    from common.evaluation.classifier import save_classifier

    folder = tmp_path_factory.mktemp("classifier_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLASSIFIER_CACHE", str(folder))
        save_classifier(tiny_trainer()("mnist", load_splits("mnist", data_dir)).classifier)
    return {"CLASSIFIER_CACHE": str(folder), "DATA_DIR": data_dir}
