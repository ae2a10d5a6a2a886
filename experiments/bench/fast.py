"""Fast style transfer throughput: `python -m experiments.bench.fast`.

Times `nst.fast`'s transformation network on 512 px images (batched, after one warm-up
call) and prints images/s, next to the optimisation method's cost for the same size:
seconds per L-BFGS iteration from one short `nst.run` objective × 300 iterations (a
converged run; the quick default is 40). Throughput does not depend on what the network
learnt, so an untrained network with the same architecture is timed unless --model is given.
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
from common.errors import run_cli
from common.precision import use_precision
from nst.fast import load_transform_net
from nst.transform import TransformNet


def images_per_second(model, size: int, batch: int, repeats: int) -> float:
    images = np.random.default_rng(0).random((batch, size, size * 3 // 4, 3), dtype=np.float32)
    call = tf.function(lambda x: model(x, training=False))
    call(images)  # trace and warm up
    started = time.perf_counter()
    for _ in range(repeats):
        call(images).numpy()
    return batch * repeats / (time.perf_counter() - started)


def optimisation_seconds(size: int, iterations: int, probe: int) -> float:
    """Seconds for `iterations` L-BFGS iterations at long side `size`, from a `probe`-iteration run."""
    from common.images import load_image
    from experiments.bench.nst import build
    from nst.layers import vgg19_weights
    from nst.model import load_vgg19

    images = os.path.join(os.environ["DATA_DIR"], "images")
    vgg = load_vgg19(vgg19_weights())
    objective, initial, _ = build(vgg, load_image(f"{images}/tubingen.jpg"),
                                  load_image(f"{images}/starry_night.jpg"), size)
    objective.loss_and_gradient(initial)
    from nst import optimize

    started = time.perf_counter()
    optimize.lbfgs(objective, initial, probe, lambda *args: None)
    return (time.perf_counter() - started) / probe * iterations


@dataclass
class BenchSettings:
    model: str | None = setting(None, "a trained .keras network (unset: an untrained one of the same shape)")
    size: int = setting(512, "long side of the images, in pixels", min=4)
    batch: int = setting(4, "images per call", positive=True)
    repeats: int = setting(3, "timed calls", positive=True)
    probe_iterations: int = setting(5, "L-BFGS iterations timed to estimate a 300-iteration "
                                       "optimisation (needs $DATA_DIR)", positive=True)
    precision: str = setting("float32", "compute dtype policy of the transformation network",
                             choices=PRECISIONS)


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(BenchSettings, argv, __doc__.splitlines()[0],
                              prog="python -m experiments.bench.fast")
    with use_precision(settings.precision):
        model = (load_transform_net(settings.model, settings.precision) if settings.model
                 else TransformNet())
    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    rate = images_per_second(model, settings.size, settings.batch, settings.repeats)
    print(f"{device}: fast style transfer at {settings.size}x{settings.size * 3 // 4}: "
          f"{rate:.2f} images/s ({1 / rate:.3f} s/image, batch {settings.batch})")
    if "DATA_DIR" in os.environ:
        seconds = optimisation_seconds(settings.size, 300, settings.probe_iterations)
        print(f"{device}: optimisation (nst.run, L-BFGS, 300 iterations) at {settings.size} px: "
              f"{seconds:.0f} s/image; speed-up {seconds * rate:.0f}x")


if __name__ == "__main__":
    run_cli(main)
