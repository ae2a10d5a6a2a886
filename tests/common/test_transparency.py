"""Transparency as viewers show it, through every loader that reads image files: style
transfer's `load_image`, the `folder:` datasets and the score CLI's folder input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from common.colour_datasets import decode_folder
from common.data import load_splits
from common.images import load_image
from experiments.score import folder_images

EXPECTED = np.zeros((8, 8, 3), np.float32)  # what a viewer shows, composited on white


@pytest.fixture
def hidden_red(tmp_path):
    """An RGBA PNG: left half opaque blue, right half fully transparent over red, and one
    half-transparent red pixel (alpha 128): a viewer shows blue, white and pink."""
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, :4] = (0, 0, 255, 255)
    rgba[:, 4:] = (255, 0, 0, 0)
    rgba[0, 0] = (255, 0, 0, 128)
    path = tmp_path / "icon.png"
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def expected_view() -> np.ndarray:
    view = EXPECTED.copy()
    view[:, :4] = (0.0, 0.0, 1.0)
    view[:, 4:] = 1.0
    half = 128 / 255
    view[0, 0] = (1.0, 1.0 - half, 1.0 - half)
    return view


def test_style_transfer_loader_composites_on_white(hidden_red):
    np.testing.assert_allclose(load_image(hidden_red), expected_view(), atol=1 / 255)


def test_folder_datasets_composite_on_white(hidden_red):
    images, _, skipped = decode_folder([str(hidden_red)], np.zeros(1, np.int32), 8, 3)
    assert skipped == 0
    np.testing.assert_allclose(images[0], expected_view(), atol=1 / 255)
    grey, _, _ = decode_folder([str(hidden_red)], np.zeros(1, np.int32), 8, 1)
    assert grey[0, 3, 6, 0] == pytest.approx(1.0, abs=1 / 255)  # white, not the red's grey


def test_folder_of_icons_through_load_splits(hidden_red):
    for name in ("a.png", "b.png", "c.png"):
        (hidden_red.parent / name).write_bytes(hidden_red.read_bytes())
    splits = load_splits(f"folder:{hidden_red.parent}", image_size=8)
    for images in (splits.x_train, splits.x_validation, splits.x_test):
        np.testing.assert_allclose(images[0], expected_view(), atol=1 / 255)


def test_score_cli_folder_input_composites_on_white(hidden_red):
    images = folder_images(hidden_red.parent, "--samples")
    np.testing.assert_allclose(images[0] / 255.0, expected_view(), atol=1 / 255)
