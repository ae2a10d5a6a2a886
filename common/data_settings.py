"""The `--dataset` names and image options every trainer takes, checked without loading data.

Without TensorFlow, so that a trainer's `--help` and a bad flag answer before it loads
(`common.data` loads the images and builds the `tf.data` pipelines).
"""

from __future__ import annotations

from dataclasses import dataclass

from common.config import setting
from common.errors import UserError
from common.networks import conv_levels

DATASETS = ("mnist", "fashion_mnist")  # the digit-like sets of IDX/npz files (and classifiers)
DATASET_NAMES = (*DATASETS, "cifar10", "shapes", "emoji", "folder:PATH")
FOLDER_PREFIX = "folder:"
DEFAULT_IMAGE_SIZE = 64  # folder: and shapes when --image-size is not given
CHANNELS = (1, 3)
BINARIZATIONS = ("dynamic", "static", "none")


def check_dataset(name: str) -> None:
    """A known `--dataset` name, or a one-line `UserError`."""
    if name in DATASETS or name in ("cifar10", "shapes", "emoji"):
        return
    if name.startswith(FOLDER_PREFIX) and len(name) > len(FOLDER_PREFIX):
        return
    raise UserError(f"--dataset: unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}")


def check_image_options(image_size: int | None, channels: int | None) -> None:
    """--image-size must be a positive multiple of 4 (two stride-2 halvings); --channels 1 or 3."""
    if image_size is not None and (image_size < 4 or image_size % 4):
        raise UserError(f"--image-size: {image_size} is not a multiple of 4 (the networks halve "
                        "the image at least twice)")
    if channels is not None and channels not in CHANNELS:
        raise UserError(f"--channels: {channels} is not 1 (grey) or 3 (RGB)")


@dataclass
class ImageDataSettings:
    """The images a trainer learns from (docs/datasets.md); each trainer's settings mix it in."""

    dataset: str = setting("mnist", "training images: mnist, fashion_mnist, cifar10, shapes or "
                                    "folder:PATH (docs/datasets.md)")
    data_dir: str | None = setting(None, "folder holding the dataset files (default: $DATA_DIR, "
                                         "else Keras' download)")
    image_size: int | None = setting(None, "resize images to this square size, a multiple of 4 "
                                           "(unset: the dataset's own; 64 for folder: and shapes)")
    channels: int | None = setting(None, "1 (grey) or 3 (RGB); unset: the dataset's own",
                                   choices=CHANNELS)

    def check_images(self, arch: str) -> None:
        """The dataset, the image options and `arch` against the image shape: refused with
        one line before any data is made or read."""
        check_dataset(self.dataset)
        check_image_options(self.image_size, self.channels)
        conv_levels(image_shape_of(self.dataset, self.image_size, self.channels), arch)


def image_shape_of(name: str, image_size: int | None = None,
                   channels: int | None = None) -> tuple[int, int, int]:
    """The (H, W, C) that `common.data.load_splits(name, image_size=…, channels=…)` gives,
    without loading."""
    check_dataset(name)
    if name in DATASETS:
        native = (28, 1)
    elif name == "cifar10":
        native = (32, 3)
    else:
        native = (DEFAULT_IMAGE_SIZE, 3)
    size = image_size or native[0]
    return size, size, channels or native[1]
