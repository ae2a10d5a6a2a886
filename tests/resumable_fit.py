"""A tiny training program built only from common/, for the kill -9 / --resume test.

python -m tests.resumable_fit --run-dir DIR --epochs N [--resume] [--batch-delay S]
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import keras
import numpy as np

from common.checkpoints import Checkpointer, CheckpointEveryEpoch
from common.config import RunSettings, parse_settings, setting
from common.errors import run_cli
from common.runs import create_run, set_seed, write_metrics


@dataclass
class Settings(RunSettings):
    epochs: int = setting(5, "epochs to train", positive=True)
    resume: bool = setting(False, "continue the run in --run-dir")
    batch_delay: float = setting(0.0, "seconds to sleep after each batch", min=0)


class Slow(keras.callbacks.Callback):
    def __init__(self, delay: float):
        super().__init__()
        self.delay = delay

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.delay)


def main(argv=None):
    settings = parse_settings(Settings, argv, "tiny resumable fit")
    run_dir = create_run("tiny", settings, resume=settings.resume)
    set_seed(settings.seed)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4)).astype("float32")
    y = x @ rng.normal(size=(4, 1)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(1)])
    optimizer = keras.optimizers.Adam(1e-2)
    model.compile(optimizer, "mse")
    optimizer.build(model.trainable_variables)
    checkpointer = Checkpointer(run_dir / "checkpoints", model=model, optimizer=optimizer)
    if settings.resume:
        checkpointer.restore()
    model.fit(x, y, batch_size=8, epochs=settings.epochs, initial_epoch=checkpointer.epoch,
              shuffle=False, verbose=0,
              callbacks=[CheckpointEveryEpoch(checkpointer), Slow(settings.batch_delay)])
    write_metrics(run_dir, {"steps": int(optimizer.iterations.numpy()),
                            "weights": [w.tolist() for w in model.get_weights()]})


if __name__ == "__main__":
    run_cli(main)
