"""The optimisers `gan.train --optimizer` offers by name: Adam, or the GAN paper's SGD.

Goodfellow et al. (2014) trained the MNIST networks with the authors' pylearn2 setup
(github.com/goodfeli/adversarial, mnist.yaml): minibatches of 100, SGD with momentum,

    v ← μ_e·v − η_t·g,   θ ← θ + v,

with the learning rate divided by 1.000004 after every update, η_t = η_0 / 1.000004^t
(floored at 1e-6, which is reached only after 2.9 million updates from 0.1), and the
momentum rising linearly with the epoch e from 0.5 to 0.7 over 250 epochs (pylearn2's
MomentumAdjustor with start 1, saturate 250):

    μ_e = 0.5 + (0.7 − 0.5) · min(e / 249, 1).

Their discriminator cost is ½(BCE(real) + BCE(fake)); ours (`gan.losses`) is the sum, so
`--lr-d 0.05` here is their learning rate 0.1 for D (the updates are the same).
"""

from __future__ import annotations

import keras
from keras import ops

PAPER_LR_DECAY = 1.000004  # divisor of the learning rate per update
PAPER_MOMENTUM = (0.5, 0.7)  # first, final
PAPER_MOMENTUM_EPOCHS = 249  # epochs from the first to the final momentum


@keras.saving.register_keras_serializable(package="gan")
class RampedMomentumSGD(keras.optimizers.SGD):
    """SGD whose momentum rises linearly by epoch: μ_e = μ_0 + (μ_1 − μ_0)·min(e / E, 1), with
    e = ⌊updates / steps_per_epoch⌋. The momentum is computed from the update counter, so it
    is the same after a checkpoint restore as in an unbroken run."""

    def __init__(self, learning_rate=0.1, momentum: float = 0.5, final_momentum: float = 0.7,
                 ramp_epochs: int = PAPER_MOMENTUM_EPOCHS, steps_per_epoch: int = 1, **kwargs):
        super().__init__(learning_rate=learning_rate, momentum=momentum, **kwargs)
        self.final_momentum, self.ramp_epochs = final_momentum, ramp_epochs
        self.steps_per_epoch = steps_per_epoch

    def current_momentum(self):
        epoch = ops.cast(ops.floor_divide(self.iterations, self.steps_per_epoch), "float32")
        progress = ops.minimum(epoch / float(self.ramp_epochs), 1.0)
        return self.momentum + (self.final_momentum - self.momentum) * progress

    def update_step(self, gradient, variable, learning_rate):
        velocity = self.momentums[self._get_variable_index(variable)]
        momentum = ops.cast(self.current_momentum(), variable.dtype)
        step = ops.multiply(ops.cast(gradient, variable.dtype), ops.cast(learning_rate, variable.dtype))
        self.assign(velocity, ops.subtract(ops.multiply(velocity, momentum), step))
        self.assign_add(variable, velocity)

    def get_config(self) -> dict:
        return {**super().get_config(), "final_momentum": self.final_momentum,
                "ramp_epochs": self.ramp_epochs, "steps_per_epoch": self.steps_per_epoch}


def paper_sgd(learning_rate: float, steps_per_epoch: int) -> RampedMomentumSGD:
    """The GAN paper's SGD (module docstring): η_0 / 1.000004^t, momentum 0.5 → 0.7 over 250 epochs."""
    schedule = keras.optimizers.schedules.ExponentialDecay(learning_rate, decay_steps=1,
                                                           decay_rate=1.0 / PAPER_LR_DECAY)
    return RampedMomentumSGD(schedule, *PAPER_MOMENTUM, steps_per_epoch=steps_per_epoch)


def build_optimizer(name: str, learning_rate: float, beta1: float, beta2: float,
                    steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """`adam` (β1, β2 as given) or `sgd-paper` (β1, β2 unused)."""
    if name == "sgd-paper":
        return paper_sgd(learning_rate, steps_per_epoch)
    return keras.optimizers.Adam(learning_rate, beta1, beta2)
