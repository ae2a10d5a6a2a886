"""The AdaIN pictures of docs/nst.md: `python -m experiments.scripts.adain_figures --model M.keras`.

Every result goes through `nst.adain`'s own command line (`nst.adain.main`, so each line
printed is a command a user can run), then the results are laid side by side:
- adain_unseen.png: content | a style never seen in training | result | with --preserve-color;
- adain_alpha.png: the content–style trade-off α = 0, 0.25, 0.5, 0.75, 1;
- adain_interpolation.png: style A | weights (1,0) … (0,1) | style B;
- adain_mask.png: mask | two styles by region | one style by region, the rest unstylised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import common  # noqa: F401  (quiets TensorFlow before it loads)

# isort: split
import numpy as np

from common.config import parse_settings, setting
from common.errors import UserError, run_cli
from common.images import load_image, resize, save_image
from common.plots import image_grid
from nst import adain

MIN_SIDE = 16  # nst.adain stylize's smallest --size and --style-size
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
WEIGHTS = ((1.0, 0.0), (0.75, 0.25), (0.5, 0.5), (0.25, 0.75), (0.0, 1.0))


def stylized(model: str, content: Path, styles: list[Path], output: Path, *options: str) -> np.ndarray:
    """Run `nst.adain stylize` (printing the command) and return its output image."""
    argv = ["stylize", "--model", model, "--content", str(content), "--style",
            *map(str, styles), "--output", str(output), "--quiet", *options]
    print("python -m nst.adain " + " ".join(argv), flush=True)
    adain.main(argv)
    return load_image(output)


def strip(images: list[np.ndarray], height: int) -> np.ndarray:
    """Images scaled to one height (aspect kept), centred on white cells of the widest, in a row."""
    scaled = [resize(image, height, round(image.shape[1] * height / image.shape[0]))
              for image in images]
    width = max(image.shape[1] for image in scaled)
    cells = np.ones((len(scaled), height, width, 3), np.float32)
    for cell, image in zip(cells, scaled):
        left = (width - image.shape[1]) // 2
        cell[:, left:left + image.shape[1]] = image
    return image_grid(cells, len(cells))


@dataclass
class Settings:
    model: str | None = setting(None, "a trained AdaIN model (.keras) (required)")
    size: int = setting(384, "long side of the content", min=MIN_SIDE)
    style_size: int = setting(256, "long side of the styles", min=MIN_SIDE)
    out: str = setting("experiments/results/nst", "folder for the four pictures")
    work: str = setting("runs/adain_figures", "folder for each stylised image and the mask")

    def validate(self) -> None:
        if not self.model:
            raise UserError("--model: a trained AdaIN model (.keras) is required")


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0],
                              prog="python -m experiments.scripts.adain_figures")
    if "DATA_DIR" not in os.environ:
        raise UserError("set DATA_DIR to the shared assets (its images/ hold tubingen.jpg, "
                        "starry_night.jpg and woman-with-hat-matisse.jpg)")
    images = Path(os.environ["DATA_DIR"]) / "images"
    content, unseen, seen = (images / "tubingen.jpg", images / "woman-with-hat-matisse.jpg",
                             images / "starry_night.jpg")
    work, out = Path(settings.work), Path(settings.out)
    sizes = ("--size", str(settings.size), "--style-size", str(settings.style_size))
    photo = load_image(content)
    alphas = [stylized(settings.model, content, [unseen], work / f"alpha_{a}.png", *sizes, "--alpha", str(a))
              for a in ALPHAS]
    kept = stylized(settings.model, content, [unseen], work / "preserve_color.png", *sizes,
                    "--preserve-color")
    save_image(out / "adain_unseen.png", strip([photo, load_image(unseen), alphas[-1], kept], 256))
    save_image(out / "adain_alpha.png", strip(alphas, 192))
    mixed = [stylized(settings.model, content, [unseen, seen], work / f"mix_{w[0]}.png", *sizes,
                      "--weights", *map(str, w)) for w in WEIGHTS]
    save_image(out / "adain_interpolation.png",
               strip([load_image(unseen), *mixed, load_image(seen)], 160))
    mask = np.zeros((768, 1024, 3), np.float32)
    mask[:330] = 1.0  # the sky of the Tübingen photo
    save_image(work / "mask.png", mask)
    both = stylized(settings.model, content, [seen, unseen], work / "mask_two.png", *sizes,
                    "--mask", str(work / "mask.png"))
    one = stylized(settings.model, content, [seen], work / "mask_one.png", *sizes,
                   "--mask", str(work / "mask.png"))
    save_image(out / "adain_mask.png", strip([mask, both, one], 224))


if __name__ == "__main__":
    run_cli(main)
