"""Colour datasets beside the digits of `common.data`: CIFAR-10, a folder of images, `shapes`.

Each loader returns `common.data.Splits`: float32 images (N, H, W, C) in [0, 1] on the
8-bit grid (k/255) and int32 labels (−1 where a folder has no class sub-folders).

- `cifar10`: `DATA_DIR/cifar-10-batches-py/` or `DATA_DIR/cifar-10-python.tar.gz` (the
  pickled batches of Krizhevsky 2009), else Keras' download. The files are checked
  against the published MD5 sums (the ones torchvision checks), then their structure
  (keys, shapes, dtypes, 50,000/10,000 images, labels 0..9).
- `folder:PATH`: every jpg/png/webp/bmp/gif below PATH, decoded in parallel by
  `tf.data`, centre-cropped to a square and resized to `--image-size`; files that do
  not decode are skipped and counted. Class sub-folders become labels.
- `shapes`: squares, circles and triangles with known factors (shape, colour, scale,
  rotation, x, y), drawn in NumPy from a seed (in the spirit of dSprites).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from common.errors import UserError, first_line

CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_FILES = (*CIFAR_TRAIN, "test_batch", "batches.meta")
# Published MD5 sums (www.cs.toronto.edu/~kriz/cifar.html; torchvision checks the same).
CIFAR_MD5 = {
    CIFAR_ARCHIVE: "c58f30108f718f92721af3b95e74349a",
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CIFAR_COUNTS = {"train": 50000, "test": 10000}
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
FOLDER_SPLIT_SEED = 4321  # fixed: the held-out images must not change with the run's --seed
HELD_OUT_FRACTION = 0.1  # of a folder, for validation and again for test
SHAPE_NAMES = ("square", "circle", "triangle")
COLOURS = np.array([[1, 0.15, 0.15], [0.15, 0.85, 0.15], [0.2, 0.4, 1], [1, 0.9, 0.1],
                    [0.1, 0.9, 0.9], [0.95, 0.2, 0.95]], np.float32)
SHAPES_SIZES = {"train": 10000, "validation": 1000, "test": 1000}
SHAPES_SEED = 2024


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes and NumPy arrays only (and `_codecs.encode`, which
    protocol-2 pickles of bytes use): no other code runs."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _cifar_bytes(folder: Path) -> tuple[dict[str, bytes], str]:
    """The raw bytes of the seven CIFAR files (from the folder or the tar.gz), MD5-checked."""
    batches, archive = folder / CIFAR_FOLDER, folder / CIFAR_ARCHIVE
    if batches.is_dir():
        missing = [name for name in CIFAR_FILES if not (batches / name).is_file()]
        if missing:
            raise UserError(f"{batches}: not a CIFAR-10 folder (missing {', '.join(missing)})")
        contents, source = {name: (batches / name).read_bytes() for name in CIFAR_FILES}, str(batches)
    elif archive.is_file():
        _check_md5(CIFAR_ARCHIVE, archive.read_bytes(), str(archive))
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
                missing = [name for name in CIFAR_FILES if name not in members]
                if missing:
                    raise UserError(f"{archive}: not a CIFAR-10 archive (missing {', '.join(missing)})")
                contents = {name: tar.extractfile(members[name]).read() for name in CIFAR_FILES}
        except (tarfile.TarError, OSError, EOFError) as error:
            raise UserError(f"{archive}: not a readable tar.gz ({first_line(error)})") from None
        source = str(archive)
    else:
        raise UserError(f"{folder}: has neither {CIFAR_FOLDER}/ nor {CIFAR_ARCHIVE}")
    for name, content in contents.items():
        _check_md5(name, content, f"{source}/{name}")
    return contents, source


def _check_md5(name: str, content: bytes, source: str) -> None:
    expected = CIFAR_MD5.get(name)
    if expected and hashlib.md5(content).hexdigest() != expected:
        raise UserError(f"{source}: does not match the published CIFAR-10 MD5 {expected} "
                        "(wrong or corrupt copy)")


def _cifar_batch(content: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch → uint8 images (N, 32, 32, 3) and labels (N,), structure checked."""
    try:
        batch = _ArrayUnpickler(io.BytesIO(content), encoding="bytes").load()
        data, labels = batch[b"data"], np.asarray(batch[b"labels"])
    except Exception as error:  # pickle, key and type errors: all a wrong file
        raise UserError(f"{source}: not a CIFAR-10 batch ({first_line(error)})") from None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072 or labels.shape != (len(data),):
        raise UserError(f"{source}: b'data' must be uint8 (N, 3072) with N labels, got "
                        f"{getattr(data, 'shape', None)} {getattr(data, 'dtype', None)} and "
                        f"{labels.shape} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise UserError(f"{source}: labels must be 0..9, found {labels.min()}..{labels.max()}")
    # Row-major planes: 1024 red, 1024 green, 1024 blue values per image.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels.astype(np.int32)


def cifar10_arrays(folder: Path | None) -> dict[str, np.ndarray]:
    """x_train (50000, 32, 32, 3) uint8, y_train, x_test (10000, ...), y_test, checked."""
    if folder is None:
        import keras

        try:
            (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
        except Exception as error:
            raise UserError(f"cannot load cifar10: no local copy and the download failed "
                            f"({first_line(error)}); point DATA_DIR (or --data-dir) at a folder "
                            f"holding {CIFAR_FOLDER}/ or {CIFAR_ARCHIVE}") from None
        return {"x_train": x_train, "y_train": y_train.ravel().astype(np.int32),
                "x_test": x_test, "y_test": y_test.ravel().astype(np.int32)}
    contents, source = _cifar_bytes(folder)
    train = [_cifar_batch(contents[name], f"{source}/{name}") for name in CIFAR_TRAIN]
    arrays = {"x_train": np.concatenate([x for x, _ in train]),
              "y_train": np.concatenate([y for _, y in train])}
    arrays["x_test"], arrays["y_test"] = _cifar_batch(contents["test_batch"], f"{source}/test_batch")
    for split, count in CIFAR_COUNTS.items():
        if len(arrays[f"x_{split}"]) != count:
            raise UserError(f"{source}: {len(arrays[f'x_{split}'])} {split} images, expected {count}")
    return arrays


def folder_files(root: Path) -> tuple[list[str], np.ndarray, tuple[str, ...], int]:
    """Image files below `root` (sorted), their labels, the class names and how many other
    files were ignored. Labels are the index of the first-level sub-folder, or −1 for all
    when the images do not all lie in sub-folders."""
    if not root.is_dir():
        raise UserError(f"folder:{root}: no such folder")
    files, ignored = [], 0
    for folder, _, names in sorted(os.walk(root)):
        for name in sorted(names):
            if name.lower().endswith(IMAGE_SUFFIXES):
                files.append(Path(folder) / name)
            elif not name.startswith("."):
                ignored += 1
    if not files:
        raise UserError(f"folder:{root}: holds no images ({', '.join(IMAGE_SUFFIXES)})")
    parts = [path.relative_to(root).parts for path in files]
    if all(len(p) > 1 for p in parts):
        classes = tuple(sorted({p[0] for p in parts}))
        labels = np.array([classes.index(p[0]) for p in parts], np.int32)
    else:
        classes, labels = (), np.full(len(files), -1, np.int32)
    return [str(path) for path in files], labels, classes, ignored


def composite_on_white(image: tf.Tensor) -> tf.Tensor:
    """A decoded image with 1–4 channels (grey, grey + alpha, RGB, RGBA; 0–255) → RGB float32,
    transparency composited on white as a viewer shows it (as `common.images.load_image`
    does): the colours hidden under transparent pixels never reach a model."""
    image = tf.cast(image, tf.float32)
    has_alpha = tf.equal(tf.shape(image)[-1] % 2, 0)
    alpha = tf.cond(has_alpha, lambda: image[..., -1:] / 255.0, lambda: tf.ones_like(image[..., :1]))
    colour = tf.cond(has_alpha, lambda: image[..., :-1], lambda: image)
    colour = tf.cond(tf.equal(tf.shape(colour)[-1], 1), lambda: tf.tile(colour, [1, 1, 3]), lambda: colour)
    rgb = colour * alpha + 255.0 * (1.0 - alpha)
    rgb.set_shape([None, None, 3])
    return rgb


def _decode(path: tf.Tensor, size: int, channels: int) -> tf.Tensor:
    """File → RGB on white → centre square crop → (size, size, channels) float32 on the 8-bit grid."""
    image = composite_on_white(tf.io.decode_image(tf.io.read_file(path), expand_animations=False))
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    image = tf.image.crop_to_bounding_box(image, (shape[0] - side) // 2, (shape[1] - side) // 2,
                                          side, side)
    image = tf.image.resize(image, (size, size), antialias=True)
    if channels == 1:
        image = tf.image.rgb_to_grayscale(image)
    return tf.round(tf.clip_by_value(image, 0.0, 255.0)) / 255.0


def decode_folder(files: list[str], labels: np.ndarray, size: int,
                  channels: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Decode in parallel with tf.data; files that fail are dropped. Returns (images, labels,
    skipped count)."""
    dataset = tf.data.Dataset.from_tensor_slices((files, labels)).map(
        lambda path, label: (_decode(path, size, channels), label),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.ignore_errors().batch(256).prefetch(tf.data.AUTOTUNE)
    images, kept = [], []
    for batch_images, batch_labels in dataset:
        images.append(batch_images.numpy())
        kept.append(batch_labels.numpy())
    if not images:
        raise UserError(f"none of the {len(files)} image files could be decoded")
    images, kept = np.concatenate(images), np.concatenate(kept)
    return images.astype(np.float32), kept.astype(np.int32), len(files) - len(images)


def held_out_split(count: int, seed: int = FOLDER_SPLIT_SEED) -> tuple[np.ndarray, ...]:
    """(train, validation, test) indices: 10 % each held out (at least one), fixed seed."""
    held = max(1, round(HELD_OUT_FRACTION * count))
    if count < 2 * held + 1:
        raise UserError(f"{count} image(s) are too few: need at least 3 (train, validation, test)")
    order = np.random.default_rng(seed).permutation(count)
    return order[2 * held:], order[:held], order[held:2 * held]


def shape_masks(shape: np.ndarray, scale: np.ndarray, rotation: np.ndarray, x: np.ndarray,
                y: np.ndarray, size: int, supersample: int = 2) -> np.ndarray:
    """Anti-aliased coverage (N, size, size) of each shape: the fraction of a pixel's
    supersample² sub-pixels inside it. `scale` is the circumradius as a fraction of the
    image side, (x, y) the centre in [0, 1], `rotation` in radians."""
    n = size * supersample
    grid = (np.arange(n, dtype=np.float32) + 0.5) / n
    u = grid[None, None, :] - x[:, None, None]
    v = grid[None, :, None] - y[:, None, None]
    cos, sin = np.cos(rotation)[:, None, None], np.sin(rotation)[:, None, None]
    p = (cos * u + sin * v) / scale[:, None, None]
    q = (-sin * u + cos * v) / scale[:, None, None]
    square = np.maximum(np.abs(p), np.abs(q)) <= 1 / math.sqrt(2)
    circle = p ** 2 + q ** 2 <= 0.75 ** 2  # about the square's area
    # An equilateral triangle of circumradius 1: inside all three edges at distance ½.
    triangle = np.ones_like(square)
    for angle in (math.pi / 2, math.pi / 2 + 2 * math.pi / 3, math.pi / 2 + 4 * math.pi / 3):
        triangle &= p * math.cos(angle) + q * math.sin(angle) >= -0.5
    inside = np.choose(shape[:, None, None], [square, circle, triangle])
    return inside.reshape(-1, size, supersample, size, supersample).mean(axis=(2, 4))


def shapes_arrays(count: int, size: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """`count` images (count, size, size, 3) float32 on the 8-bit grid and their factors."""
    rng = np.random.default_rng(seed)
    factors = {"shape": rng.integers(0, len(SHAPE_NAMES), count),
               "colour": rng.integers(0, len(COLOURS), count),
               "scale": rng.uniform(0.15, 0.3, count).astype(np.float32),
               "rotation": rng.uniform(0, math.pi / 2, count).astype(np.float32)}
    # The whole shape stays inside the image whatever its scale.
    factors["x"] = rng.uniform(0.3, 0.7, count).astype(np.float32)
    factors["y"] = rng.uniform(0.3, 0.7, count).astype(np.float32)
    images = np.empty((count, size, size, 3), np.float32)
    for start in range(0, count, 500):  # chunks bound the supersampled grids' memory
        part = slice(start, start + 500)
        masks = shape_masks(factors["shape"][part], factors["scale"][part],
                            factors["rotation"][part], factors["x"][part], factors["y"][part], size)
        images[part] = masks[..., None] * COLOURS[factors["colour"][part]][:, None, None, :]
    return np.round(images * 255.0) / 255.0, factors
