"""Checkpoints that survive a kill: model, optimizer, step counter and RNG state.

A thin layer over `tf.train.CheckpointManager`, which writes each checkpoint's files and
then atomically updates its index, so `latest` always names a complete checkpoint even
after `kill -9` mid-write.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from common.errors import UserError, first_line


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

    `epoch` (epochs completed) and `batches` (batches done of the next epoch, nonzero only
    for a run stopped mid-epoch by a signal) are counters kept in the checkpoint, so a
    resumed `fit` can start where the run stopped and end with as many steps as an
    uninterrupted run. Checkpoints are numbered by `numbered_by` (the step counter) when
    given, else by the epoch.
    """

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 3,
                 read_directory: str | os.PathLike | None = None,
                 numbered_by: tf.Variable | None = None, **trackables: Any):
        self.directory = Path(directory)
        # Where `restore` looks: the chief's folder, also for the workers that save elsewhere.
        self.read_directory = Path(read_directory) if read_directory is not None else self.directory
        self.epoch_variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.batches_variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="batches")
        self.numbered_by = numbered_by
        self.checkpoint_items = trackables
        self.checkpoint = tf.train.Checkpoint(epoch=self.epoch_variable, batches=self.batches_variable,
                                              **trackables)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory),
                                                  max_to_keep=max_to_keep)

    @property
    def epoch(self) -> int:
        return int(self.epoch_variable.numpy())

    @property
    def batches(self) -> int:
        return int(self.batches_variable.numpy())

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    def save(self, epoch: int, batches: int = 0) -> str:
        """Save everything with the counters set to `epoch` epochs completed and `batches`
        batches of the next one done."""
        self.epoch_variable.assign(epoch)
        self.batches_variable.assign(batches)
        number = epoch if self.numbered_by is None else int(self.numbered_by.numpy())
        return self.manager.save(checkpoint_number=number)

    def candidates(self) -> list[str]:
        """Every checkpoint in the folder, newest first, found from the files themselves so
        that a damaged index file (`checkpoint`) hides none of them."""
        numbered = []
        for index in self.read_directory.glob("ckpt-*.index"):
            number = index.stem.split("-")[-1]
            if number.isdigit():
                numbered.append((int(number), str(index.with_suffix(""))))
        return [path for _, path in sorted(numbered, reverse=True)]

    def restore(self) -> bool:
        """Restore the newest checkpoint that loads; False when there is none.

        A damaged newest checkpoint (truncated or partly copied files) is passed over with
        a one-line warning for the next older one. When none loads, `UserError` says why
        (for one that does not match the model, what does not match). Optimizers must be
        built (`optimizer.build(variables)`) first, so that their slots are restored at once.
        """
        candidates = self.candidates()
        if not candidates:
            return False
        failures = []
        for path in candidates:
            try:
                status = self.checkpoint.restore(path)
                status.expect_partial()  # silences TF's unrestored-value log; the check below stays
                status.assert_existing_objects_matched()
            except Exception as error:  # a damaged file raises anything from IndexError up
                failures.append(f"{Path(path).name}: {first_line(error)}")
                continue
            if failures:
                print(f"warning: newer checkpoint(s) do not restore ({'; '.join(failures)}); "
                      f"resumed from {Path(path).name}", flush=True)
            return True
        raise UserError(f"{self.read_directory}: no checkpoint restores: each is damaged or does not "
                        f"match this model ({'; '.join(failures)[:400]})")


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
    """Stop training at the first batch that logs a NaN or infinite value (any of them).

    Unlike `keras.callbacks.TerminateOnNaN` it remembers where, so the program can say
    so in one line and skip writing the final model; the last checkpoint is left intact.
    """

    def __init__(self):
        super().__init__()
        self.bad_batch: int | None = None
        self.bad_value = ""
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        for name, value in (logs or {}).items():
            if not math.isfinite(float(value)):
                self.bad_batch, self.bad_value = batch, name
                self.model.diverged = True
                self.model.stop_training = True
                return

    def message(self, checkpointer: Checkpointer | None = None) -> str:
        where = (f"{self.bad_value} became non-finite in epoch {self.epoch + 1}, "
                 f"batch {self.bad_batch}")
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


class SignalStop(Exception):
    """Raised out of `fit` by `StopOnSignal` after the step during which a signal came."""

    def __init__(self, signal_number: int, epoch: int, batches: int):
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number, self.epoch, self.batches = signal_number, epoch, batches


class StopOnSignal(keras.callbacks.Callback):
    """SIGTERM or SIGINT during training ends it after the current step; a second one ends
    the process at once, with the signal's exit status.

    Schedulers (Slurm, Kubernetes, spot instances) send SIGTERM and wait a grace period
    before SIGKILL: this uses it to checkpoint the step. The stop is raised (`SignalStop`)
    instead of setting `stop_training`, so no epoch-end evaluation delays it. A signal that
    comes during that evaluation takes effect at the next step. Used as a context manager
    around `fit`, which installs the handlers (main thread only) and restores the old ones.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        super().__init__()
        self.received: int | None = None
        self.epoch = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._handle) for number in self.SIGNALS}
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    def _handle(self, number: int, frame: Any) -> None:
        if self.received is not None:
            os._exit(128 + number)  # the second signal: no saving, no clean-up
        self.received = number

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch
        if self.received is not None:  # came during an epoch's last step or its evaluation
            raise SignalStop(self.received, epoch, 0)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # After an epoch's last step, the epoch ends as usual (its checkpoint is the stop's).
        if self.received is not None and batch + 1 < self.params.get("steps", batch + 2):
            raise SignalStop(self.received, self.epoch, batch + 1)
