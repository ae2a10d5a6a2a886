"""Checkpoints that survive a kill: model, optimizer, step counter and RNG state.

A thin layer over `tf.train.CheckpointManager`, which writes each checkpoint's files and
then atomically updates its index, so `latest` always names a complete checkpoint even
after `kill -9` mid-write.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from common.errors import UserError


def save_model(model: keras.Model, path: str | os.PathLike) -> None:
    """Save a model in the native .keras format, atomically.

    Keras wants the .keras suffix, so the temporary file beside `path` keeps it; a kill
    mid-save leaves the previous file intact.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.tmp.keras")
    model.save(temporary)
    os.replace(temporary, path)


class Checkpointer:
    """Save and restore any trackable objects (models, optimizers, variables, generators).

    `epoch` is a counter kept in the checkpoint, so a resumed `fit` can start at
    `initial_epoch=checkpointer.epoch` and end with as many steps as an uninterrupted run.
    """

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 3, **trackables: Any):
        self.directory = Path(directory)
        self.epoch_variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.checkpoint = tf.train.Checkpoint(epoch=self.epoch_variable, **trackables)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory),
                                                  max_to_keep=max_to_keep)

    @property
    def epoch(self) -> int:
        return int(self.epoch_variable.numpy())

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    def save(self, epoch: int) -> str:
        """Save everything with the epoch counter set to `epoch` (epochs completed)."""
        self.epoch_variable.assign(epoch)
        return self.manager.save(checkpoint_number=epoch)

    def restore(self) -> bool:
        """Restore the latest checkpoint, if any; a mismatching one raises `UserError`.

        Optimizers must be built (`optimizer.build(variables)`) before this so that their
        slots are restored immediately rather than deferred.
        """
        latest = self.manager.latest_checkpoint
        if latest is None:
            return False
        try:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(f"{latest}: checkpoint does not match this model ({first})") from None
        return True


class CheckpointEveryEpoch(keras.callbacks.Callback):
    """Save a checkpoint at the end of every epoch whose logged values are all finite.

    An epoch that went NaN is never saved, so the last checkpoint stays the last good one.
    """

    def __init__(self, checkpointer: Checkpointer):
        super().__init__()
        self.checkpointer = checkpointer

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = [float(v) for v in (logs or {}).values() if isinstance(v, (int, float))]
        if all(math.isfinite(v) for v in values) and not getattr(self.model, "diverged", False):
            self.checkpointer.save(epoch + 1)


class StopOnNaN(keras.callbacks.Callback):
    """Stop training at the first batch whose loss is NaN or infinite.

    Unlike `keras.callbacks.TerminateOnNaN` it remembers where, so the program can say
    so in one line and skip writing the final model; the last checkpoint is left intact.
    """

    def __init__(self, monitor: str = "loss"):
        super().__init__()
        self.monitor = monitor
        self.bad_batch: int | None = None
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is not None and not math.isfinite(float(value)):
            self.bad_batch = batch
            self.model.diverged = True
            self.model.stop_training = True

    def message(self, checkpointer: Checkpointer | None = None) -> str:
        where = f"loss became non-finite in epoch {self.epoch + 1}, batch {self.bad_batch}"
        kept = checkpointer.latest if checkpointer is not None else None
        return f"{where}; stopped. Last good checkpoint: {kept or 'none'}"


class StopAfterTime(keras.callbacks.Callback):
    """Stop training once `seconds` have been spent in training steps (an equal-time budget).

    Only the time between a batch's start and end counts (input pipeline and update
    included), not the evaluation and saving between epochs, so models with different
    per-epoch extras get the same training time. The epoch it stops in ends early and is
    saved like any other.
    """

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.spent = 0.0
        self.reached = False
        self._batch_start = 0.0

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.spent += time.perf_counter() - self._batch_start
        if self.spent >= self.seconds:
            self.reached = True
            self.model.stop_training = True
