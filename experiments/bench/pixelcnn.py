"""PixelCNN sampling speed: the cached sampler against the naive one, in samples per second.

    python -m experiments.bench.pixelcnn --out bench_pixelcnn.json
    python -m experiments.bench.pixelcnn --run runs/pixelcnn/mnist --samples 10000   # a trained run

Both samplers draw every value in raster order from the same uniforms (pixelcnn.sample).
The naive one runs the whole compiled network once per value (H·W·C passes per batch);
the cached one (Ramachandran et al. 2017) computes one column per layer per pixel and one
row per layer per row. After a warm-up batch (tracing), `--samples` images are drawn by
the cached sampler in batches of `--batch`, and the naive one is timed on `--naive-rows`
rows of a batch of `--naive-batch` and extrapolated to whole images (its cost per value is
constant). Without `--run`, an untrained network of the MNIST recipe's size is timed:
speed does not depend on the weights. Results are printed and written to `--out`.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from common.config import parse_settings, setting
from common.errors import run_cli
from common.files import read_json, write_json
from common.runs import library_versions
from pixelcnn.model import PixelCNN, build_pixelcnn
from pixelcnn.sample import CachedSampler, draw, load_pixelcnn, uniforms

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "pixelcnn" / "mnist.json"


@dataclass
class Settings:
    run: str | None = setting(None, "a pixelcnn.train run to time (default: an untrained network "
                                    "of recipes/pixelcnn/mnist.json's size on 28×28×1)")
    samples: int = setting(10000, "images the cached sampler draws", positive=True)
    batch: int = setting(1000, "images per cached batch", positive=True)
    naive_batch: int = setting(100, "images in the naive sampler's timed batch", positive=True)
    naive_rows: int = setting(2, "rows the naive sampler is timed on", positive=True)
    out: str | None = setting(None, "also write the results to this JSON file")


def model_of(settings: Settings) -> PixelCNN:
    if settings.run:
        return load_pixelcnn(settings.run)
    recipe = read_json(RECIPE, "recipe")
    return build_pixelcnn((28, 28, 1), recipe["likelihood"], recipe["arch"], recipe["features"],
                          recipe["layers"], recipe["kernel_size"])


def time_cached(model: PixelCNN, samples: int, batch: int) -> float:
    """Seconds to draw `samples` images, the graph traced beforehand."""
    sampler = CachedSampler(model)
    sampler(uniforms(min(batch, samples), model.image_shape, seed=0))
    started = time.perf_counter()
    for start in range(0, samples, batch):
        sampler(uniforms(min(batch, samples - start), model.image_shape, seed=1 + start))
    return time.perf_counter() - started


def time_naive(model: PixelCNN, batch: int, rows: int) -> float:
    """Seconds per image of the naive sampler, from `rows` rows of a `batch`-image canvas."""
    height, width, channels = model.image_shape
    canvas, uniform = np.zeros((batch, *model.image_shape), np.float32), uniforms(batch, model.image_shape, 0)
    forward = tf.function(model)
    forward(canvas)
    started = time.perf_counter()
    for i in range(rows):
        for j in range(width):
            for c in range(channels):
                logits = tf.reshape(forward(canvas)[:, i, j, c], (batch, -1))
                canvas[:, i, j, c] = draw(model.likelihood, logits, uniform[:, i, j, c]).numpy()
    return (time.perf_counter() - started) / rows * height / batch


def main(argv: list[str] | None = None) -> dict:
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0], prog="python -m experiments.bench.pixelcnn")
    model = model_of(settings)
    cached = time_cached(model, settings.samples, settings.batch)
    naive = time_naive(model, settings.naive_batch, settings.naive_rows)
    results = {"image_shape": list(model.image_shape), "parameters": model.count_params(),
               "cached": {"samples": settings.samples, "seconds": cached,
                          "samples_per_second": settings.samples / cached},
               "naive": {"seconds_per_sample": naive, "samples_per_second": 1 / naive,
                         "timed": f"{settings.naive_rows} rows of {settings.naive_batch} images"},
               "speedup": naive * settings.samples / cached, "threads": os.cpu_count(),
               "machine": platform.processor() or platform.machine(), "versions": library_versions()}
    print(f"cached: {settings.samples} samples in {cached:.1f} s ({results['cached']['samples_per_second']:.0f}/s); "
          f"naive: {1 / naive:.2f} samples/s ({naive * 10000 / 3600:.1f} h per 10,000); "
          f"{results['speedup']:.0f}× faster")
    if settings.out:
        write_json(settings.out, results)
    return results


if __name__ == "__main__":
    run_cli(main)
