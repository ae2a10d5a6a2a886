"""A sky/not-sky label mask for --style-mask: `python -m experiments.scripts.nst_sky_mask --photo PHOTO --out OUT.png`.

Sky = blue, fairly bright pixels (B > R + 0.08 and B > 0.45), opened to drop specks, kept
only in connected pieces of at least 2 % of the image, then closed to fill small holes.
White = sky, black = the rest: with `--style-mask OUT.png` the first style paints the rest
(black, darkest first) and the second the sky.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from common.config import parse_settings, setting
from common.errors import UserError, run_cli
from common.images import SAVE_FORMATS, load_image, save_image


@dataclass
class Settings:
    photo: str | None = setting(None, "the photo whose sky is masked (required)")
    out: str | None = setting(None, "the mask to write: .png, .jpg or .jpeg (required)")

    def validate(self) -> None:
        if not (self.photo and self.out):
            raise UserError("needs --photo PHOTO and --out OUT.png")
        if Path(self.out).suffix.lower() not in SAVE_FORMATS:
            raise UserError(f"--out {self.out}: write a {', '.join(SAVE_FORMATS)} picture")


def sky_mask(photo: np.ndarray) -> np.ndarray:
    red, blue = photo[..., 0], photo[..., 2]
    sky = ndimage.binary_opening((blue > red + 0.08) & (blue > 0.45), iterations=3)
    pieces, count = ndimage.label(sky)
    sizes = ndimage.sum(sky, pieces, range(1, count + 1))
    sky = np.isin(pieces, 1 + np.flatnonzero(sizes > 0.02 * sky.size))
    return ndimage.binary_closing(sky, iterations=5).astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0],
                              prog="python -m experiments.scripts.nst_sky_mask")
    save_image(settings.out, sky_mask(load_image(settings.photo)))
    print(f"wrote {settings.out}")


if __name__ == "__main__":
    run_cli(main)
