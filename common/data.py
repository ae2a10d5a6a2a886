"""Datasets as validated arrays (`Splits`) and `tf.data` pipelines, chosen by `--dataset` name.

`mnist`, `fashion_mnist` (here), `cifar10`, `folder:PATH` and `shapes` (`common.colour_datasets`);
`--image-size` and `--channels` resize and convert any of them (docs/datasets.md). The
names and the checks of these options are in `common.data_settings`.

Where the data comes from, in order: `--data-dir` (or the `DATA_DIR` environment
variable) holding the Keras-format `mnist.npz` / `fashion-mnist.npz` or the four IDX
files (`.gz` or raw); else Keras' own download and cache (`~/.keras/datasets`). What was
loaded is checked (shapes, dtype, labels) and, for MNIST, against the published array
fingerprints, so a wrong or corrupt copy is caught before training on it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from common.conditioning import class_count
from common.data_settings import (
    BINARIZATIONS,
    DATASETS,
    DEFAULT_IMAGE_SIZE,
    FOLDER_PREFIX,
    check_dataset,
    check_image_options,
)
from common.errors import UserError, first_line

EMOJI_FOLDER = "emoji"  # $DATA_DIR/emoji: Noto Color Emoji, 64 px RGBA, one folder per category
NPZ_NAMES = {"mnist": "mnist.npz", "fashion_mnist": "fashion-mnist.npz"}
IDX_NAMES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
SIZES = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28),
         "y_test": (10000,)}
# sha256 of each array's raw bytes: identical for any correct copy of MNIST.
MNIST_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
VALIDATION_SIZE = 10000
SPLIT_SEED = 1234  # fixed: the validation set must not change with the run's --seed


@dataclass(frozen=True)
class Splits:
    """Images as float32 (N, H, W, C) in [0, 1] and labels as int32 (N,) (−1: unlabelled).

    `classes` names the labels (empty when unknown); `factors` (only `shapes`) maps each
    split ("train", "validation", "test") to its factors of variation, name → (N,) array.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_validation: np.ndarray
    y_validation: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...] = ()
    factors: dict[str, dict[str, np.ndarray]] | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])


def resolve_data_dir(data_dir: str | None) -> Path | None:
    """`--data-dir` if given, else `$DATA_DIR`, else None (Keras' download/cache)."""
    chosen = data_dir or os.environ.get("DATA_DIR")
    return Path(chosen) if chosen else None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzipped): magic (0,0,0x08,ndim), big-endian dims, uint8 data."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise UserError(f"{path}: cannot read IDX file ({error})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise UserError(f"{path}: not an IDX file of unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if len(data) != header + int(np.prod(shape)):
        raise UserError(f"{path}: IDX file is truncated (expected {header + int(np.prod(shape))} "
                        f"bytes for shape {shape}, found {len(data)})")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _from_folder(name: str, folder: Path) -> dict[str, np.ndarray]:
    npz = folder / NPZ_NAMES[name]
    if npz.is_file():
        try:
            with np.load(npz, allow_pickle=False) as archive:
                missing = [key for key in SIZES if key not in archive.files]
                if missing:
                    raise UserError(f"{npz}: missing array(s) {', '.join(missing)}")
                return {key: archive[key] for key in SIZES}
        except UserError:
            raise
        except Exception as error:  # zipfile, OSError, ValueError: all mean a bad file
            raise UserError(f"{npz}: not a readable .npz archive ({error})") from None
    arrays = {}
    for key, stem in IDX_NAMES.items():
        candidates = [folder / f"{stem}.gz", folder / stem]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            raise UserError(f"{folder}: has neither {NPZ_NAMES[name]} nor {stem}[.gz]")
        arrays[key] = read_idx(found)
    return arrays


def _from_keras(name: str) -> dict[str, np.ndarray]:
    import keras

    loader = keras.datasets.mnist if name == "mnist" else keras.datasets.fashion_mnist
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as error:
        reason = first_line(error)
        raise UserError(f"cannot load {name}: no local copy and the download failed ({reason}); "
                        f"point DATA_DIR (or --data-dir) at a folder holding {NPZ_NAMES[name]} "
                        "or the four IDX files") from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def validate(name: str, arrays: dict[str, np.ndarray], source: str) -> None:
    """Shapes, dtype and label range; for MNIST also the sha256 of every array."""
    for key, shape in SIZES.items():
        array = arrays[key]
        if array.shape != shape or array.dtype != np.uint8:
            raise UserError(f"{source}: {key} has shape {array.shape} and dtype {array.dtype}, "
                            f"expected {shape} uint8")
    for key in ("y_train", "y_test"):
        if arrays[key].max() > 9:
            raise UserError(f"{source}: {key} has label {arrays[key].max()}, expected 0..9")
    if name == "mnist":
        for key, expected in MNIST_SHA256.items():
            if hashlib.sha256(arrays[key].tobytes()).hexdigest() != expected:
                raise UserError(f"{source}: {key} does not match the known MNIST fingerprint "
                                "(wrong or corrupt copy)")


def load_arrays(name: str, data_dir: str | None = None) -> dict[str, np.ndarray]:
    """The four uint8 arrays of `name`, from the data folder or Keras' cache, validated."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    folder = resolve_data_dir(data_dir)
    if folder is not None:
        if not folder.is_dir():
            raise UserError(f"data folder {folder} does not exist (from --data-dir or DATA_DIR)")
        arrays, source = _from_folder(name, folder), str(folder)
    else:
        arrays, source = _from_keras(name), f"Keras' {name} download"
    validate(name, arrays, source)
    return arrays


def adapt_images(images: np.ndarray, image_size: int | None, channels: int | None) -> np.ndarray:
    """Resize (antialiased) to image_size², convert to `channels`, keep the 8-bit grid."""
    if image_size is not None and images.shape[1:3] != (image_size, image_size):
        images = np.concatenate([tf.image.resize(images[i:i + 1000], (image_size, image_size),
                                                 antialias=True).numpy()
                                 for i in range(0, len(images), 1000)])
    if channels is not None and images.shape[-1] != channels:
        images = (np.repeat(images, 3, axis=-1) if channels == 3
                  else tf.image.rgb_to_grayscale(images).numpy())
    return (np.round(np.clip(images, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def load_splits(name: str, data_dir: str | None = None, validation_size: int = VALIDATION_SIZE,
                image_size: int | None = None, channels: int | None = None) -> Splits:
    """Train/validation/test splits of any `--dataset`; validation is carved from train with
    a fixed seed. `image_size`/`channels` None keep the dataset's own (folder:, shapes: 64, RGB)."""
    check_dataset(name)
    check_image_options(image_size, channels)
    if name.startswith(FOLDER_PREFIX):
        return _folder_splits(Path(name[len(FOLDER_PREFIX):]).expanduser(),
                              image_size or DEFAULT_IMAGE_SIZE, channels or 3)
    if name == "shapes":
        return _shapes_splits(image_size or DEFAULT_IMAGE_SIZE, channels)
    if name == "emoji":
        return _folder_splits(emoji_folder(data_dir), image_size or DEFAULT_IMAGE_SIZE, channels or 3)
    if name == "cifar10":
        from common.colour_datasets import CIFAR_CLASSES, cifar10_arrays

        folder = resolve_data_dir(data_dir)
        if folder is not None and not folder.is_dir():
            raise UserError(f"data folder {folder} does not exist (from --data-dir or DATA_DIR)")
        arrays, classes = cifar10_arrays(folder), CIFAR_CLASSES
        validation_size = min(validation_size, len(arrays["x_train"]) // 5)
    else:
        arrays, classes = load_arrays(name, data_dir), ()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(arrays["x_train"]))
    validation, train = order[:validation_size], order[validation_size:]

    def images(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32) / 255.0
        return adapt_images(x if x.ndim == 4 else x[..., None], image_size, channels)

    labels = {key: arrays[key].astype(np.int32) for key in ("y_train", "y_test")}
    return Splits(images(arrays["x_train"][train]), labels["y_train"][train],
                  images(arrays["x_train"][validation]), labels["y_train"][validation],
                  images(arrays["x_test"]), labels["y_test"], classes)


def load_training_splits(settings: Any) -> Splits:
    """`load_splits` of a trainer's --dataset, --data-dir, --image-size and --channels, refused
    with one line before anything is written when --batch-size exceeds the training set or
    --conditional meets unlabelled images."""
    splits = load_splits(settings.dataset, settings.data_dir, image_size=settings.image_size,
                         channels=settings.channels)
    if settings.batch_size > len(splits.x_train):
        raise UserError(f"--batch-size: {settings.batch_size} is larger than the training set "
                        f"({len(splits.x_train)} images)")
    if settings.conditional:
        class_count(splits.y_train)
    return splits


def emoji_folder(data_dir: str | None) -> Path:
    """$DATA_DIR/emoji (or --data-dir's), else a one-line `UserError` naming what is missing."""
    folder = resolve_data_dir(data_dir)
    if folder is None:
        raise UserError("--dataset emoji: DATA_DIR is unset; point it (or --data-dir) at the folder "
                        "that holds emoji/ (../shared/assets)")
    if not (folder / EMOJI_FOLDER).is_dir():
        raise UserError(f"--dataset emoji: {folder} holds no {EMOJI_FOLDER}/ folder (from --data-dir or DATA_DIR)")
    return folder / EMOJI_FOLDER


def _folder_splits(root: Path, image_size: int, channels: int) -> Splits:
    from common.colour_datasets import decode_folder, folder_files, held_out_split

    files, labels, classes, ignored = folder_files(root)
    images, labels, skipped = decode_folder(files, labels, image_size, channels)
    print(f"folder:{root}: {len(images)} images, {len(classes) or 'no'} classes; skipped "
          f"{skipped} file(s) that did not decode and {ignored} non-image file(s)", flush=True)
    train, validation, test = held_out_split(len(images))
    return Splits(images[train], labels[train], images[validation], labels[validation],
                  images[test], labels[test], classes)


def _shapes_splits(image_size: int, channels: int | None) -> Splits:
    from common.colour_datasets import SHAPE_NAMES, SHAPES_SEED, SHAPES_SIZES, shapes_arrays

    parts, factors = {}, {}
    for offset, (split, count) in enumerate(SHAPES_SIZES.items()):
        images, factors[split] = shapes_arrays(count, image_size, SHAPES_SEED + offset)
        parts[split] = (adapt_images(images, None, channels),
                        factors[split]["shape"].astype(np.int32))
    return Splits(*parts["train"], *parts["validation"], *parts["test"], SHAPE_NAMES, factors)


def binarize_static(images: np.ndarray) -> np.ndarray:
    """Threshold at 0.5: the same binary image every epoch."""
    return (np.asarray(images) > 0.5).astype(np.float32)


TEST_BINARIZATION_SEED = 2015  # one fixed binary test set, the same for every run, epoch and family


def binary_test_images(images: np.ndarray, binarize: str) -> np.ndarray:
    """A held-out set as models are scored on it: binarized once, with a fixed seed.

    Dynamic binarization draws one Bernoulli sample of each image (the protocol of Burda
    et al.), so every epoch, run and family (the VAE's bound, PixelCNN's exact NLL) is
    scored on the same binary images.
    """
    if binarize == "dynamic":
        noise = np.random.default_rng(TEST_BINARIZATION_SEED).uniform(size=images.shape)
        return (noise < images).astype(np.float32)
    if binarize == "static":
        return binarize_static(images)
    return images


def binarize_dynamic(images: tf.Tensor, seed: tf.Tensor | None = None) -> tf.Tensor:
    """A fresh Bernoulli sample with the grey levels as probabilities.

    Called inside the input pipeline, it gives a new binary image every epoch
    (Salakhutdinov & Murray 2008), the usual protocol for MNIST likelihoods.
    """
    if seed is None:
        noise = tf.random.uniform(tf.shape(images), dtype=images.dtype)
    else:
        noise = tf.random.stateless_uniform(tf.shape(images), seed=seed, dtype=images.dtype)
    return tf.cast(noise < images, images.dtype)


def make_dataset(images: np.ndarray, labels: np.ndarray | None = None, batch_size: int = 128,
                 shuffle: bool = False, binarize: str = "none", seed: int = 0,
                 drop_remainder: bool = False, repeat: bool = False) -> tf.data.Dataset:
    """cache → shuffle (reshuffled every epoch) → batch → binarize → prefetch.

    `binarize`: "dynamic" (fresh sample per epoch), "static" (threshold 0.5) or "none".
    Elements are `images` or `(images, labels)` batches.
    """
    if binarize not in BINARIZATIONS:
        raise UserError(f"unknown binarization {binarize!r}; choose one of {', '.join(BINARIZATIONS)}")
    if batch_size <= 0 or batch_size > len(images):
        raise UserError(f"batch size {batch_size} must be between 1 and the number of "
                        f"examples ({len(images)})")
    if binarize == "static":
        images = binarize_static(images)
    elements = images if labels is None else (images, labels)
    dataset = tf.data.Dataset.from_tensor_slices(elements).cache()
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if binarize == "dynamic":
        # A seeded random stream that is re-randomized every epoch: reproducible for a
        # given --seed, yet a new binary sample of each image every time it is seen.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(_binarize_element,
                                                           num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _binarize_element(batch, seed):
    if isinstance(batch, tuple):
        return binarize_dynamic(batch[0], seed), batch[1]
    return binarize_dynamic(batch, seed)
