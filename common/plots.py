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
from common.images import save_image, to_uint8


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


def write_samples(out: str | os.PathLike, images: np.ndarray, columns: int | None = None, zoom: int = 1) -> None:
    """Samples (N, H, W, C) in [0, 1] to `out`, atomically: a .npz with `images` uint8
    ((N, H, W) grey, (N, H, W, 3) colour), else an image grid, each pixel `zoom`² pixels."""
    if str(out).lower().endswith(".npz"):
        buffer = io.BytesIO()
        np.savez_compressed(buffer, images=to_uint8(images[..., 0] if images.shape[-1] == 1 else images))
        with atomic_write(out) as handle:
            handle.write(buffer.getvalue())
        return
    grid = image_grid(images, columns)
    save_image(out, np.repeat(np.repeat(grid, zoom, axis=0), zoom, axis=1))


def save_figure(figure: plt.Figure, path: str | os.PathLike, dpi: int = 120) -> None:
    """Write a matplotlib figure atomically, as JPEG (quality 90) for a .jpg/.jpeg path, else
    as PNG, and close it."""
    buffer = io.BytesIO()
    jpeg = str(path).lower().endswith((".jpg", ".jpeg"))
    figure.savefig(buffer, format="jpg" if jpeg else "png", dpi=dpi, bbox_inches="tight",
                   pil_kwargs={"quality": 90} if jpeg else None)
    plt.close(figure)
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())


def plot_curves(path: str | os.PathLike, curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                title: str = "", xlabel: str = "step", ylabel: str = "loss",
                log_y: bool = False, xlim: tuple[float, float] | None = None,
                vertical_lines: Mapping[str, float] | None = None) -> None:
    """One line per named (x, y) series, written to `path` as PNG; `vertical_lines` are
    dotted grey marks at named x values (a budget, a deadline)."""
    figure, axes = plt.subplots(figsize=(6, 4))
    for label, (x, y) in curves.items():
        axes.plot(list(x), list(y), label=label)
    for label, x in (vertical_lines or {}).items():
        axes.axvline(x, color="grey", linestyle=":", label=label)
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if xlim is not None:
        axes.set_xlim(*xlim)
    if log_y:
        axes.set_yscale("log")
    axes.grid(alpha=0.3)
    if len(curves) + len(vertical_lines or {}) > 1:
        axes.legend(fontsize=8)
    save_figure(figure, path)


def titled_images(path: str | os.PathLike, images: Mapping[str, np.ndarray],
                  columns: int = 3) -> None:
    """The (H, W, 3) images in [0, 1] side by side, each under its name, written to `path`."""
    rows = math.ceil(len(images) / columns)
    figure, grid = plt.subplots(rows, columns, figsize=(4 * columns, 3.3 * rows), squeeze=False)
    for axes, (title, image) in zip(grid.flat, images.items()):
        axes.imshow(image)
        axes.set_title(title, fontsize=9)
    for axes in grid.flat:
        axes.axis("off")
    save_figure(figure, path)
