"""Shared fixtures: the offline assets (skipped with a reason when unset), a tiny cached
classifier, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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


def run_module(module: str, *args: str, env: dict | None = None, timeout: float = 600,
               cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """Run `python -m module args…` from the project root and capture its output."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env=environment, timeout=timeout, cwd=cwd or ROOT)


@pytest.fixture
def cli():
    """`cli("nst.run", "--size", "64")` → CompletedProcess with stdout/stderr/returncode."""
    return run_module


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit status 2, no traceback, one `error:` line containing each fragment."""
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def tiny_trainer(calls: list | None = None):
    """A stand-in for `common.classifier.train_classifier` (same signature) that trains a
    1-epoch, 4-filter classifier on a 2,000-image slice, filed under the full data's
    fingerprint; the options it was called with are appended to `calls`. The real function
    is looked up now, so the stand-in can replace it by monkeypatching."""
    from common.classifier import dataset_fingerprint, train_classifier
    from common.data import Splits

    def train(dataset: str, splits, fingerprint: str | None = None, **options):
        if calls is not None:
            calls.append(options)
        small = Splits(splits.x_train[:2000], splits.y_train[:2000], splits.x_validation[:500],
                       splits.y_validation[:500], splits.x_test[:500], splits.y_test[:500])
        return train_classifier(dataset, small, fingerprint or dataset_fingerprint(splits), epochs=1,
                                width=4, feature_size=16, augment=False, verbose=0)

    return train


@pytest.fixture(scope="session")
def tiny_classifier_cache(data_dir, tmp_path_factory) -> dict[str, str]:
    """{"CLASSIFIER_CACHE", "DATA_DIR"}: a temporary cache holding a tiny MNIST classifier."""
    from common.classifier import save_classifier
    from common.data import load_splits

    folder = tmp_path_factory.mktemp("classifier_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLASSIFIER_CACHE", str(folder))
        save_classifier(tiny_trainer()("mnist", load_splits("mnist", data_dir)).classifier)
    return {"CLASSIFIER_CACHE": str(folder), "DATA_DIR": data_dir}
