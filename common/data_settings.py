"""The `--dataset` names and image options every trainer takes, checked without loading data.

Without TensorFlow, so that a trainer's `--help` and a bad flag answer before it loads
(`common.data` loads the images and builds the `tf.data` pipelines).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.config import setting
from common.errors import UserError
from common.files import read_json
from common.networks import conv_levels

DATASETS = ("mnist", "fashion_mnist")  # the digit-like sets of IDX/npz files (and classifiers)
DATASET_NAMES = (*DATASETS, "cifar10", "shapes", "emoji", "folder:PATH")
FOLDER_PREFIX = "folder:"
DEFAULT_IMAGE_SIZE = 64  # folder: and shapes when --image-size is not given
CHANNELS = (1, 3)
BINARIZATIONS = ("dynamic", "static", "none")
RECIPES = Path(__file__).resolve().parent.parent / "recipes"
RECIPE_NAMES = ("colour", "paper")  # --recipe: recipes/<family>/colour.json, or the plain defaults


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


def default_recipe(family: str, values: dict[str, Any]) -> dict[str, Any]:
    """The settings that go under what the user gave (`values`: config and flags): those of
    recipes/<family>/colour.json for `--recipe colour`, and by default on colour data (any
    dataset but the digits, or `--channels 3`); none for `--recipe paper` and the digits.
    `recipe` in the result names what was chosen."""
    recipe = values.get("recipe")
    if recipe is None:
        grey = values.get("channels") == 1 or (values.get("dataset", "mnist") in DATASETS
                                               and values.get("channels") is None)
        recipe = "paper" if grey else "colour"
    if recipe == "paper":
        return {"recipe": "paper"}
    return {**read_json(recipe_file(family, recipe), "recipe file"), "recipe": recipe}


def recipe_file(family: str, recipe: str) -> Path:
    return RECIPES / family / f"{recipe}.json"


def announce_recipe(settings: Any, family: str, paper: str) -> None:
    """Say at start which recipe the settings came from and how to get the paper's plain
    defaults (`paper`: whose they are), unless --quiet."""
    if settings.recipe not in (None, "paper") and not settings.quiet:
        path = recipe_file(family, settings.recipe).relative_to(RECIPES.parent)
        print(f"recipe: {settings.recipe} ({path}; flags override it); --recipe paper for {paper}", flush=True)
