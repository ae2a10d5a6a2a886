"""NST speed and convergence benchmark: `python -m experiments.bench.nst`.

Prints, for tubingen.jpg × starry_night.jpg with the default losses:
- seconds per iteration at each --sizes for L-BFGS and Adam (tf.function traced first),
  as wall and CPU time; L-BFGS is clocked from its first iteration to its last, so SciPy's
  one-time set-up (a Python loop over every pixel's bounds) and the first evaluation are
  reported apart, and its evaluations per iteration are counted;
- the floor: one bare VGG19 forward + backward pass to the deepest used layer, one loss
  and gradient evaluation, and each ratio to the floor (target ≤ 1.15);
- peak resident memory after each size (ru_maxrss, so it only grows);
- iterations to reach 95 % of the 300-iteration loss reduction, L-BFGS vs Adam, and a
  plot of both curves (--curves PATH);
- with a GPU, the time of 500 iterations at 512 px (the 2016 reference: 22 s on a Titan X);
- with --memory-sizes, the peak resident memory of one process that computes the targets and
  one loss-and-gradient evaluation at each size, untiled and with --max-memory tiles (each in
  a fresh process, so ru_maxrss is that size's own peak); untiled sizes whose estimate
  exceeds the available memory are reported as not run.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Self

import common  # noqa: F401  (quiets TensorFlow before it loads)

# Sorting would put `import common` after TensorFlow, too late to quiet it.
# isort: split
import keras
import numpy as np
import tensorflow as tf

from common.config import parse_settings, precision_setting, setting
from common.errors import run_cli
from common.images import load_image, resize_long_side
from common.plots import plot_curves
from nst import optimize
from nst.layers import vgg19_weights
from nst.model import StyleTransferObjective, compute_targets, feature_extractor, load_vgg19, preprocess
from nst.run import DEFAULT_STYLE_LAYERS, Settings, parse_bytes

DEFAULTS = Settings()
STYLE_LAYERS = {item.split(":")[0]: float(item.split(":")[1]) for item in DEFAULT_STYLE_LAYERS}


def peak_memory_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def build(vgg: keras.Model, content: np.ndarray, style: np.ndarray, size: int):
    """The default objective at long side `size`, its starting image and the bare network."""
    extractor = feature_extractor(vgg, [DEFAULTS.content_layer, *STYLE_LAYERS])
    content = resize_long_side(content, size)
    style = resize_long_side(style, size)
    shape = (1, *content.shape[:2], 3)
    targets = compute_targets(extractor, shape, content, DEFAULTS.content_layer, [style], [1.0],
                              STYLE_LAYERS)
    objective = StyleTransferObjective(extractor, shape, DEFAULTS.content_layer, STYLE_LAYERS,
                                       targets, DEFAULTS.content_weight, DEFAULTS.style_weight,
                                       DEFAULTS.tv_weight)
    deepest = extractor.layers[-1].name
    bare = feature_extractor(vgg, [deepest])  # the same network, one output, no losses

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)], autograph=False)
    def forward_backward(image):
        with tf.GradientTape() as tape:
            tape.watch(image)
            loss = tf.reduce_sum(tf.cast(bare(image, training=False)[deepest], tf.float32))
        return tape.gradient(loss, image)

    return objective, preprocess(content)[None], forward_backward


class Clock:
    """Wall seconds and CPU seconds (all threads of this process) of a block.

    On a shared, busy machine the wall time mostly measures the other processes; the CPU
    time is what this work costs, so ratios are taken on it.
    """

    def __enter__(self) -> Self:
        self.wall, self.cpu = -time.perf_counter(), -time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall += time.perf_counter()
        self.cpu += time.process_time()


def steady_lbfgs(objective: StyleTransferObjective, initial: np.ndarray,
                 iterations: int) -> tuple[Clock, int, float]:
    """Clock `iterations` L-BFGS iterations after the first one.

    Returns the clock, the evaluations in those iterations and the wall seconds before the
    first iteration ended (SciPy's set-up plus one or two evaluations).
    """
    evaluate, evaluations, marks = objective.loss_and_gradient, 0, []

    def counted(image):
        nonlocal evaluations
        evaluations += 1
        return evaluate(image)

    def mark(*_) -> None:
        marks.append((time.perf_counter(), time.process_time(), evaluations))

    objective.loss_and_gradient = counted  # the optimiser only calls this attribute
    start = time.perf_counter()
    try:
        optimize.lbfgs(objective, initial, iterations + 1, mark)
    finally:
        objective.loss_and_gradient = evaluate
    clock = Clock()
    (first_wall, first_cpu, first_count), (last_wall, last_cpu, last_count) = marks[0], marks[-1]
    clock.wall, clock.cpu = last_wall - first_wall, last_cpu - first_cpu
    return clock, last_count - first_count, first_wall - start


def record_loss(losses: list[float], iteration: int, image: np.ndarray, loss: float, terms: dict) -> None:
    """An optimiser callback (with `losses` bound) that keeps each reported loss."""
    losses.append(loss)


def convergence(objective: StyleTransferObjective, initial: np.ndarray, iterations: int,
                lr: float) -> dict[str, list[float]]:
    """Loss per iteration for each optimiser from the same start."""
    curves = {}
    for name in optimize.OPTIMIZERS:
        # L-BFGS reports the loss after each iteration, Adam the loss before each step.
        losses = [float(objective.loss_and_gradient(initial)[0])] if name == "lbfgs" else []
        record = partial(record_loss, losses)
        if name == "lbfgs":
            optimize.lbfgs(objective, initial, iterations, record)
        else:
            optimize.adam(objective, initial, iterations, lr, record)
        curves[name] = losses
    return curves


def iterations_to(losses: list[float], target: float) -> int | None:
    return next((i for i, loss in enumerate(losses) if loss <= target), None)


@dataclass
class BenchSettings:
    sizes: list[int] = setting([256, 512], "long sides to time, in pixels", positive=True)
    repeats: int = setting(10, "timed iterations per measurement", positive=True)
    precision: str = precision_setting()
    convergence_size: int = setting(256, "long side of the convergence run, in pixels",
                                    positive=True)
    convergence_iterations: int = setting(300, "iterations of the convergence run; 0 to skip",
                                          min=0)
    curves: str = setting("experiments/results/nst/convergence.png",
                          "where to plot the convergence curves")
    memory_sizes: list[int] = setting([], "peak memory table at these long sides (then nothing "
                                          "else runs)", positive=True)
    max_memory: str = setting("1G", "the tiles' budget in that table")
    one_evaluation: int | None = setting(None, "internal: the fresh process of --memory-sizes, "
                                               "measuring this one long side", positive=True)

    def validate(self) -> None:
        if self.max_memory != "none":  # "none": the untiled child of --memory-sizes
            parse_bytes(self.max_memory, "--max-memory")


def one_evaluation(content: np.ndarray, style: np.ndarray, size: int,
                   max_memory: str | None) -> None:
    """Targets plus one loss and gradient at `size`, as nst.run builds them; prints JSON."""
    from nst.run import build_objective

    settings = Settings(max_memory=None if max_memory == "none" else max_memory)
    vgg = load_vgg19(vgg19_weights())
    extractor = feature_extractor(vgg, [DEFAULTS.content_layer, *STYLE_LAYERS])
    content, style = resize_long_side(content, size), resize_long_side(style, size)
    start = time.perf_counter()
    objective = build_objective(settings, extractor, (1, *content.shape[:2], 3), content,
                                [style], [1.0], STYLE_LAYERS, None)
    loss = objective.loss_and_gradient(tf.constant(preprocess(content)[None]))[0]
    tiling = getattr(objective, "tiling", None)
    print(json.dumps({"size": size, "loss": float(loss), "seconds": time.perf_counter() - start,
                      "peak_mib": peak_memory_mib(),
                      "tile": None if tiling is None else tiling.core + 2 * tiling.halo}))


def report_memory(sizes: list[int], max_memory: str) -> None:
    """Peak RSS per size, untiled and tiled, each measured in a fresh process."""
    from nst.layers import estimate_memory_bytes
    from nst.run import available_memory_bytes

    print(f"peak RSS of targets + one evaluation (--max-memory {max_memory} for tiles); "
          f"load average {os.getloadavg()[0]:.1f}")
    for size in sizes:
        for budget in (None, max_memory):
            estimate = estimate_memory_bytes(size, size, "block5_conv1")
            if budget is None and estimate > available_memory_bytes():
                print(f"  {size:5d} px untiled: not run, estimate {estimate / 2**30:.1f} GiB > "
                      f"{available_memory_bytes() / 2**30:.1f} GiB available")
                continue
            command = [sys.executable, "-m", "experiments.bench.nst", "--one-evaluation",
                       str(size), "--max-memory", budget or "none"]
            child = subprocess.run(command, capture_output=True, text=True)
            if child.returncode:
                print(f"  {size:5d} px {'tiled' if budget else 'untiled'}: failed "
                      f"(exit {child.returncode}) {child.stderr.strip()[-200:]}")
                continue
            result = json.loads(child.stdout.strip().splitlines()[-1])
            tiles = f"tiles of {result['tile']} px" if result["tile"] else "one piece"
            print(f"  {size:5d} px {'tiled' if budget else 'untiled'} ({tiles}): peak "
                  f"{result['peak_mib']:.0f} MiB, {result['seconds']:.1f} s, "
                  f"loss {result['loss']:.6g}", flush=True)


def report_speed(vgg: keras.Model, content: np.ndarray, style: np.ndarray, size: int,
                 repeats: int) -> None:
    """Print seconds per iteration at long side `size`, and each ratio to the floor."""
    objective, initial, forward_backward = build(vgg, content, style, size)
    image = tf.constant(initial)
    forward_backward(image)  # trace both functions before timing
    objective.loss_and_gradient(image)
    with Clock() as floor:
        for _ in range(repeats):
            forward_backward(image)
    with Clock() as evaluation:
        for _ in range(repeats):
            objective.loss_and_gradient(image)
    lbfgs, lbfgs_evaluations, lbfgs_setup = steady_lbfgs(objective, initial, repeats)
    with Clock() as adam:
        optimize.adam(objective, initial, repeats, DEFAULTS.lr, lambda *_: None)
    base = (floor.wall / repeats, floor.cpu / repeats)
    height, width = objective.shape[1:3]
    print(f"{width}x{height}, {repeats} repeats, peak RSS {peak_memory_mib():.0f} MiB")
    for name, clock, per in (("floor (bare VGG19)", floor, repeats),
                             ("loss + gradient", evaluation, repeats),
                             ("L-BFGS iteration", lbfgs, repeats),
                             ("L-BFGS evaluation", lbfgs, lbfgs_evaluations),
                             ("Adam iteration", adam, repeats)):
        wall, cpu = clock.wall / per, clock.cpu / per
        print(f"  {name:19} {wall:6.3f} / {cpu:6.3f} s   ratio {wall / base[0]:5.3f} / "
              f"{cpu / base[1]:5.3f}")
    print(f"  L-BFGS: {lbfgs_evaluations / repeats:.2f} evaluations per iteration, "
          f"{lbfgs_setup:.1f} s before the first iteration ended")


def report_gpu_reference(vgg: keras.Model, content: np.ndarray, style: np.ndarray) -> None:
    """Print the time of 500 iterations at 512 px, the classic reference (22 s on a Titan X)."""
    objective, initial, _ = build(vgg, content, style, 512)
    objective.loss_and_gradient(initial)
    for name in optimize.OPTIMIZERS:
        start = time.perf_counter()
        if name == "lbfgs":
            optimize.lbfgs(objective, initial, 500, lambda *_: None)
        else:
            optimize.adam(objective, initial, 500, DEFAULTS.lr, lambda *_: None)
        print(f"GPU, 500 {name} iterations at 512 px: {time.perf_counter() - start:.1f} s")


def report_convergence(vgg: keras.Model, content: np.ndarray, style: np.ndarray, size: int,
                       iterations: int, curves_path: str) -> None:
    """Print iterations to 95 % of the loss reduction per optimiser, and plot both curves."""
    objective, initial, _ = build(vgg, content, style, size)
    curves = convergence(objective, initial, iterations, DEFAULTS.lr)
    best = min(min(losses) for losses in curves.values())
    print(f"convergence at {size} px from the content image, {iterations} iterations:")
    for name, losses in curves.items():
        own = losses[0] - 0.95 * (losses[0] - losses[-1])
        common_target = losses[0] - 0.95 * (losses[0] - best)
        reached = iterations_to(losses, common_target)
        reached = reached if reached is not None else f"more than {len(losses) - 1}"
        print(f"  {name:5}: loss {losses[0]:.4g} → {losses[-1]:.4g}; 95 % of its own "
              f"reduction after {iterations_to(losses, own)} iterations; 95 % of the best "
              f"reduction after {reached}")
    plot_curves(curves_path,
                {name: (range(len(losses)), losses) for name, losses in curves.items()},
                title=f"NST loss, {size} px, tubingen × starry_night",
                xlabel="iteration", ylabel="total loss J", log_y=True)
    print(f"wrote {curves_path}")


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(BenchSettings, argv, __doc__.splitlines()[0],
                              prog="python -m experiments.bench.nst")
    keras.mixed_precision.set_global_policy(settings.precision)
    images = Path(os.environ.get("DATA_DIR", "../shared/assets")) / "images"
    content, style = load_image(images / "tubingen.jpg"), load_image(images / "starry_night.jpg")
    if settings.one_evaluation:
        one_evaluation(content, style, settings.one_evaluation, settings.max_memory)
        return
    if settings.memory_sizes:
        report_memory(settings.memory_sizes, settings.max_memory)
        return
    vgg = load_vgg19(vgg19_weights())
    print(f"precision {settings.precision}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}, GPU: {bool(tf.config.list_physical_devices('GPU'))}")
    print("seconds per iteration (wall / CPU); ratio to the floor (wall / CPU); L-BFGS from "
          "its 2nd iteration on, with evaluations per iteration and the time before it")
    for size in settings.sizes:
        report_speed(vgg, content, style, size, settings.repeats)
    if tf.config.list_physical_devices("GPU"):
        report_gpu_reference(vgg, content, style)
    if settings.convergence_iterations:
        report_convergence(vgg, content, style, settings.convergence_size,
                           settings.convergence_iterations, settings.curves)


if __name__ == "__main__":
    run_cli(main)
