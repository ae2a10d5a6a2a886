"""Load, resize and save images as float32 RGB arrays in [0, 1].

`load_image` accepts what users have: JPEG, PNG (8/16-bit, palette, with alpha),
grayscale, CMYK, EXIF-rotated photos. Every problem becomes a one-line `ImageError`
naming the file: missing, a folder, empty, not an image, truncated, or too many pixels.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from common.errors import UserError
from common.files import atomic_write

# Refuse images above this many pixels before decoding them (decompression bombs).
MAX_PIXELS = 100_000_000
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


class ImageError(UserError):
    """An image file that cannot be used, with the reason."""


def _to_rgb(image: Image.Image) -> np.ndarray:
    """Any Pillow mode → float32 (H, W, 3) in [0, 1]; transparency composited on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grayscale: Pillow's convert("RGB") would clip it to 8 bits badly.
        grey = np.asarray(image, dtype=np.float32)
        scale = 65535.0 if grey.max(initial=0) > 255 or image.mode.startswith("I;16") else 255.0
        grey = np.clip(grey / scale, 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode == "F":
        grey = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:]
        return rgba[..., :3] * alpha + (1.0 - alpha)
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def load_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as float32 RGB (H, W, 3) in [0, 1], upright per its EXIF tag."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, not an image")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageError(f"{path}: cannot read: {error.strerror or error}") from None
    if not data:
        raise ImageError(f"{path}: is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(f"{path}: {width}x{height} has more than {max_pixels:,} pixels; "
                                 "refusing to decode it")
            image.load()
            image = ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except Image.UnidentifiedImageError:
        raise ImageError(f"{path}: not an image (unknown or unsupported format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{path}: too many pixels; refusing to decode it") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageError(f"{path}: truncated or corrupt image ({error})") from None
    if image.width == 0 or image.height == 0:
        raise ImageError(f"{path}: image has no pixels")
    return _to_rgb(image)


def resize_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    """Resize so the longer side is `long_side` pixels, keeping the aspect ratio.

    Uses Pillow's Lanczos filter per channel on the float data (antialiased when shrinking).
    """
    if long_side <= 0:
        raise UserError(f"size must be positive, got {long_side}")
    height, width = image.shape[:2]
    scale = long_side / max(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return resize(image, new_size[1], new_size[0])


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an (H, W, C) float image to (height, width, C) with a Lanczos filter."""
    image = np.asarray(image, dtype=np.float32)
    if image.shape[:2] == (height, width):
        return image.copy()
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c])).resize(
        (width, height), Image.Resampling.LANCZOS)) for c in range(image.shape[2])]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] floats → uint8 with rounding."""
    return (np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_image(path: str | os.PathLike, image: np.ndarray, quality: int = 95) -> None:
    """Write an (H, W), (H, W, 1) or (H, W, 3) image in [0, 1] as PNG or JPEG, atomically.

    The format comes from the suffix; the folder is created if needed.
    """
    path = Path(path)
    file_format = SAVE_FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise ImageError(f"{path}: unsupported output format {path.suffix or '(none)'}; "
                         "use .png, .jpg or .jpeg")
    pixels = to_uint8(image)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    buffer = io.BytesIO()
    options = {"quality": quality} if file_format == "JPEG" else {}
    Image.fromarray(pixels).save(buffer, format=file_format, **options)
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, cannot write an image there")
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())
