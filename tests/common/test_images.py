"""common.images: every format users have loads as float RGB; every bad file gets one line."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from common.files import atomic_write
from common.images import ImageError, load_image, resize, resize_long_side, save_image, to_uint8


def _write(path, image: Image.Image, **options) -> str:
    image.save(path, **options)
    return str(path)


@pytest.fixture
def gradient() -> np.ndarray:
    """A 20x30 RGB uint8 image with distinct values per pixel and channel."""
    y, x = np.mgrid[0:20, 0:30]
    return np.stack([x * 8, y * 12, (x + y) * 5], axis=-1).astype(np.uint8)


def test_png_round_trip_is_exact(tmp_path, gradient):
    path = _write(tmp_path / "a.png", Image.fromarray(gradient))
    loaded = load_image(path)
    assert loaded.dtype == np.float32 and loaded.shape == (20, 30, 3)
    np.testing.assert_array_equal(to_uint8(loaded), gradient)


def test_jpeg_loads_close_to_source(tmp_path, gradient):
    path = _write(tmp_path / "a.jpg", Image.fromarray(gradient), quality=98)
    assert np.abs(load_image(path) - gradient / 255.0).mean() < 0.02


def test_grayscale_becomes_three_equal_channels(tmp_path, gradient):
    path = _write(tmp_path / "g.png", Image.fromarray(gradient[..., 0]))
    loaded = load_image(path)
    assert loaded.shape == (20, 30, 3)
    np.testing.assert_allclose(loaded[..., 0], gradient[..., 0] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(loaded[..., 0], loaded[..., 2])


def test_sixteen_bit_png_keeps_its_full_range(tmp_path):
    values = np.array([[0, 1000, 32768, 65535]], dtype=np.uint16)
    path = _write(tmp_path / "16.png", Image.fromarray(values))
    loaded = load_image(path)
    np.testing.assert_allclose(loaded[0, :, 0], values[0] / 65535.0, atol=1e-6)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)      # opaque red
    rgba[0, 1] = (0, 0, 0, 0)          # fully transparent → white
    rgba[1, 0] = (0, 0, 0, 128)        # half-transparent black → mid grey
    loaded = load_image(_write(tmp_path / "a.png", Image.fromarray(rgba)))
    np.testing.assert_allclose(loaded[0, 0], [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(loaded[0, 1], [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(loaded[1, 0], [127 / 255] * 3, atol=1e-2)


def test_palette_with_transparency(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    image.info["transparency"] = 1
    path = tmp_path / "p.png"
    image.save(path, transparency=1)
    loaded = load_image(path)
    np.testing.assert_allclose(loaded[0, 0], [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(loaded[0, 1], [1, 1, 1], atol=1e-6)


def test_cmyk_jpeg_loads_as_rgb(tmp_path):
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    loaded = load_image(_write(tmp_path / "c.jpg", cmyk, quality=100))
    assert loaded.shape == (8, 8, 3)
    np.testing.assert_allclose(loaded.mean(axis=(0, 1)), [1, 0, 0], atol=0.05)


def test_exif_rotated_photo_is_made_upright(tmp_path, gradient):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    path = _write(tmp_path / "r.jpg", Image.fromarray(gradient), exif=exif, quality=98)
    loaded = load_image(path)
    assert loaded.shape == (30, 20, 3)
    expected = np.rot90(gradient, k=-1) / 255.0
    assert np.abs(loaded - expected).mean() < 0.02


@pytest.mark.parametrize("name, content, fragment", [
    ("missing.png", None, "no such file"),
    ("", None, "is a directory"),
    ("empty.jpg", b"", "empty (0 bytes)"),
    ("text.jpg", b"hello, not a photo", "not an image"),
])
def test_bad_files_raise_one_line_errors(tmp_path, name, content, fragment):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError) as info:
        load_image(path)
    message = str(info.value)
    assert fragment in message and str(path) in message and "\n" not in message


def test_truncated_image_is_reported(tmp_path, gradient):
    buffer = io.BytesIO()
    Image.fromarray(np.repeat(np.repeat(gradient, 8, 0), 8, 1)).save(buffer, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(path)


def test_pixel_limit_refuses_before_decoding(tmp_path, gradient):
    path = _write(tmp_path / "big.png", Image.fromarray(gradient))
    with pytest.raises(ImageError, match="more than 100 pixels"):
        load_image(path, max_pixels=100)


def test_resize_long_side_keeps_aspect_ratio():
    image = np.random.default_rng(0).random((300, 200, 3)).astype(np.float32)
    resized = resize_long_side(image, 150)
    assert resized.shape == (150, 100, 3) and resized.dtype == np.float32
    assert resized.min() >= 0.0 and resized.max() <= 1.0
    assert resize_long_side(image[:150], 60).shape == (45, 60, 3)


def test_resize_preserves_a_constant_image():
    flat = np.full((40, 60, 3), 0.25, np.float32)
    np.testing.assert_allclose(resize(flat, 17, 23), 0.25, atol=1e-5)


def test_resize_rejects_non_positive_size():
    with pytest.raises(UserError):
        resize_long_side(np.zeros((4, 4, 3), np.float32), 0)


def test_save_creates_folder_and_round_trips(tmp_path, gradient):
    path = tmp_path / "new" / "deeper" / "out.png"
    save_image(path, gradient / 255.0)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), gradient)
    assert os.listdir(path.parent) == ["out.png"]  # no temp file left behind


def test_save_jpeg_and_grayscale(tmp_path, gradient):
    save_image(tmp_path / "out.jpg", gradient / 255.0)
    assert Image.open(tmp_path / "out.jpg").format == "JPEG"
    save_image(tmp_path / "grey.png", gradient[..., :1] / 255.0)
    assert Image.open(tmp_path / "grey.png").mode == "L"


def test_save_to_unwritable_path_is_one_line_error(tmp_path, gradient):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    with pytest.raises(UserError, match="cannot write"):
        save_image(blocker / "out.png", gradient / 255.0)
    with pytest.raises(ImageError, match="unsupported output format"):
        save_image(tmp_path / "out.gif", gradient / 255.0)


def test_failed_write_leaves_previous_file_intact(tmp_path):
    path = tmp_path / "keep.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path, "w") as handle:
            handle.write("half")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["keep.txt"]
