"""AdaIN throughput beside fast style transfer and optimisation: `python -m experiments.bench.adain`.

At 512×384 (batched, after one warm-up call) prints images/s of
- `nst.adain stylize`: encode the content, AdaIN with one style's statistics (computed once,
  as stylising a folder does), decode; and the same with the style encoded anew for every
  image (each image its own 512 px style: the cost of "any style, one pass");
- `nst.fast stylize`: the transformation network (one network per style);
- one L-BFGS iteration of `nst.run` at the same size (a converged run takes about 300).
Throughput does not depend on what a network learnt, so untrained networks of the same
architecture are timed unless --model is given. Needs VGG19_WEIGHTS and DATA_DIR.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import common  # noqa: F401  (quiets TensorFlow before it loads)

# isort: split
import numpy as np
import tensorflow as tf

from common.config import PRECISIONS, parse_settings, setting
from common.errors import UserError, run_cli
from common.precision import use_precision
from experiments.bench.fast import images_per_second, optimisation_seconds
from nst.adain import load_adain, style_statistics, stylize_batch
from nst.adain_net import AdaINStyleTransfer
from nst.layers import vgg19_weights
from nst.transform import TransformNet


def adain_images_per_second(net: AdaINStyleTransfer, size: int, batch: int, repeats: int,
                            style_per_image: bool) -> float:
    rng = np.random.default_rng(0)
    contents = rng.random((batch, size, size * 3 // 4, 3), dtype=np.float32)
    styles = list(rng.random((batch, size, size, 3), dtype=np.float32))

    def once() -> np.ndarray:
        if style_per_image:  # every image gets its own style: one more encoder pass each
            statistics = [tuple(tf.concat(parts, axis=0)
                                for parts in zip(*style_statistics(net, styles)))]
        else:
            statistics = shared
        return stylize_batch(net, contents, statistics, [1.0], 1.0, None)

    shared = style_statistics(net, styles[:1])
    once()  # warm up
    started = time.perf_counter()
    for _ in range(repeats):
        once()
    return batch * repeats / (time.perf_counter() - started)


@dataclass
class BenchSettings:
    model: str | None = setting(None, "a trained AdaIN .keras model (unset: an untrained one)")
    size: int = setting(512, "long side of the images, in pixels", min=4)
    batch: int = setting(4, "images per call", positive=True)
    repeats: int = setting(3, "timed calls", positive=True)
    probe_iterations: int = setting(3, "L-BFGS iterations timed for nst.run's cost",
                                    positive=True)
    precision: str = setting("float32", "compute dtype policy of the AdaIN network",
                             choices=PRECISIONS)


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(BenchSettings, argv, __doc__.splitlines()[0],
                              prog="python -m experiments.bench.adain")
    if "DATA_DIR" not in os.environ:  # the L-BFGS line at the end reads its images
        raise UserError("set DATA_DIR to the shared assets (its images/ hold tubingen.jpg and "
                        "starry_night.jpg)")
    with use_precision(settings.precision):
        net = (load_adain(settings.model, settings.precision) if settings.model
               else AdaINStyleTransfer.from_vgg19(vgg19_weights()))
    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    size, batch, repeats = settings.size, settings.batch, settings.repeats
    shape = f"{size}x{size * 3 // 4}"
    for per_image, what in ((False, "one style for all"), (True, "a new style per image")):
        rate = adain_images_per_second(net, size, batch, repeats, per_image)
        print(f"{device}: nst.adain stylize at {shape} ({what}): {rate:.2f} images/s "
              f"({1 / rate:.3f} s/image, batch {batch})", flush=True)
    rate = images_per_second(TransformNet(), size, batch, repeats)
    print(f"{device}: nst.fast stylize at {shape}: {rate:.2f} images/s ({1 / rate:.3f} s/image, "
          f"batch {batch})", flush=True)
    seconds = optimisation_seconds(size, 1, settings.probe_iterations)
    print(f"{device}: nst.run, one L-BFGS iteration at {size} px: {seconds:.2f} s "
          f"({1 / seconds:.3f} iterations/s; 300 iterations: {300 * seconds:.0f} s/image)")


if __name__ == "__main__":
    run_cli(main)
