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

import argparse
import time

import common  # noqa: F401  (quiets TensorFlow before it loads)

# isort: split
import numpy as np
import tensorflow as tf

from common.config import PRECISIONS
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a trained AdaIN .keras model (default: untrained)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--probe-iterations", type=int, default=3)
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="compute dtype policy of the AdaIN network")
    args = parser.parse_args()
    with use_precision(args.precision):
        net = (load_adain(args.model, args.precision) if args.model
               else AdaINStyleTransfer.from_vgg19(vgg19_weights()))
    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    shape = f"{args.size}x{args.size * 3 // 4}"
    for per_image, what in ((False, "one style for all"), (True, "a new style per image")):
        rate = adain_images_per_second(net, args.size, args.batch, args.repeats, per_image)
        print(f"{device}: nst.adain stylize at {shape} ({what}): {rate:.2f} images/s "
              f"({1 / rate:.3f} s/image, batch {args.batch})", flush=True)
    rate = images_per_second(TransformNet(), args.size, args.batch, args.repeats)
    print(f"{device}: nst.fast stylize at {shape}: {rate:.2f} images/s ({1 / rate:.3f} s/image, "
          f"batch {args.batch})", flush=True)
    seconds = optimisation_seconds(args.size, 1, args.probe_iterations)
    print(f"{device}: nst.run, one L-BFGS iteration at {args.size} px: {seconds:.2f} s "
          f"({1 / seconds:.3f} iterations/s; 300 iterations: {300 * seconds:.0f} s/image)")


if __name__ == "__main__":
    main()
