"""Write any `--dataset` out as a folder of PNGs: `python -m experiments.scripts.export_images
--dataset shapes --image-size 64 --out DIR`.

The result is what `--dataset folder:DIR` reads: one sub-folder per class (so the labels
come back), files named `<split>_<index>.png`. It is how the docs train on `folder:` with
images whose content is known (the `shapes` runs of docs/gan.md and docs/vae.md), and how
a researcher can look at a dataset file by file. The folder appears whole or not at all:
the files go to a temporary folder beside DIR, renamed to DIR at the end.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from common.config import parse_settings, setting
from common.data import load_splits
from common.data_settings import DATASET_NAMES, check_dataset, check_image_options
from common.errors import UserError, run_cli
from common.images import to_uint8

SPLITS = ("train", "validation", "test")


def export_split(folder: Path, split: str, images: np.ndarray, labels: np.ndarray,
                 classes: tuple[str, ...]) -> None:
    """`images` (N, H, W, C) in [0, 1] → folder/<class>/<split>_<index>.png (no class
    sub-folder when the dataset is unlabelled)."""
    for index, (image, label) in enumerate(zip(to_uint8(images), labels)):
        target = folder / classes[label] if classes and label >= 0 else folder
        target.mkdir(exist_ok=True)
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
            target / f"{split}_{index:06d}.png")


@dataclass
class Settings:
    dataset: str | None = setting(None, " | ".join(DATASET_NAMES) + " (required)")
    image_size: int | None = setting(None, "side in pixels (unset: the dataset's own)")
    channels: int | None = setting(None, "1 or 3 (unset: the dataset's own)")
    data_dir: str | None = setting(None, "where the dataset's files are (unset: $DATA_DIR)")
    splits: list[str] = setting(list(SPLITS), "which splits to write", choices=SPLITS)
    out: str | None = setting(None, "folder to create; must not exist (required)")

    def validate(self) -> None:
        if not self.dataset or not self.out:
            raise UserError("needs --dataset NAME and --out DIR (a folder that does not exist yet)")
        check_dataset(self.dataset)
        check_image_options(self.image_size, self.channels)


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(Settings, argv, __doc__.split("\n\n")[0],
                              prog="python -m experiments.scripts.export_images")
    out = Path(settings.out).expanduser()
    if out.exists():
        raise UserError(f"{out} already exists; choose a new folder")
    splits = load_splits(settings.dataset, settings.data_dir, image_size=settings.image_size,
                         channels=settings.channels)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        for split in settings.splits:
            images, labels = getattr(splits, f"x_{split}"), getattr(splits, f"y_{split}")
            export_split(partial, split, images, labels, splits.classes)
            print(f"{split}: {len(images)} images")
        partial.chmod(0o755)
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    print(f"wrote {out} ({len(splits.classes) or 'no'} class sub-folders)")


if __name__ == "__main__":
    run_cli(main)
