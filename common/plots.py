"""Figures as PNG files: image grids and training curves (matplotlib, Agg backend)."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt
import numpy as np

from common.files import atomic_write


def image_grid(images: np.ndarray, columns: int | None = None, padding: int = 2,
               pad_value: float = 1.0) -> np.ndarray:
    """Tile images (N, H, W) or (N, H, W, C) in [0, 1] into one (H', W', C) array.

    Rows are filled left to right; empty cells and the borders use `pad_value`.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"expected a non-empty batch of images, got shape {images.shape}")
    count, height, width, channels = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.full((rows * (height + padding) + padding, columns * (width + padding) + padding,
                    channels), pad_value, dtype=np.float32)
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        grid[top:top + height, left:left + width] = image
    return grid


def save_figure(figure: plt.Figure, path: str | os.PathLike, dpi: int = 120) -> None:
    """Write a matplotlib figure as PNG, atomically, and close it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())


def plot_curves(path: str | os.PathLike, curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                title: str = "", xlabel: str = "step", ylabel: str = "loss",
                log_y: bool = False) -> None:
    """One line per named (x, y) series, written to `path` as PNG."""
    figure, axes = plt.subplots(figsize=(6, 4))
    for label, (x, y) in curves.items():
        axes.plot(list(x), list(y), label=label)
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if log_y:
        axes.set_yscale("log")
    axes.grid(alpha=0.3)
    if len(curves) > 1:
        axes.legend()
    save_figure(figure, path)
