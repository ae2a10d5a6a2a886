"""common.checkpoints: round trips, mismatch errors, and surviving kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.checkpoints import Checkpointer, CheckpointEveryEpoch, StopAfterTime, StopOnNaN
from common.errors import UserError
from tests.helpers import ROOT


def tiny_model(width: int = 3) -> keras.Model:
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(width), keras.layers.Dense(1)])


def trained(model: keras.Model) -> keras.optimizers.Optimizer:
    optimizer = keras.optimizers.Adam(0.1)
    model.compile(optimizer, "mse")
    model.fit(np.ones((8, 2)), np.zeros((8, 1)), epochs=2, verbose=0)
    return optimizer


def test_round_trip_restores_model_optimizer_epoch_and_rng(tmp_path):
    model = tiny_model()
    optimizer = trained(model)
    rng = tf.random.Generator.from_seed(5)
    saver = Checkpointer(tmp_path, model=model, optimizer=optimizer, rng=rng)
    saver.save(epoch=4)
    expected_draw = rng.normal([3]).numpy()

    clone = tiny_model()
    clone_optimizer = keras.optimizers.Adam(0.1)
    clone_optimizer.build(clone.trainable_variables)
    clone_rng = tf.random.Generator.from_seed(99)
    loader = Checkpointer(tmp_path, model=clone, optimizer=clone_optimizer, rng=clone_rng)
    assert loader.restore()
    assert loader.epoch == 4
    assert int(clone_optimizer.iterations.numpy()) == int(optimizer.iterations.numpy()) > 0
    for a, b in zip(model.get_weights(), clone.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(optimizer.variables, clone_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(clone_rng.normal([3]).numpy(), expected_draw)


def test_restore_without_checkpoint_returns_false(tmp_path):
    assert not Checkpointer(tmp_path, model=tiny_model()).restore()


def test_checkpoint_of_another_architecture_is_a_user_error(tmp_path):
    Checkpointer(tmp_path, model=tiny_model(3)).save(epoch=1)
    with pytest.raises(UserError, match="does not match this model"):
        Checkpointer(tmp_path, model=tiny_model(5)).restore()


def test_keeps_only_the_last_n(tmp_path):
    saver = Checkpointer(tmp_path, max_to_keep=2, model=tiny_model())
    for epoch in range(1, 5):
        saver.save(epoch)
    assert [os.path.basename(p) for p in saver.manager.checkpoints] == ["ckpt-3", "ckpt-4"]


def test_nan_epoch_is_not_checkpointed(tmp_path):
    model = tiny_model()
    optimizer = keras.optimizers.SGD(1e30)  # explodes to inf/NaN within a few steps
    model.compile(optimizer, "mse")
    saver = Checkpointer(tmp_path, model=model, optimizer=optimizer)
    guard = StopOnNaN()
    x = np.full((64, 2), 10.0, np.float32)
    model.fit(x, np.full((64, 1), 1e3, np.float32), batch_size=8, epochs=5, verbose=0,
              callbacks=[guard, CheckpointEveryEpoch(saver)])
    assert guard.bad_batch is not None
    assert saver.latest is None  # the broken epoch never overwrote a good state
    assert "loss became non-finite in epoch 1" in guard.message(saver)


class SlowBatches(keras.callbacks.Callback):
    """Each batch takes at least `seconds` (as if the model were big), and counts them."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.batches = seconds, 0

    def on_train_batch_begin(self, batch, logs=None):
        time.sleep(self.seconds)

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def test_time_budget_stops_after_the_batch_that_spends_it(tmp_path):
    model = tiny_model()
    model.compile("sgd", "mse")
    x, y = np.ones((64, 2), np.float32), np.zeros((64, 1), np.float32)
    model.fit(x, y, batch_size=8, verbose=0)  # trace the train step outside the budget
    slow, budget = SlowBatches(0.1), StopAfterTime(0.45)
    saver = Checkpointer(tmp_path, model=model)
    spent = []  # the budget's count after each batch
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda *_, **__: spent.append(budget.spent))
    # The budget first: SlowBatches' sleep then falls inside its batch timing. An epoch has 8
    # batches of at least 0.1 s, so the budget runs out within the first epoch's 5th batch.
    model.fit(x, y, batch_size=8, epochs=10, verbose=0,
              callbacks=[budget, slow, CheckpointEveryEpoch(saver), record])
    assert budget.reached and 1 <= slow.batches <= 5 and len(spent) == slow.batches
    assert spent[-1] >= 0.45 and (len(spent) == 1 or spent[-2] < 0.45)  # stopped at the first batch past it
    assert all(later - earlier >= 0.1 for earlier, later in zip([0.0, *spent], spent))  # sleeps counted
    assert saver.epoch == 1  # the cut-short epoch is still saved
    unlimited = StopAfterTime(60.0)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[unlimited])
    assert not unlimited.reached and unlimited.spent > 0


def _fit(run_dir, *extra, delay="0"):
    return subprocess.Popen([sys.executable, "-m", "tests.resumable_fit", "--run-dir", str(run_dir),
                             "--epochs", "6", "--batch-delay", delay, *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_kill_nine_then_resume_matches_an_uninterrupted_run(tmp_path):
    reference = _fit(tmp_path / "reference")
    killed = _fit(tmp_path / "killed", delay="0.1")
    index = tmp_path / "killed" / "checkpoints" / "checkpoint"
    deadline = time.time() + 120
    while time.time() < deadline and killed.poll() is None:
        if index.exists() and "ckpt-20" in index.read_text():  # numbered by step: 10 a epoch
            break
        time.sleep(0.05)
    assert killed.poll() is None, killed.communicate()
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not json.loads((tmp_path / "killed" / "metrics.json").read_text())["finished"]
    stale = (tmp_path / "killed" / ".lock").read_text().strip()
    assert stale == str(killed.pid)  # the dead trainer's lock file stays; the resume below takes it

    resumed = _fit(tmp_path / "killed", "--resume")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    reference.communicate(timeout=300)
    done = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    expected = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    assert done["steps"] == expected["steps"] == 6 * 10
    for a, b in zip(done["weights"], expected["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.slow
def test_resume_falls_back_past_a_damaged_newest_checkpoint(cli, tmp_path):
    run_dir = tmp_path / "run"
    first = cli("tests.resumable_fit", "--run-dir", str(run_dir), "--epochs", "3")
    assert first.returncode == 0, first.stderr[-2000:]
    _truncate(run_dir / "checkpoints" / "ckpt-30.data-00000-of-00001")  # a partly copied file (step 30)
    resumed = cli("tests.resumable_fit", "--run-dir", str(run_dir), "--epochs", "4", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    warnings = [line for line in resumed.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "ckpt-30" in warnings[0] and "resumed from ckpt-20" in warnings[0]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 4 and metrics["steps"] == 4 * 10  # epochs 3 and 4 trained again
    assert metrics["history"]["epoch"] == [1, 2, 3, 4]


@pytest.mark.slow
def test_resume_with_no_checkpoint_that_restores_is_one_line(cli, tmp_path):
    from tests.helpers import assert_one_line_error

    run_dir = tmp_path / "run"
    assert cli("tests.resumable_fit", "--run-dir", str(run_dir), "--epochs", "2").returncode == 0
    for index in (run_dir / "checkpoints").glob("ckpt-*.index"):
        _truncate(index)
    result = cli("tests.resumable_fit", "--run-dir", str(run_dir), "--epochs", "3", "--resume")
    assert_one_line_error(result, "no checkpoint restores")


@pytest.mark.slow
def test_resume_needs_an_existing_run(cli, tmp_path):
    from tests.helpers import assert_one_line_error

    result = cli("tests.resumable_fit", "--run-dir", str(tmp_path / "none"), "--resume")
    assert_one_line_error(result, "no such run folder")
