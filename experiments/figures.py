"""The comparison's figures, as PNG files: sample panels, nearest training neighbours,
latent interpolations and training curves. Images are (N, H, W, C) in [0, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.plots import image_grid, plt, save_figure
from experiments.models import Model

MARKER_LIMIT = 30  # curves with at most this many points show each point


def show(ax: plt.Axes, grid: np.ndarray) -> None:
    """Draw an image grid (H, W, C): grey levels for one channel, colour for three."""
    if grid.shape[-1] == 1:
        ax.imshow(grid[..., 0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(np.clip(grid, 0.0, 1.0))


def grid_panels(path: Path, panels: dict[str, np.ndarray], columns: int = 8,
                per_row: int = 5) -> None:
    """Image grids side by side, each titled, `per_row` to a row."""
    rows = -(-len(panels) // per_row)
    figure, axes = plt.subplots(rows, min(per_row, len(panels)), squeeze=False,
                                figsize=(2.4 * min(per_row, len(panels)), 2.7 * rows))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, images) in zip(axes.ravel(), panels.items()):
        show(ax, image_grid(images[:columns * columns], columns))
        ax.set_title(title, fontsize=9)
    save_figure(figure, path, dpi=100)


def nearest_neighbours(path: Path, title: str, samples: np.ndarray, train: np.ndarray,
                       count: int = 5) -> None:
    """Each row: a sample, then its `count` nearest training images in pixel space (L2)."""
    flat_train = train.reshape(len(train), -1)
    norms = (flat_train ** 2).sum(axis=1)
    rows = []
    for image in samples:
        distances = norms - 2.0 * flat_train @ image.ravel()
        rows += [image, *train[np.argsort(distances)[:count]]]
    grid = image_grid(np.stack(rows), count + 1)
    figure, ax = plt.subplots(figsize=(3.2, 0.55 * len(samples) + 0.4))
    show(ax, grid)
    ax.set_title(f"{title}: sample | {count} nearest training images", fontsize=8)
    ax.axvline(grid.shape[1] / (count + 1) - 0.5, color="tab:red", linewidth=1.5)
    ax.axis("off")
    save_figure(figure, path, dpi=100)


def interpolation_panel(path: Path, models: list[Model], rows: int = 4) -> None:
    """One panel per model: `rows` walks of 10 images through its latent space."""
    figure, axes = plt.subplots(len(models), 1, figsize=(5, 2.3 * len(models)))
    for ax, model in zip(np.atleast_1d(axes), models):
        show(ax, image_grid(model.sampler.interpolations(rows), 10))
        caption = model.sampler.info.get("interpolation", "latent interpolation")
        ax.set_title(f"{model.name}: {caption}", fontsize=9)
        ax.axis("off")
    save_figure(figure, path, dpi=100)


def seed_band(series: list[tuple[list, list]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, mean, min, max) over seeds of one curve, each seed given as (x, y), on the x
    values every seed has (runs stopped by a time budget can differ in length)."""
    common = sorted(set.intersection(*(set(x) for x, _ in series)))
    values = np.array([[dict(zip(x, y))[point] for point in common] for x, y in series], np.float64)
    return np.array(common), values.mean(axis=0), values.min(axis=0), values.max(axis=0)


def training_curves(path: Path, groups: dict[str, list[Model]], per_row: int = 3) -> None:
    """One panel per model: the curves its family's sampler draws from its metrics, the mean
    over the model's seeds with a band from their minimum to their maximum."""
    rows = -(-len(groups) // per_row)
    columns = min(per_row, len(groups))
    figure, axes = plt.subplots(rows, columns, squeeze=False, figsize=(5 * columns, 3.5 * rows))
    for ax in axes.ravel()[len(groups):]:
        ax.axis("off")
    for ax, (name, models) in zip(axes.ravel(), groups.items()):
        drawn = [model.sampler.curves(model.metrics) for model in models]
        title, xlabel, _ = drawn[0]
        for label in drawn[0][2]:
            series = [curves[label] for _, _, curves in drawn if label in curves]
            x, mean, low, high = seed_band(series)
            line, = ax.plot(x, mean, marker="o" if len(x) <= MARKER_LIMIT else None,
                            label=label if len(series) == 1 else f"{label} (mean of {len(series)})")
            if len(series) > 1:
                ax.fill_between(x, low, high, color=line.get_color(), alpha=0.25, linewidth=0)
        ax.set(title=f"{name}: {title}", xlabel=xlabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    save_figure(figure, path)
