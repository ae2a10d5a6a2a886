"""--tol, region masks and the tiled objective, on tiny problems (random-weight VGG19 cuts)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from nst import optimize


class Rosenbrock:
    """A tiny stand-in objective with the interface the optimisers use (slow, curved valley)."""

    shape = (1, 1, 2, 3)

    def loss_and_gradient(self, image):
        with tf.GradientTape() as tape:
            tape.watch(image)
            x = tf.reshape(image, (-1, 2)) / 50.0
            loss = tf.reduce_sum(100.0 * tf.square(x[:, 1] - x[:, 0] ** 2)
                                 + tf.square(1.0 - x[:, 0]))
        return loss, tape.gradient(loss, image), {"content": loss}


def run_optimizer(name: str, tol: float, window: int = 3) -> tuple[list[float], dict]:
    stop = optimize.ConvergenceStop(tol, window)
    losses: list[float] = []

    def on_iteration(iteration, image, loss, terms):
        losses.append(loss)
        stop(loss)

    start = np.full(Rosenbrock.shape, -60.0, np.float32)
    if name == "lbfgs":
        _, info = optimize.lbfgs(Rosenbrock(), start, 300, on_iteration)
    else:
        _, info = optimize.adam(Rosenbrock(), start, 300, 0.5, on_iteration)
    return losses, info


def test_convergence_stop_on_a_geometric_loss():
    """Over 10 iterations 0.99^i falls by 1 − 0.99^10 ≈ 9.6 %: tol 0.1 stops, 0.05 never."""
    stop, never = optimize.ConvergenceStop(0.1, 10), optimize.ConvergenceStop(0.05, 10)
    for i in range(10 + 1):
        never(0.99 ** i)
        if i < 10:
            stop(0.99 ** i)
    with pytest.raises(StopIteration):
        stop(0.99 ** 10)
    for i in range(11, 200):
        never(0.99 ** i)
    assert optimize.ConvergenceStop(0.0, 1)(1.0) is None  # tol 0: never stops


@pytest.mark.parametrize("name", ["lbfgs", "adam"])
def test_tol_ends_the_optimizers_early(name):
    full, _ = run_optimizer(name, 0.0)
    stopped, info = run_optimizer(name, 0.05, window=2)
    assert 2 < len(stopped) < len(full)
    before, last = stopped[-3], stopped[-1]
    assert (before - last) / abs(before) < 0.05  # the criterion held where it stopped …
    assert all((a - b) / abs(a) >= 0.05 for a, b in zip(stopped[:-3], stopped[2:-1]))  # only there
    if name == "adam":
        assert info["status"] == "converged" and info["iterations"] == len(stopped)
