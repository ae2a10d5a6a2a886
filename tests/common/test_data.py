"""common.data: sources, validation, splits, binarization and the tf.data pipeline."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from common import data
from common.errors import UserError


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def fake_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Arrays in the real layout (as Fashion-MNIST has no offline copy here)."""
    rng = np.random.default_rng(seed)
    return {key: rng.integers(0, 10 if key.startswith("y") else 256, size=shape, dtype=np.uint8)
            for key, shape in data.SIZES.items()}


@pytest.fixture(scope="module")
def fashion_arrays():
    return fake_arrays()


@pytest.mark.slow  # whole programs or real data: seconds each
@pytest.mark.parametrize("compress", [False, True])
def test_idx_files_load_in_order(tmp_path, fashion_arrays, compress):
    for key, stem in data.IDX_NAMES.items():
        write_idx(tmp_path / stem, fashion_arrays[key], compress)
    loaded = data.load_arrays("fashion_mnist", str(tmp_path))
    for key in data.SIZES:
        np.testing.assert_array_equal(loaded[key], fashion_arrays[key])


def test_keras_format_npz_loads(tmp_path, fashion_arrays):
    np.savez(tmp_path / "fashion-mnist.npz", **fashion_arrays)
    loaded = data.load_arrays("fashion_mnist", str(tmp_path))
    np.testing.assert_array_equal(loaded["x_test"], fashion_arrays["x_test"])


def test_truncated_idx_is_rejected(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    write_idx(path, np.zeros(10000, np.uint8), compress=False)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(UserError, match="truncated"):
        data.read_idx(path)


def test_wrong_shapes_and_labels_are_rejected(tmp_path, fashion_arrays):
    bad = dict(fashion_arrays, x_test=fashion_arrays["x_test"][:100])
    np.savez(tmp_path / "fashion-mnist.npz", **bad)
    with pytest.raises(UserError, match="x_test has shape"):
        data.load_arrays("fashion_mnist", str(tmp_path))
    labels = fashion_arrays["y_train"].copy()
    labels[0] = 11
    np.savez(tmp_path / "fashion-mnist.npz", **dict(fashion_arrays, y_train=labels))
    with pytest.raises(UserError, match="label 11"):
        data.load_arrays("fashion_mnist", str(tmp_path))


def test_corrupt_npz_and_missing_files(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UserError, match="not a readable .npz"):
        data.load_arrays("mnist", str(tmp_path))
    with pytest.raises(UserError, match="has neither fashion-mnist.npz"):
        data.load_arrays("fashion_mnist", str(tmp_path))
    with pytest.raises(UserError, match="does not exist"):
        data.load_arrays("mnist", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="unknown dataset"):
        data.load_arrays("cifar10", str(tmp_path))


def test_offline_without_local_copy_says_how_to_fix(monkeypatch):
    import keras

    def no_network():
        raise OSError("Temporary failure in name resolution")

    monkeypatch.delenv("DATA_DIR", raising=False)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", no_network)
    with pytest.raises(UserError, match="point DATA_DIR"):
        data.load_arrays("mnist")


@pytest.mark.slow  # whole programs or real data: seconds each
def test_real_mnist_matches_fingerprints_and_splits(data_dir):
    splits = data.load_splits("mnist", data_dir)
    assert splits.x_train.shape == (50000, 28, 28, 1) and splits.x_train.dtype == np.float32
    assert splits.x_validation.shape == (10000, 28, 28, 1)
    assert splits.x_test.shape == (10000, 28, 28, 1)
    assert 0.0 <= splits.x_train.min() and splits.x_train.max() <= 1.0
    assert set(np.unique(splits.y_test)) == set(range(10))
    # The split is fixed, whatever the run's seed: loading again gives the same validation set.
    again = data.load_splits("mnist", data_dir)
    np.testing.assert_array_equal(again.y_validation, splits.y_validation)
    # Canonical pixel mean of the training images (assets README): 33.3184 / 255.
    everything = np.concatenate([splits.x_train, splits.x_validation])
    assert abs(everything.mean() * 255 - 33.3184) < 1e-3


def test_altered_mnist_fails_the_fingerprint(data_dir, tmp_path):
    with np.load(f"{data_dir}/mnist.npz") as archive:
        arrays = {key: archive[key].copy() for key in archive.files}
    arrays["x_test"][0, 0, 0] ^= 1
    np.savez(tmp_path / "mnist.npz", **arrays)
    with pytest.raises(UserError, match="x_test does not match the known MNIST fingerprint"):
        data.load_arrays("mnist", str(tmp_path))


def test_data_dir_environment_variable_is_used(data_dir, monkeypatch, tmp_path):
    shutil.copy(f"{data_dir}/mnist.npz", tmp_path / "mnist.npz")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert data.resolve_data_dir(None) == tmp_path
    assert data.resolve_data_dir("/explicit") .as_posix() == "/explicit"


def test_static_binarization_thresholds_at_half():
    x = np.array([0.0, 0.49, 0.5, 0.51, 1.0], np.float32)
    np.testing.assert_array_equal(data.binarize_static(x), [0, 0, 0, 1, 1])


def test_dynamic_binarization_is_fresh_each_epoch_and_reproducible():
    x = np.full((64, 4, 4, 1), 0.3, np.float32)
    dataset = data.make_dataset(x, batch_size=64, binarize="dynamic", seed=7)
    first = next(iter(dataset)).numpy()
    second = next(iter(dataset)).numpy()
    assert set(np.unique(first)) <= {0.0, 1.0}
    assert abs(first.mean() - 0.3) < 0.06  # Bernoulli(0.3) over 1024 pixels
    assert not np.array_equal(first, second)  # a new sample every epoch
    again = next(iter(data.make_dataset(x, batch_size=64, binarize="dynamic", seed=7))).numpy()
    np.testing.assert_array_equal(first, again)  # same seed, same sequence


def test_pipeline_batches_shuffles_and_keeps_labels():
    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1) / 10
    y = np.arange(10, dtype=np.int32)
    batches = list(data.make_dataset(x, y, batch_size=4, shuffle=True, seed=1))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    images = np.concatenate([b[0].numpy().ravel() for b in batches])
    labels = np.concatenate([b[1].numpy() for b in batches])
    np.testing.assert_allclose(images, labels / 10)  # pairs stay together
    assert sorted(labels) == list(range(10)) and list(labels) != list(range(10))
    dropped = list(data.make_dataset(x, y, batch_size=4, drop_remainder=True))
    assert len(dropped) == 2


def test_batch_size_larger_than_data_is_rejected():
    with pytest.raises(UserError, match="batch size 11"):
        data.make_dataset(np.zeros((10, 2, 2, 1), np.float32), batch_size=11)
