"""Write any `--dataset` out as a folder of PNGs: `python -m experiments.scripts.export_images
--dataset shapes --image-size 64 --out DIR`.

The result is what `--dataset folder:DIR` reads: one sub-folder per class (so the labels
come back), files named `<split>_<index>.png`. It is how the docs train on `folder:` with
images whose content is known (the `shapes` runs of docs/gan.md and docs/vae.md), and how
a researcher can look at a dataset file by file. The folder appears whole or not at all:
the files go to a temporary folder beside DIR, renamed to DIR at the end.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from common.data import DATASET_NAMES, load_splits
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help=" | ".join(DATASET_NAMES))
    parser.add_argument("--image-size", type=int, help="side in pixels (unset: the dataset's own)")
    parser.add_argument("--channels", type=int, help="1 or 3 (unset: the dataset's own)")
    parser.add_argument("--data-dir", help="where the dataset's files are (default: $DATA_DIR)")
    parser.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS),
                        help="which splits to write")
    parser.add_argument("--out", required=True, help="folder to create; must not exist")
    args = parser.parse_args(argv)
    out = Path(args.out).expanduser()
    if out.exists():
        raise UserError(f"{out} already exists; choose a new folder")
    splits = load_splits(args.dataset, args.data_dir, image_size=args.image_size,
                         channels=args.channels)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        for split in args.splits:
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
