"""A tiny training program on the shared skeleton (`common.training`), for the kill -9 /
--resume test and the two-worker test.

python -m tests.resumable_fit --run-dir DIR --epochs N [--resume] [--batch-delay S]
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from common.config import TrainingSettings, parse_settings, setting
from common.errors import run_cli
from common.training import TrainingRun


@dataclass
class Settings(TrainingSettings):
    epochs: int = setting(5, "epochs to train", positive=True)
    batch_delay: float = setting(0.0, "seconds to sleep after each batch", min=0)


class Regression(keras.Model):
    """A two-layer regression whose batches are one tensor, inputs and target side by side
    (Keras' multi-worker `fit` cannot yet take (x, y) tuples: keras-team/keras#20329)."""

    def __init__(self):
        super().__init__()
        self.network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"),
                                         keras.layers.Dense(1)])
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, x):
        return self.network(x)

    def train_step(self, batch):
        x, y = batch[:, :4], batch[:, 4:]
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self.network(x) - y))
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            objective = self.optimizer.scale_loss(loss / replicas)
        variables = self.network.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(objective, variables), variables))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


class Slow(keras.callbacks.Callback):
    def __init__(self, delay: float):
        super().__init__()
        self.delay = delay

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.delay)


def main(argv=None):
    settings = parse_settings(Settings, argv, "tiny resumable fit")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4)).astype("float32")
    table = np.concatenate([x, x @ rng.normal(size=(4, 1)).astype("float32")], axis=1)
    with TrainingRun("tiny", settings, settings.epochs) as run:  # no TF op before it
        data = tf.data.Dataset.from_tensor_slices(table).batch(8).repeat()
        with run.strategy.scope():
            keras.utils.set_random_seed(0)  # the same initial weights on every worker
            model = Regression()
            optimizer = run.optimizer(keras.optimizers.Adam(1e-2))
            model.compile(optimizer)
            model(x[:1])
            optimizer.build(model.network.trainable_variables)
        run.start({"model": model.network, "optimizer": optimizer}, steps=optimizer.iterations,
                  parameters=model.count_params(), sampler_parameters=model.count_params())
        run.fit(model, data, 10, callbacks=[Slow(settings.batch_delay)])
        run.finish(weights=[w.tolist() for w in model.network.get_weights()])


if __name__ == "__main__":
    run_cli(main)
