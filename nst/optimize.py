"""The two ways to minimise J over the image: SciPy's L-BFGS-B and Adam.

Both call the objective's one `tf.function` (loss, gradient, terms) once per function
evaluation and report each finished iteration to `on_iteration(iteration, image, loss,
terms)`, which logs, saves and may stop the run by raising. The image lives in caffe
space and is kept inside the box that de-processes to [0, 255].
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import numpy as np
import scipy.optimize
import tensorflow as tf

from nst.model import StyleTransferObjective, pixel_bounds

OPTIMIZERS = ("lbfgs", "adam")
OnIteration = Callable[[int, np.ndarray, float, dict[str, float]], None]


class NonFiniteLoss(Exception):
    """The loss became NaN or infinite at some evaluation."""

    def __init__(self, iteration: int, value: float):
        super().__init__(f"loss became {value} at iteration {iteration}")
        self.iteration = iteration
        self.value = value


class ConvergenceStop:
    """Stops when the relative loss decrease over the last `window` iterations is below `tol`.

    Called with each iteration's loss; raises `StopIteration` (which both optimisers treat
    as "done") once (L[i−window] − L[i]) / |L[i−window]| < tol. `tol` = 0 never stops.
    """

    def __init__(self, tol: float, window: int):
        self.tol, self.window = tol, window
        self.losses: list[float] = []

    def reset(self) -> None:
        self.losses = []

    def __call__(self, loss: float) -> None:
        self.losses.append(loss)
        if self.tol <= 0 or len(self.losses) <= self.window:
            return
        before = self.losses[-1 - self.window]
        if (before - loss) / max(abs(before), 1e-30) < self.tol:
            raise StopIteration(f"relative loss decrease over {self.window} iterations "
                                f"below {self.tol}")


def _evaluate(objective: StyleTransferObjective, image: np.ndarray):
    loss, gradient, terms = objective.loss_and_gradient(tf.constant(image))
    return float(loss), gradient, {name: float(value) for name, value in terms.items()}


def lbfgs(objective: StyleTransferObjective, initial: np.ndarray, iterations: int,
          on_iteration: OnIteration,
          first_iteration: int = 1) -> tuple[np.ndarray, dict[str, object]]:
    """L-BFGS-B (Byrd et al. 1995) with per-pixel bounds; SciPy works in float64.

    Stops after `iterations` iterations (each may take several evaluations in its line
    search), or earlier if the line search fails or `on_iteration` raises `StopIteration`
    (SciPy then returns the last accepted iterate). Returns the image and SciPy's counts.
    """
    shape = objective.shape
    lower, upper = pixel_bounds(shape)
    last = {"x": None, "loss": math.nan, "terms": {}}
    iteration = first_iteration

    def loss_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
        loss, gradient, terms = _evaluate(objective, x.reshape(shape).astype(np.float32))
        if not math.isfinite(loss):
            raise NonFiniteLoss(iteration, loss)
        last.update(x=x.copy(), loss=loss, terms=terms)
        return loss, gradient.numpy().ravel().astype(np.float64)

    def callback(intermediate_result: scipy.optimize.OptimizeResult) -> None:
        nonlocal iteration
        x = intermediate_result.x
        terms = last["terms"] if np.array_equal(x, last["x"]) else _evaluate(
            objective, x.reshape(shape).astype(np.float32))[2]
        on_iteration(iteration, x.reshape(shape).astype(np.float32),
                     float(intermediate_result.fun), terms)
        iteration += 1

    result = scipy.optimize.minimize(
        loss_and_gradient, initial.astype(np.float64).ravel(), jac=True, method="L-BFGS-B",
        bounds=scipy.optimize.Bounds(lower.ravel(), upper.ravel()), callback=callback,
        options={"maxiter": iterations, "maxfun": 3 * iterations + 20, "ftol": 0.0, "gtol": 0.0})
    return result.x.reshape(shape).astype(np.float32), {
        "iterations": int(result.nit), "evaluations": int(result.nfev),
        "status": str(result.message)}


def adam(objective: StyleTransferObjective, initial: np.ndarray, iterations: int,
         learning_rate: float, on_iteration: OnIteration,
         first_iteration: int = 1) -> tuple[np.ndarray, dict[str, object]]:
    """Adam (Kingma & Ba 2015) on the pixels, projected back into the box after each step."""
    lower, upper = pixel_bounds(objective.shape)
    image = tf.Variable(initial.astype(np.float32), name="image")
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build([image])
    for step in range(iterations):
        iteration = first_iteration + step
        loss, gradient, terms = _evaluate(objective, image)
        if not math.isfinite(loss):
            raise NonFiniteLoss(iteration, loss)
        try:
            on_iteration(iteration, image.numpy(), loss, terms)  # the image this loss belongs to
        except StopIteration:
            return image.numpy(), {"iterations": step + 1, "evaluations": step + 1,
                                   "status": "converged"}
        optimizer.apply_gradients([(gradient, image)])
        image.assign(tf.clip_by_value(image, lower, upper))
    return image.numpy(), {"iterations": iterations, "evaluations": iterations, "status": "done"}
