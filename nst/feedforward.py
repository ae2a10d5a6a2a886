"""What the feed-forward stylisers share (`nst.fast`, `nst.adain`, `nst.video`): folders of
photos and random crops to train on, loading a saved network, and stylising inputs in
batches of one shape and writing the results."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from common.errors import UserError
from common.images import load_image, resize, resize_long_side, save_image
from common.precision import load_model
from nst import color

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside `folder`, sorted; none is a `UserError`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"{folder}: holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def load_content_photos(folder: str, image_size: int) -> list[np.ndarray]:
    """Every photo in `folder`, scaled so its short side is at most 2× the crop.

    Loading them once keeps training fast for the folders this runs on here; every photo
    must be readable and at least `image_size` on its short side.
    """
    photos = []
    for path in list_images(folder):
        image = load_image(path)
        short = min(image.shape[:2])
        if short < image_size:
            raise UserError(f"{path}: {image.shape[1]}x{image.shape[0]} is smaller than the "
                            f"{image_size}px crop; use a smaller --image-size or remove it")
        if short > 2 * image_size:
            scale = 2 * image_size / short
            image = resize(image, round(image.shape[0] * scale), round(image.shape[1] * scale))
        photos.append(image)
    return photos


def crop_dataset(photos: list[np.ndarray], image_size: int, batch_size: int, seed: int):
    """An endless tf.data stream of batches of random square crops (with random flips)."""
    rng = np.random.default_rng(seed)

    def crops():
        while True:
            photo = photos[rng.integers(len(photos))]
            top = rng.integers(photo.shape[0] - image_size + 1)
            left = rng.integers(photo.shape[1] - image_size + 1)
            crop = photo[top:top + image_size, left:left + image_size]
            yield crop[:, ::-1] if rng.random() < 0.5 else crop

    spec = tf.TensorSpec((image_size, image_size, 3), tf.float32)
    return (tf.data.Dataset.from_generator(crops, output_signature=spec)
            .batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


def load_network(path: str, kind: type, what: str, program: str, precision: str = "float32"):
    """A saved .keras model of class `kind` computing in `precision`; anything else is a
    one-line `UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such model file")
    try:
        model = load_model(path, precision)
    except Exception as error:
        detail = " ".join(str(error).split())[:160] or type(error).__name__
        raise UserError(f"{path}: not a loadable .keras model ({detail})") from None
    if not isinstance(model, kind):
        raise UserError(f"{path}: is a {type(model).__name__}, not {what} (make one with "
                        f"`{program}`)")
    return model


def stylize_inputs(items: list[str], output: str) -> tuple[list[Path], bool]:
    """The input images (folders expanded) and whether `output` is one image file.

    One input file needs an image file name, several inputs (or a folder) a folder;
    anything else is a `UserError`.
    """
    inputs: list[Path] = []
    for item in items:
        inputs += list_images(item) if Path(item).is_dir() else [Path(item)]
    single = len(inputs) == 1 and not Path(items[0]).is_dir()
    output = Path(output)
    if single and output.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UserError(f"--output {output}: one input needs an image file name (.png/.jpg)")
    if not single and output.suffix:
        raise UserError(f"--output {output}: several inputs need a folder, not a file name")
    return inputs, single


def load_images_to_stylize(paths: list[Path], size: int | None) -> list[np.ndarray]:
    """Every input image, resized to long side `size` if given; all of them load or none."""
    images = []
    for path in paths:
        image = load_image(path)
        image = resize_long_side(image, size) if size else image
        if min(image.shape[:2]) < 4:
            raise UserError(f"{path}: too small to stylise (at least 4x4 pixels)")
        images.append(image)
    return images


def same_shape_batches(images: list[np.ndarray], batch_size: int) -> list[list[int]]:
    """Indices of `images` in batches of at most `batch_size` images of one shape each."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        groups.setdefault(image.shape, []).append(index)
    return [indices[first:first + batch_size] for indices in groups.values()
            for first in range(0, len(indices), batch_size)]


def save_outputs(paths: list[Path], results: list[np.ndarray], output: str, single: bool) -> None:
    """`output` itself for one input, else `output/<input name>.png` for each (atomically)."""
    for path, image in zip(paths, results):
        save_image(Path(output) if single else Path(output) / f"{path.stem}.png", image)


def finish(stylised: np.ndarray, content: np.ndarray, preserve_color: bool,
           strength: float) -> np.ndarray:
    """--preserve-color (the content's YIQ chrominance, as `nst.run` does), then --strength:
    strength·result + (1 − strength)·content."""
    if preserve_color:
        stylised = color.with_content_chrominance(stylised, content)
    return np.clip(strength * stylised + (1.0 - strength) * content, 0.0, 1.0)


def report_stylized(figures: dict[str, float], output: str) -> None:
    print(f"stylised {figures['images']} image(s) in {figures['seconds']:.2f} s "
          f"({figures['images_per_second']:.2f} images/s) → {output}")
