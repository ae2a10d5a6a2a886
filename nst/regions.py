"""Region masks for `--style-mask`: which style image paints which part of the output.

Plain NumPy, so bad masks are refused before TensorFlow loads. Two forms:
- one greyscale mask per style image (white = that style, black = not; grey = partly);
- one label image for several styles: its N distinct colours, darkest first (by the mean
  of R, G and B), pick styles 1…N. Save label images as PNG: JPEG blurs the labels.
Masks are drawn over the content image, so they must have its aspect ratio (any size).
"""

from __future__ import annotations

import numpy as np

from common.errors import UserError
from common.images import load_image, resize

ASPECT_TOLERANCE = 0.02  # relative: a mask saved at a rounded size still fits


def check_mask_count(masks: list[str], styles: int) -> None:
    """One mask per style image, or one label image for several: else a `UserError`."""
    if len(masks) != styles and not (len(masks) == 1 and styles > 1):
        raise UserError(f"--style-mask: got {len(masks)} mask(s) for {styles} style image(s); "
                        "give one per style image, or one label image")


def load_style_masks(paths: list[str], styles: int, content_shape: tuple[int, ...]) -> np.ndarray:
    """The masks as one (H, W, S) float array in [0, 1] at the first mask's size."""
    check_mask_count(paths, styles)
    images = [load_image(path) for path in paths]
    content_ratio = content_shape[0] / content_shape[1]
    for path, image in zip(paths, images):
        ratio = image.shape[0] / image.shape[1]
        if abs(ratio / content_ratio - 1.0) > ASPECT_TOLERANCE:
            raise UserError(f"--style-mask {path}: {image.shape[1]}x{image.shape[0]} has another "
                            f"aspect ratio than the content image "
                            f"({content_shape[1]}x{content_shape[0]})")
    if len(paths) == 1 and styles > 1:
        return label_masks(images[0], styles, paths[0])
    height, width = images[0].shape[:2]
    return np.stack([resize(image, height, width).mean(axis=-1) for image in images], axis=-1)


def label_masks(labels: np.ndarray, styles: int, path: str) -> np.ndarray:
    """A label image with exactly `styles` distinct colours → (H, W, S) one-hot masks."""
    colours, index = np.unique(labels.reshape(-1, labels.shape[-1]), axis=0, return_inverse=True)
    if len(colours) != styles:
        raise UserError(f"--style-mask {path}: a label image for {styles} styles needs exactly "
                        f"{styles} distinct colours, it has {len(colours)} (save it as PNG)")
    order = np.argsort(colours.mean(axis=1), kind="stable")  # darkest first
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    labels_ranked = rank[index.reshape(labels.shape[:2])]
    return (labels_ranked[..., None] == np.arange(styles)).astype(np.float32)


def masks_at(masks: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, S) masks resized to (height, width) → (S, height, width), as the objective takes."""
    return np.moveaxis(resize(masks, height, width), -1, 0)
