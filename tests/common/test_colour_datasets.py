"""common.colour_datasets: CIFAR-10 files, image folders and `shapes`, through `common.data.load_splits`."""

from __future__ import annotations

import hashlib
import math
import pickle

import numpy as np
import pytest
from PIL import Image

from common import colour_datasets, data
from common.errors import UserError
from common.networks import conv_levels
from tests.helpers import TINY_COUNTS, cifar_batch, write_cifar, write_folder


@pytest.fixture
def tiny_cifar(monkeypatch):
    """Tiny files pass: the image counts are patched and there is no published MD5 for them."""
    monkeypatch.setattr(colour_datasets, "CIFAR_COUNTS", TINY_COUNTS)
    monkeypatch.setattr(colour_datasets, "CIFAR_MD5", {})


@pytest.mark.parametrize("as_archive", [False, True])
def test_cifar_files_load_with_planes_as_rgb(tmp_path, tiny_cifar, as_archive):
    batches = write_cifar(tmp_path, as_archive)
    arrays = colour_datasets.cifar10_arrays(tmp_path)
    assert arrays["x_train"].shape == (30, 32, 32, 3) and arrays["x_test"].shape == (6, 32, 32, 3)
    row = batches["data_batch_2"][b"data"][1]  # the 8th training image
    # Pixel (i, j) of channel c is byte c·1024 + 32·i + j.
    np.testing.assert_array_equal(arrays["x_train"][7][3, 5], row[[0 * 1024 + 101, 1024 + 101, 2048 + 101]])
    np.testing.assert_array_equal(arrays["y_test"], batches["test_batch"][b"labels"])
    splits = data.load_splits("cifar10", str(tmp_path))
    assert splits.image_shape == (32, 32, 3) and len(splits.x_train) + len(splits.x_validation) == 30
    assert splits.classes == colour_datasets.CIFAR_CLASSES
    np.testing.assert_array_equal(splits.x_test, arrays["x_test"] / np.float32(255))


def test_cifar_fingerprint_and_structure_are_checked(tmp_path, monkeypatch):
    write_cifar(tmp_path)
    with pytest.raises(UserError, match="does not match the published CIFAR-10 MD5"):
        colour_datasets.cifar10_arrays(tmp_path)  # tiny files are not the published ones
    monkeypatch.setattr(colour_datasets, "CIFAR_MD5", {})
    with pytest.raises(UserError, match="30 train images, expected 50000"):
        colour_datasets.cifar10_arrays(tmp_path)
    monkeypatch.setattr(colour_datasets, "CIFAR_COUNTS", TINY_COUNTS)
    bad = cifar_batch(0, 6)
    bad[b"data"] = bad[b"data"][:, :3000]
    (tmp_path / colour_datasets.CIFAR_FOLDER / "data_batch_3").write_bytes(pickle.dumps(bad))
    with pytest.raises(UserError, match=r"data_batch_3: b'data' must be uint8 \(N, 3072\)"):
        colour_datasets.cifar10_arrays(tmp_path)
    (tmp_path / colour_datasets.CIFAR_FOLDER / "data_batch_3").unlink()
    with pytest.raises(UserError, match="missing data_batch_3"):
        colour_datasets.cifar10_arrays(tmp_path)


def test_cifar_pickles_may_not_run_code(tmp_path, tiny_cifar):
    write_cifar(tmp_path)
    evil = pickle.dumps({b"data": __import__("os").getcwd, b"labels": []})
    (tmp_path / colour_datasets.CIFAR_FOLDER / "test_batch").write_bytes(evil)
    with pytest.raises(UserError, match="not a CIFAR-10 batch"):
        colour_datasets.cifar10_arrays(tmp_path)


def test_published_md5_of_a_file_is_what_is_compared():
    content = b"not cifar"
    with pytest.raises(UserError, match="published CIFAR-10 MD5"):
        colour_datasets._check_md5("test_batch", content, "x")
    colour_datasets._check_md5("unlisted", content, "x")  # no published sum: nothing to compare
    assert hashlib.md5(content).hexdigest() != colour_datasets.CIFAR_MD5["test_batch"]


def test_folder_tree_labels_crop_resize_and_skips(tmp_path, capsys):
    write_folder(tmp_path)
    files, labels, classes, ignored = colour_datasets.folder_files(tmp_path)
    assert classes == ("cats", "dogs") and ignored == 1 and len(files) == 7
    images, kept, skipped = colour_datasets.decode_folder(files, labels, 16, 3)
    assert skipped == 1 and images.shape == (6, 16, 16, 3) and images.dtype == np.float32
    np.testing.assert_array_equal(kept, [0, 0, 0, 0, 1, 1])
    grey = images[kept == 1][0]
    np.testing.assert_allclose(grey, 200 / 255, atol=1e-6)  # grey PNG → equal R, G, B
    np.testing.assert_array_equal(np.round(images * 255) / 255, images)  # on the 8-bit grid
    splits = data.load_splits(f"folder:{tmp_path}", image_size=16, channels=1)
    assert splits.image_shape == (16, 16, 1) and splits.classes == ("cats", "dogs")
    assert len(splits.x_train) == 4 and len(splits.x_validation) == len(splits.x_test) == 1
    assert "skipped 1 file(s) that did not decode and 1 non-image file(s)" in capsys.readouterr().out


def test_folder_center_crop_keeps_the_middle(tmp_path):
    picture = np.zeros((8, 16, 3), np.uint8)
    picture[:, 4:12] = 255  # the central square is white, the sides black
    Image.fromarray(picture).save(tmp_path / "wide.png")
    images, _, _ = colour_datasets.decode_folder([str(tmp_path / "wide.png")], np.array([-1]), 8, 3)
    np.testing.assert_allclose(images[0], 1.0)


def test_folder_and_option_errors(tmp_path):
    with pytest.raises(UserError, match="holds no images"):
        data.load_splits(f"folder:{tmp_path}")
    with pytest.raises(UserError, match="no such folder"):
        data.load_splits(f"folder:{tmp_path / 'nowhere'}")
    with pytest.raises(UserError, match="not a multiple of 4"):
        data.load_splits("shapes", image_size=30)
    with pytest.raises(UserError, match="is not 1 .grey. or 3"):
        data.load_splits("shapes", channels=5)
    with pytest.raises(UserError, match="unknown dataset 'svhn'"):
        data.load_splits("svhn")
    unlabelled = tmp_path / "flat"
    unlabelled.mkdir()
    for i in range(3):
        Image.fromarray(np.full((5, 5, 3), i, np.uint8)).save(unlabelled / f"{i}.png")
    assert set(data.load_splits(f"folder:{unlabelled}", image_size=8).y_train) == {-1}


def test_shapes_are_deterministic_with_known_factors():
    images, factors = colour_datasets.shapes_arrays(40, 16, seed=3)
    again, _ = colour_datasets.shapes_arrays(40, 16, seed=3)
    np.testing.assert_array_equal(images, again)
    assert images.shape == (40, 16, 16, 3) and 0.0 <= images.min() and images.max() <= 1.0
    assert set(factors) == {"shape", "colour", "scale", "rotation", "x", "y"}
    assert all(len(v) == 40 for v in factors.values())
    # Each image is black plus one colour: its brightest pixel has that colour.
    brightest = images.reshape(40, -1, 3)[np.arange(40), images.sum(-1).reshape(40, -1).argmax(1)]
    colours = colour_datasets.COLOURS[factors["colour"]]
    np.testing.assert_allclose(brightest / brightest.max(1, keepdims=True),
                               colours / colours.max(1, keepdims=True), atol=0.02)


@pytest.mark.parametrize("shape, area", [(0, 2.0), (1, math.pi * 0.75 ** 2), (2, 3 * math.sqrt(3) / 4)])
def test_shape_areas_match_geometry(shape, area):
    """Coverage summed over pixels ≈ area × (size·scale)²: square of half-diagonal s (2s²),
    circle of radius 0.75 s, equilateral triangle of circumradius s (3√3/4 s²)."""
    size, scale = 128, 0.3
    one = np.ones(1, np.float32)
    mask = colour_datasets.shape_masks(np.array([shape]), scale * one, 0.3 * one, 0.5 * one, 0.5 * one, size)
    assert mask.sum() == pytest.approx(area * (size * scale) ** 2, rel=0.01)


def test_shapes_splits_carry_factors_and_labels():
    splits = data.load_splits("shapes", image_size=8, channels=1)
    assert splits.image_shape == (8, 8, 1) and splits.classes == colour_datasets.SHAPE_NAMES
    np.testing.assert_array_equal(splits.y_test, splits.factors["test"]["shape"])
    assert len(splits.x_train) == colour_datasets.SHAPES_SIZES["train"]


@pytest.mark.parametrize("size, levels", [(28, 2), (32, 3), (64, 4), (12, 2), (4, 2)])
def test_conv_levels_from_the_image_size(size, levels):
    assert conv_levels((size, size, 3), "dcgan") == levels


def test_networks_refuse_shapes_they_cannot_take():
    with pytest.raises(UserError, match="mlp takes 28×28 images only, not 64×64"):
        conv_levels((64, 64, 3), "mlp")
    with pytest.raises(UserError, match="multiples of 4"):
        conv_levels((30, 30, 3), "conv")
    with pytest.raises(UserError, match="5 channels"):
        conv_levels((32, 32, 5), "conv")
