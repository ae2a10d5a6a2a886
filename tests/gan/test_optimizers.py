"""gan.optimizers: the GAN paper's SGD against the pylearn2 update rule computed by hand."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from common.config import parse_settings
from common.errors import UserError
from gan.optimizers import PAPER_LR_DECAY, RampedMomentumSGD, build_optimizer, paper_sgd


def paper_updates(theta: float, gradients: list[float], lr: float, steps_per_epoch: int,
                  ramp_epochs: int, decay: float = PAPER_LR_DECAY) -> list[float]:
    """pylearn2's Momentum + MomentumAdjustor + ExponentialDecay, step by step in float64."""
    velocity, out = 0.0, []
    for t, g in enumerate(gradients):
        epoch = t // steps_per_epoch
        momentum = 0.5 + 0.2 * min(epoch / ramp_epochs, 1.0)
        velocity = momentum * velocity - lr / decay ** t * g
        theta += velocity
        out.append(theta)
    return out


def run_optimizer(optimizer: keras.optimizers.Optimizer, gradients: list[float]) -> list[float]:
    variable = keras.Variable(np.array([1.0], np.float32))
    out = []
    for g in gradients:
        optimizer.apply_gradients([(np.array([g], np.float32), variable)])
        out.append(float(variable.numpy()[0]))
    return out


def test_momentum_ramps_by_epoch_and_the_rate_decays_per_update():
    gradients = [1.0, -0.5, 2.0, 0.25, 1.5, -1.0, 0.5]
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 1, 1 / 1.5)  # a visible decay
    optimizer = RampedMomentumSGD(schedule, 0.5, 0.7, ramp_epochs=2, steps_per_epoch=2)
    expected = paper_updates(1.0, gradients, 0.1, steps_per_epoch=2, ramp_epochs=2, decay=1.5)
    np.testing.assert_allclose(run_optimizer(optimizer, gradients), expected, rtol=1e-5)
    # Epochs 0, 1, 2+ of 2 updates: momentum 0.5, 0.6, then 0.7 and no further.
    for updates, momentum in ((0, 0.5), (1, 0.5), (2, 0.6), (4, 0.7), (100, 0.7)):
        optimizer.iterations.assign(updates)
        assert float(optimizer.current_momentum()) == pytest.approx(momentum)


def test_paper_sgd_is_the_papers_schedule():
    gradients = list(np.random.default_rng(0).normal(size=6))
    expected = paper_updates(1.0, gradients, 0.1, steps_per_epoch=3, ramp_epochs=249)
    np.testing.assert_allclose(run_optimizer(paper_sgd(0.1, 3), gradients), expected, rtol=1e-5)
    optimizer = paper_sgd(0.1, 500)
    optimizer.iterations.assign(500 * 249)
    assert float(optimizer.current_momentum()) == pytest.approx(0.7)
    # Keras computes the decay in float32: 1 / 1.000004 rounds by 3e-8, 0.08 % after 124,500 updates.
    assert float(optimizer.learning_rate) == pytest.approx(0.1 / PAPER_LR_DECAY ** (500 * 249), rel=2e-3)


def test_the_optimizer_survives_a_save_and_load_round_trip():
    optimizer = paper_sgd(0.05, 7)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(again, RampedMomentumSGD)
    assert (again.momentum, again.final_momentum, again.ramp_epochs, again.steps_per_epoch) == (0.5, 0.7, 249, 7)


def test_optimizers_are_chosen_by_name():
    from gan.train import Settings

    assert isinstance(build_optimizer("adam", 1e-3, 0.5, 0.9, 10), keras.optimizers.Adam)
    assert isinstance(build_optimizer("sgd-paper", 0.1, 0.5, 0.9, 10), RampedMomentumSGD)
    settings = parse_settings(Settings, ["--arch", "mlp", "--init", "goodfellow"], "gan.train")
    assert settings.output_activation == "sigmoid"  # the paper's generator output
    for args in (["--init", "goodfellow"], ["--arch", "mlp", "--init", "goodfellow",
                                            "--output-activation", "tanh"]):
        with pytest.raises(UserError, match="--init goodfellow"):
            parse_settings(Settings, args, "gan.train").validate()
