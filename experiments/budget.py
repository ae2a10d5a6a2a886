"""Quality against training time: the comparison's budget points (--points).

Rankings change with the budget (Lucic et al., "Are GANs Created Equal?", 2018), so a
reader choosing an approach needs quality as a function of compute. With `--points 5 15
30 --minutes 60` experiments.compare trains each run in segments that end at 5, 15, 30
and 60 minutes of training steps (`--max-minutes` of each, the later ones `--resume`d: a
run's budget counts all its training, so this is one run, not four) and scores the run
after each segment with the final table's samples, references and metrics. Here: the
scores kept in each run (so `--resume` need not score a point twice, and the final table,
the last point's, needs no network: a study kept in git without its weights reports and
goes on), the rows at each point, the curves figure (mean over seeds, band from their
minimum to their maximum) and the picture of each model's samples at each point; report.py
writes the per-point tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from common.files import atomic_write, read_json, write_json
from common.plots import image_grid, plt, save_figure
from experiments.figures import seed_band, show
from experiments.table import summarize_row

# (summary key, axis label) drawn against training time, each when some model has it.
CURVES = (("fid", "FID ↓"), ("kid", "KID ↓"), ("recall", "recall ↑"), ("coverage", "coverage ↑"),
          ("test_nll", "test NLL (nats) ↓"), ("test_bits_per_dim", "test bits/dim (8-bit) ↓"))
SAMPLES_PER_CELL = 16  # in samples_by_time.png
KEPT_SAMPLES = 64  # kept with each point's scores: the final point's fill samples.png


def point_key(minutes: float) -> str:
    """A point as metrics.json names it: 5.0 → "5", 2.5 → "2.5"."""
    return f"{minutes:g}"


def point_files(folder: Path, minutes: float) -> tuple[Path, Path]:
    """Where a run keeps its scores and first samples at a point: points/<minutes>.json, .npz."""
    return (folder / "points" / f"{point_key(minutes)}.json",
            folder / "points" / f"{point_key(minutes)}.npz")


def save_point(folder: Path, minutes: float, numbers: dict[str, Any], images: np.ndarray) -> None:
    """Keep a point's scores and first samples in the run, so `compare --resume` (or a
    comparison of other seeds) need not score it again, nor load the run's weights: the
    points are what a study keeps in git (8-bit images, compressed, ~20 kB a point). The
    images first: the JSON's presence means the point is complete."""
    numbers_file, images_file = point_files(folder, minutes)
    with atomic_write(images_file) as handle:
        np.savez_compressed(handle, images=np.round(255 * np.asarray(images[:KEPT_SAMPLES])).astype(np.uint8))
    write_json(numbers_file, numbers)


def load_point(folder: Path, minutes: float) -> tuple[dict[str, Any], np.ndarray] | None:
    """(scores, first samples) kept by `save_point`, or None when the point was not scored."""
    numbers_file, images_file = point_files(folder, minutes)
    if not numbers_file.is_file():
        return None
    with np.load(images_file) as stored:
        images = stored["images"]
    return read_json(numbers_file, "point scores"), (images / 255 if images.dtype == np.uint8 else images).astype(
        np.float32)


class PointRows:
    """Every model's per-seed numbers and first-seed images at each point of training time."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, dict[str, Any]]] = {}
        self.images: dict[str, dict[str, np.ndarray]] = {}

    def add(self, minutes: float, name: str, numbers: dict[str, Any], images: np.ndarray) -> None:
        key = point_key(minutes)
        self.rows.setdefault(key, {}).setdefault(name, {"seeds": []})["seeds"].append(numbers)
        self.images.setdefault(key, {}).setdefault(name, images)

    def summarised(self) -> dict[str, dict[str, dict[str, Any]]]:
        """{point: {model: {"seeds", "summary"}}}, as metrics.json keeps them."""
        return {key: {name: {**row, "summary": summarize_row(row["seeds"])} for name, row in rows.items()}
                for key, rows in self.rows.items()}


def curves_figure(path: Path, point_rows: dict[str, dict[str, dict[str, Any]]]) -> None:
    """One panel per metric of `CURVES` that some model has: its mean over seeds against the
    minutes of training, with a band from the seeds' minimum to their maximum."""
    names = list(dict.fromkeys(name for rows in point_rows.values() for name in rows))
    drawn = [(key, label) for key, label in CURVES
             if any(key in row["summary"] for rows in point_rows.values() for row in rows.values())]
    figure, axes = plt.subplots(1, len(drawn), squeeze=False, figsize=(4.2 * len(drawn), 3.6))
    for ax, (key, label) in zip(axes.ravel(), drawn):
        for index, name in enumerate(names):  # a model keeps its colour in every panel
            series = [(float(minutes), rows[name]["summary"][key]["values"]) for minutes, rows in point_rows.items()
                      if name in rows and key in rows[name]["summary"]]
            if not series:
                continue
            per_seed = [([x for x, _ in series], [values[seed] for _, values in series])
                        for seed in range(min(len(values) for _, values in series))]
            x, mean, low, high = seed_band(per_seed)
            line, = ax.plot(x, mean, marker="o", label=name, color=f"C{index}")
            if len(per_seed) > 1:
                ax.fill_between(x, low, high, color=line.get_color(), alpha=0.25, linewidth=0)
        ax.set(title=label, xlabel="minutes of training steps")
        ax.grid(alpha=0.3)
    axes.ravel()[0].legend(fontsize=8)
    save_figure(figure, path)


def samples_figure(path: Path, images: dict[str, dict[str, np.ndarray]]) -> None:
    """A row per model, a column per point: the first seed's first samples at that time."""
    points = list(images)
    names = list(dict.fromkeys(name for cells in images.values() for name in cells))
    figure, axes = plt.subplots(len(names), len(points), squeeze=False,
                                figsize=(0.4 + 1.9 * len(points), 2.0 * len(names)))
    for row, name in enumerate(names):
        for column, key in enumerate(points):
            ax = axes[row, column]
            ax.axis("off")
            if name in images[key]:
                show(ax, image_grid(images[key][name][:SAMPLES_PER_CELL], 4))
            ax.set_title(f"{float(key):.3g} min", fontsize=8)
        axes[row, 0].text(-0.06, 0.5, name, transform=axes[row, 0].transAxes, rotation=90, ha="right",
                          va="center", fontsize=8)
    save_figure(figure, path, dpi=100)


def budget_figures(out: Path, point_rows: dict[str, dict[str, dict[str, Any]]],
                   images: dict[str, dict[str, np.ndarray]]) -> list[tuple[str, str]]:
    """Write budget_curves.png and samples_by_time.png into `out`; (caption, file name) of each."""
    curves_figure(out / "budget_curves.png", point_rows)
    samples_figure(out / "samples_by_time.png", images)
    return [("Quality against minutes of training (mean over seeds, band: min to max)", "budget_curves.png"),
            ("Samples after each point of training time (first seed)", "samples_by_time.png")]
