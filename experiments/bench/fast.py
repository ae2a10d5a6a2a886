"""Fast style transfer throughput: `python -m experiments.bench.fast`.

Times `nst.fast`'s transformation network on 512 px images (batched, after one warm-up
call) and prints images/s, next to the optimisation method's cost for the same size:
seconds per L-BFGS iteration from one short `nst.run` objective × 300 iterations (a
converged run; the quick default is 40). Throughput does not depend on what the network
learnt, so an untrained network with the same architecture is timed unless --model is given.
"""

from __future__ import annotations

import argparse
import os
import time

import common  # noqa: F401  (quiets TensorFlow before it loads)

# isort: split
import numpy as np
import tensorflow as tf

from common.config import PRECISIONS
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a trained .keras network (default: untrained, same shape)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--probe-iterations", type=int, default=5)
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="compute dtype policy of the transformation network")
    args = parser.parse_args()
    with use_precision(args.precision):
        model = load_transform_net(args.model, args.precision) if args.model else TransformNet()
    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    rate = images_per_second(model, args.size, args.batch, args.repeats)
    print(f"{device}: fast style transfer at {args.size}x{args.size * 3 // 4}: "
          f"{rate:.2f} images/s ({1 / rate:.3f} s/image, batch {args.batch})")
    if "DATA_DIR" in os.environ:
        seconds = optimisation_seconds(args.size, 300, args.probe_iterations)
        print(f"{device}: optimisation (nst.run, L-BFGS, 300 iterations) at {args.size} px: "
              f"{seconds:.0f} s/image; speed-up {seconds * rate:.0f}x")


if __name__ == "__main__":
    main()
