"""A sky/not-sky label mask for --style-mask: `python -m experiments.scripts.nst_sky_mask PHOTO OUT.png`.

Sky = blue, fairly bright pixels (B > R + 0.08 and B > 0.45), opened to drop specks, kept
only in connected pieces of at least 2 % of the image, then closed to fill small holes.
White = sky, black = the rest: with `--style-mask OUT.png` the first style paints the rest
(black, darkest first) and the second the sky.
"""

from __future__ import annotations

import sys

import numpy as np
from scipy import ndimage

from common.images import load_image, save_image


def sky_mask(photo: np.ndarray) -> np.ndarray:
    red, blue = photo[..., 0], photo[..., 2]
    sky = ndimage.binary_opening((blue > red + 0.08) & (blue > 0.45), iterations=3)
    pieces, count = ndimage.label(sky)
    sizes = ndimage.sum(sky, pieces, range(1, count + 1))
    sky = np.isin(pieces, 1 + np.flatnonzero(sizes > 0.02 * sky.size))
    return ndimage.binary_closing(sky, iterations=5).astype(np.float32)


if __name__ == "__main__":
    save_image(sys.argv[2], sky_mask(load_image(sys.argv[1])))
