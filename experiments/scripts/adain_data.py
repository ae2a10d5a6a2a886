"""The offline training folders for `nst.adain`: `python -m experiments.scripts.adain_data --out DIR`.

No MS-COCO or WikiArt here (no internet): the photos and paintings are the few that exist on
this machine, the shared NST images in $DATA_DIR/images and the sample images that ship
inside installed packages (matplotlib, scikit-image's `skimage.data`, scikit-learn). Writes
DIR/content/ (photos), DIR/style/ (paintings and textures) and DIR/unseen/ (held out: never
in a training folder). Files from packages that are not installed are left out, with a note.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from common.config import parse_settings, setting
from common.errors import UserError, run_cli
from common.images import load_image, save_image

# (source, file) → folder. "assets" is $DATA_DIR/images, the others are installed packages.
FILES = {
    "content": [("assets", "golden_gate.jpg"), ("assets", "chicago.jpg"),
                ("matplotlib", "sample_data/grace_hopper.jpg"),
                ("skimage", "astronaut.png"), ("skimage", "chelsea.png"), ("skimage", "coffee.png"),
                ("skimage", "rocket.jpg"), ("skimage", "motorcycle_left.png"),
                ("skimage", "camera.png"), ("sklearn", "china.jpg"), ("sklearn", "flower.jpg")],
    "style": [("assets", "starry_night.jpg"), ("assets", "the_scream.jpg"), ("assets", "wave.jpg"),
              ("assets", "composition_vii.jpg"), ("assets", "shipwreck.jpg"),
              ("skimage", "ihc.png"), ("skimage", "hubble_deep_field.jpg"), ("skimage", "brick.png"),
              ("skimage", "gravel.png")],
    # Held out: the content photo and the style used for every picture in docs/nst.md.
    "unseen": [("assets", "tubingen.jpg"), ("assets", "woman-with-hat-matisse.jpg")],
}
PACKAGE_FOLDERS = {"matplotlib": ("matplotlib", "mpl-data"), "skimage": ("skimage", "data"),
                   "sklearn": ("sklearn", "datasets/images")}


def source_folder(source: str) -> Path | None:
    """Where `source`'s files are, or None when its package is not installed."""
    if source == "assets":
        return Path(os.environ.get("DATA_DIR", "../shared/assets")) / "images"
    package, inside = PACKAGE_FOLDERS[source]
    spec = importlib.util.find_spec(package)
    return None if spec is None else Path(spec.origin).parent / inside


@dataclass
class Settings:
    out: str | None = setting(None, "folder to write content/, style/, unseen/ to (required)")

    def validate(self) -> None:
        if not self.out:
            raise UserError("--out: a folder to write to is required")


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0],
                              prog="python -m experiments.scripts.adain_data")
    out = Path(settings.out)
    for folder, files in FILES.items():
        written = 0
        for source, name in files:
            base = source_folder(source)
            if base is None:
                print(f"note: {source} is not installed; skipping {name}")
                continue
            if not (base / name).is_file():
                raise UserError(f"{base / name}: missing (set DATA_DIR to the shared assets)")
            save_image(out / folder / f"{Path(name).stem}.png", load_image(base / name))
            written += 1
        print(f"{out / folder}: {written} images")


if __name__ == "__main__":
    run_cli(main)
