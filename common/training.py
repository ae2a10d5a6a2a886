"""The one trainer skeleton: every training program runs its model through `TrainingRun`.

`vae/train.py`, `gan/train.py` and `nst/fast.py` say only what is particular to their
model (data, networks, their own callbacks, final numbers). The mechanics are here, in
the order each trainer calls them:

    with TrainingRun("vae", settings, epochs) as run:  # refusals; precision; strategy
        with run.strategy.scope():
            model = ...; optimizer = run.optimizer(keras.optimizers.Adam(lr))
        run.start(checkpoint={...}, steps=optimizer.iterations, ...)   # resume, config.json
        run.fit(model, data, steps_per_epoch, callbacks=[...])         # standard callbacks
        run.finish(test_nll=...)                                       # final metrics.json

The run folder is locked (`common.runs.RunLock`) from the first call to the last, so a
second trainer on it stops at once. Exit codes (see `common.errors`): 2 for bad input, 1
for a run that failed (a NaN or infinite loss, out of memory, a failed write: the last
good checkpoint is kept and named), 143 / 130 for a run that SIGTERM / SIGINT stopped
after checkpointing its step, 0 for success. metrics.json follows the run schema of
docs/runs.md (`SCHEMA`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from common.checkpoints import (
    Checkpointer,
    CheckpointEveryEpoch,
    SignalStop,
    StopAfterTime,
    StopOnNaN,
    StopOnSignal,
)
from common.config import TrainingSettings, progress_verbosity, settings_dict
from common.distribute import (
    SyncStop,
    barrier,
    get_strategy,
    is_chief,
    reducible_logs,
    shard_by_data,
    worker_count,
)
from common.errors import RunFailed, Stopped, UserError
from common.files import read_json
from common.runs import (
    CONFIG_FILE,
    METRICS_FILE,
    RunLock,
    create_run,
    load_run_config,
    run_dir_for,
    set_seed,
    write_metrics,
)
from common.tensorboard import EpochScalars, TensorBoardLogger

SCHEMA = 2


class EpochRecord(keras.callbacks.Callback):
    """metrics.json's `history` (one entry per epoch) and counters, written every epoch.

    Keras' epoch logs are the means of the model's metric trackers: `val_x` goes to
    `test_x`, `sample_x` (added by `SampleQuality`) and `validation_x` (a held-out split
    other than the test set) stay, anything else becomes `train_x`.
    Written before the epoch's checkpoint, so after a kill it holds at least the
    checkpointed epochs; `TrainingRun.start` cuts it back to them on resume.
    """

    def __init__(self, run: TrainingRun):
        super().__init__()
        self.run = run
        self.started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if getattr(self.model, "diverged", False):
            return
        row = {"epoch": epoch + 1, "epoch_seconds": time.perf_counter() - self.started}
        for key, value in (logs or {}).items():
            if key.startswith("val_"):
                key = "test_" + key[4:]
            elif not key.startswith(("sample_", "validation_")):
                key = "train_" + key
            row[key] = float(value)
        history = self.run.metrics["history"]
        done = len(history.get("epoch", []))
        for key in row.keys() | history.keys():  # None where a value was not measured
            history.setdefault(key, [None] * done).append(row.get(key))
        self.run.record_progress(epochs=epoch + 1)


def _cut_history(metrics: dict[str, Any], epochs: int, steps: int) -> dict[str, Any]:
    """An interrupted run's metrics cut back to what its checkpoint holds."""
    metrics["history"] = {key: values[:epochs] for key, values in metrics.get("history", {}).items()}
    steps_seen = metrics.get("step_history", {}).get("step", [])
    keep = [i for i, step in enumerate(steps_seen) if step <= steps]
    metrics["step_history"] = {key: [values[i] for i in keep]
                               for key, values in metrics.get("step_history", {}).items()}
    return metrics


# Write failures the OS reports; TensorFlow's own file writes report ENOSPC as
# ResourceExhaustedError, the class it also uses for running out of memory.
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO)
NO_SPACE = ("No space left on device", "Disk quota exceeded")


def run_failure(error: BaseException, checkpoint: str | None) -> RunFailed | None:
    """What a failed write or running out of memory becomes: one line naming the cause (and
    for a write, the path) and the last good checkpoint; None for any other error."""
    kept = f"last good checkpoint: {checkpoint or 'none'}"
    if isinstance(error, OSError) and error.errno in WRITE_ERRORS:
        return RunFailed(f"cannot write {error.filename or 'a file'}: {error.strerror.lower()}; {kept}")
    text = str(error)
    if isinstance(error, tf.errors.ResourceExhaustedError) and any(n in text for n in NO_SPACE):
        path = text.split(";")[0].split(" ")[-1]  # TF: "Failed to … file PATH; No space left on device"
        return RunFailed(f"cannot write {path}: no space left on device; {kept}")
    if isinstance(error, (tf.errors.ResourceExhaustedError, MemoryError)):
        return RunFailed(f"out of memory ({type(error).__name__}); {kept}")
    return None


class TrainingRun:
    """One training run's mechanics; see the module docstring for the order of calls."""

    def __init__(self, family: str, settings: TrainingSettings, epochs: int):
        self.family, self.settings, self.epochs = family, settings, epochs
        self.run_dir = run_dir_for(family, settings)
        self.strategy = get_strategy(settings.strategy)
        self.workers, self.chief = worker_count(self.strategy), is_chief(self.strategy)
        if settings.resume:  # refusals: nothing is written before they pass
            load_run_config(self.run_dir, family)
        # The lock before the last refusal: two trainers started at once cannot both pass it.
        self.lock = RunLock(self.run_dir).acquire() if self.chief else None
        if not settings.resume and (self.run_dir / CONFIG_FILE).exists():
            if self.lock:
                self.lock.release()
            raise UserError(f"{self.run_dir} already holds a run; use --resume to continue it "
                            "or pick another --run-dir/--name")
        self.shared_dir = self.run_dir  # the chief's: every worker resumes from its checkpoints
        if not self.chief:  # the other workers write their copies where nobody reads them
            self.run_dir = Path(tempfile.mkdtemp(prefix=f"{family}_worker_"))
        self.metrics: dict[str, Any] = {}
        self.checkpointer: Checkpointer | None = None
        self.logger: TensorBoardLogger | None = None
        self.stop_on_nan = StopOnNaN()
        self.budget = StopAfterTime(60 * settings.max_minutes) if settings.max_minutes else None
        self._steps: tf.Variable | None = None
        self._policy = keras.mixed_precision.global_policy()

    def __enter__(self) -> TrainingRun:
        keras.mixed_precision.set_global_policy(self.settings.precision)
        set_seed(self.settings.seed, self.settings.deterministic)
        if self.settings.precision != "float32" and not tf.config.list_logical_devices("GPU"):
            print(f"note: --precision {self.settings.precision} without a GPU is usually slower, "
                  "not faster", flush=True)
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, trace: Any) -> None:
        if kind is None:
            barrier(self.strategy)  # no worker leaves while a peer is still in a collective
        keras.mixed_precision.set_global_policy(self._policy)  # callers get their policy back
        if self.logger is not None:
            self.logger.close()
        if not self.chief:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        if self.lock is not None:
            self.lock.release()
        failure = error and run_failure(error, self.checkpointer and self.checkpointer.latest)
        if failure is not None:
            raise failure from None

    def optimizer(self, optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
        """`optimizer`, with dynamic loss scaling under mixed_float16 (train steps call
        `optimizer.scale_loss`; `apply_gradients` unscales)."""
        if self.settings.precision == "mixed_float16":
            return keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    def start(self, checkpoint: dict[str, Any], steps: tf.Variable, parameters: int,
              sampler_parameters: int, hparams: list[str] = ()) -> int:
        """Restore the newest checkpoint that loads (--resume), write config.json, open
        TensorBoard; returns the epochs already done.

        `checkpoint` names everything a checkpoint holds; `steps` counts `train_step` calls.
        """
        self.checkpointer = Checkpointer(self.run_dir / "checkpoints", numbered_by=steps,
                                         read_directory=self.shared_dir / "checkpoints", **checkpoint)
        self._steps = steps
        if self.settings.resume and self.checkpointer.restore():
            print(f"resuming {self.run_dir} after epoch {self.checkpointer.epoch} "
                  f"(step {int(steps.numpy())})", flush=True)
        epochs = self.checkpointer.epoch
        if epochs > self.epochs:
            raise UserError(f"the run already has {epochs} epochs, more than the {self.epochs} "
                            "asked for now")
        create_run(self.family, self.settings, resume=self.settings.resume and self.chief,
                   run_dir=self.run_dir)
        previous = self.run_dir / METRICS_FILE
        old = read_json(previous, "metrics file") if epochs and previous.is_file() else {}
        if old and old.get("schema") != SCHEMA:
            raise UserError(f"{previous}: written by an older version (no schema {SCHEMA}); resume it "
                            "with that version, or start a new run (docs/runs.md)")
        self.metrics = _cut_history(old, epochs, int(steps.numpy()))
        self.metrics.pop("stopped_by", None)
        if self.budget:  # the budget is the run's, not this process's
            self.budget.spent = float(self.metrics.get("budget_seconds", 0.0))
        self.metrics.update(schema=SCHEMA, finished=False, parameters=parameters,
                            sampler_parameters=sampler_parameters, time_budget_reached=False)
        # A resumed run draws new noise and a new data order instead of replaying epoch 1's.
        set_seed(self.settings.seed + epochs, self.settings.deterministic)
        self.logger = TensorBoardLogger(self.run_dir)
        self.logger.config(settings_dict(self.settings))
        self.logger.hparams(settings_dict(self.settings), list(hparams))
        self.record_progress(epochs=epochs)  # a resumed run is unfinished until it ends
        return epochs

    def record_progress(self, epochs: int | None = None) -> None:
        """Update the counters in metrics.json and write it (atomically)."""
        history = self.metrics["history"]
        if epochs is not None:
            self.metrics["epochs"] = epochs
        self.metrics["steps"] = int(self._steps.numpy())
        self.metrics["train_seconds"] = float(sum(s for s in history.get("epoch_seconds", []) if s))
        if self.budget:
            self.metrics["budget_seconds"] = self.budget.spent
        per_epoch = self.metrics.get("steps_per_epoch")
        cut_short = self.metrics["time_budget_reached"] or "stopped_by" in self.metrics
        self.metrics["epochs_trained"] = (self.metrics["steps"] / per_epoch if cut_short and per_epoch
                                          else float(self.metrics.get("epochs", 0)))
        write_metrics(self.run_dir, self.metrics)

    def callbacks(self, own: list[keras.callbacks.Callback],
                  stop: StopOnSignal | None = None) -> list[keras.callbacks.Callback]:
        """The model's own callbacks between the standard ones, in the order that matters:
        NaN stop, time budget and signal stop first, then the model's (they may add to the
        epoch logs), then the record, TensorBoard and last the checkpoint of the finished
        epoch."""
        first = [self.stop_on_nan, *([self.budget] if self.budget else []), *([stop] if stop else [])]
        last = [SyncStop()] if self.workers > 1 else []  # a stop on one worker stops all
        return [*first, *own, EpochRecord(self), EpochScalars(self.logger),
                CheckpointEveryEpoch(self.checkpointer), *last]

    def fit(self, model: keras.Model, data: tf.data.Dataset, steps_per_epoch: int,
            callbacks: list[keras.callbacks.Callback] = (), **fit_args: Any) -> None:
        """`model.fit` from where the checkpoint left off, with the standard callbacks.

        A run a signal stopped mid-epoch first trains the rest of that epoch, on the data
        after the batches it had done. A NaN/inf loss raises `RunFailed` (exit 1) and a
        signal `Stopped` (exit 143 / 130) after checkpointing the step.
        """
        self.metrics["steps_per_epoch"] = steps_per_epoch
        fit_args["verbose"] = progress_verbosity(self.settings.quiet)
        stop = StopOnSignal() if self.workers == 1 else None  # several workers: SyncStop's business
        if self.workers > 1:
            model.train_step, model.test_step = map(reducible_logs, (model.train_step, model.test_step))
            data = shard_by_data(data)
            if fit_args.get("validation_data") is not None:
                fit_args["validation_data"] = shard_by_data(fit_args["validation_data"])
        if self.budget and self.budget.spent >= self.budget.seconds:  # spent before this resume
            self.budget.reached = True
            self.metrics["time_budget_reached"] = True
            self.record_progress()
            return
        every = self.callbacks(list(callbacks), stop)
        done = offset = self.checkpointer.batches
        with stop or contextlib.nullcontext():
            try:
                if done:  # the rest of the epoch a signal cut short
                    epoch = self.checkpointer.epoch
                    model.fit(data.skip(done), epochs=epoch + 1, initial_epoch=epoch, callbacks=every,
                              steps_per_epoch=steps_per_epoch - done, shuffle=False, **fit_args)
                    offset = 0
                if not (done and model.stop_training):
                    model.fit(data, epochs=self.epochs, initial_epoch=self.checkpointer.epoch,
                              steps_per_epoch=steps_per_epoch, callbacks=every, shuffle=False, **fit_args)
            except SignalStop as signal_stop:
                batches = signal_stop.batches + offset if signal_stop.batches else 0
                self.stopped(signal_stop.signal_number, signal_stop.epoch if batches else None, batches)
            if stop and stop.received:  # during the last epoch's evaluation: its checkpoint stands
                self.stopped(stop.received)
        if self.stop_on_nan.bad_batch is not None:
            raise RunFailed(self.stop_on_nan.message(self.checkpointer))
        self.metrics["time_budget_reached"] = bool(self.budget and self.budget.reached)
        self.record_progress()

    def stopped(self, signal_number: int, epoch: int | None = None, batches: int = 0) -> None:
        """Checkpoint the step a signal stopped at (`epoch` None: it ended an epoch, whose
        checkpoint stands), mark metrics.json, and raise `Stopped`."""
        if epoch is not None:
            self.checkpointer.save(epoch, batches)
        self.metrics["stopped_by"] = signal.Signals(signal_number).name
        self.record_progress()
        if sys.stdout.isatty():
            print(flush=True)  # end the progress bar's line
        raise Stopped(f"{self.metrics['stopped_by']} after step {self.metrics['steps']}; checkpoint "
                      f"{self.checkpointer.latest or 'none'}; continue with --resume", signal_number)

    def finish(self, **final: Any) -> dict[str, Any]:
        """Mark the run finished with the family's final numbers; returns metrics.json.

        With several workers each prints a fingerprint of its weights: equal fingerprints
        show that the workers ended in the same state.
        """
        self.metrics.update(final, finished=True)
        self.record_progress()
        if self.workers > 1:
            digest = hashlib.sha256()
            for item in self.checkpointer.checkpoint_items.values():
                for variable in getattr(item, "variables", []):
                    digest.update(np.asarray(variable.numpy()).tobytes())
            print(f"worker {'chief' if self.chief else 'non-chief'}: {self.metrics['steps']} steps, "
                  f"weights sha256 {digest.hexdigest()[:16]}", flush=True)
        return self.metrics
