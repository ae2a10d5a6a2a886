"""common.runs.RunLock and common.training under the three hazards of shared machines: a
second trainer on the same folder, SIGTERM/SIGINT from a scheduler, a full disk."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from common.errors import UserError, run_cli
from common.runs import LOCK_FILE, RunLock
from tests import resumable_fit
from tests.helpers import ROOT


def _fit(run_dir: Path, *extra: str, delay: str = "0") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.resumable_fit", "--run-dir", str(run_dir),
                             "--epochs", "6", "--batch-delay", delay, *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline and process.poll() is None and not condition():
        time.sleep(0.05)
    assert process.poll() is None and condition(), process.communicate()


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {str(path.relative_to(folder)): (path.stat().st_mtime_ns, path.read_bytes())
            for path in sorted(folder.rglob("*")) if path.is_file()}


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _error_lines(stderr: str, label: str = "error:") -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(label)]


def test_a_second_lock_names_the_folder_and_the_holders_pid(tmp_path):
    with RunLock(tmp_path / "run"):
        assert (tmp_path / "run" / LOCK_FILE).read_text().strip() == str(os.getpid())
        with pytest.raises(UserError, match=rf"{tmp_path / 'run'} is in use .*pid {os.getpid()}\)"):
            RunLock(tmp_path / "run").acquire()
    assert not (tmp_path / "run").exists()  # made by the lock and left empty: removed again
    with RunLock(tmp_path / "run"):  # free again
        (tmp_path / "run" / "kept.txt").write_text("output")
    assert (tmp_path / "run" / "kept.txt").is_file() and not (tmp_path / "run" / LOCK_FILE).exists()


@pytest.mark.slow
def test_two_trainers_on_one_folder_one_runs_and_the_other_changes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    first = _fit(run_dir, delay="0.05")
    _wait_for(lambda: list((run_dir / "checkpoints").glob("ckpt-*.index")), first)
    first.send_signal(signal.SIGSTOP)  # hold the folder still while the second one tries
    try:
        before = _snapshot(run_dir)
        second = subprocess.run([sys.executable, "-m", "tests.resumable_fit", "--run-dir", str(run_dir),
                                 "--epochs", "6", "--resume"], cwd=ROOT, capture_output=True, text=True,
                                timeout=300)
        assert _snapshot(run_dir) == before
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 2 and "Traceback" not in second.stderr, second.stderr[-2000:]
    lines = _error_lines(second.stderr)
    assert len(lines) == 1 and str(run_dir) in lines[0] and f"pid {first.pid}" in lines[0], lines
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert _metrics(run_dir)["finished"] and _metrics(run_dir)["steps"] == 60


@pytest.mark.slow
def test_two_trainers_started_together_exactly_one_runs(tmp_path):
    run_dir = tmp_path / "run"
    trainers = [_fit(run_dir, delay="0.1") for _ in range(2)]  # the winner holds the lock for 6 s or more
    results = [(trainer.pid, trainer.returncode, trainer.communicate(timeout=300)[1])
               for trainer in trainers for _ in [trainer.wait(timeout=300)]]
    assert sorted(code for _, code, _ in results) == [0, 2], [err[-1000:] for _, _, err in results]
    winner = next(pid for pid, code, _ in results if code == 0)
    lines = _error_lines(next(err for _, code, err in results if code == 2))
    assert len(lines) == 1 and f"pid {winner}" in lines[0], lines


@pytest.mark.slow
def test_sigterm_mid_epoch_checkpoints_the_step_and_resume_matches_an_uninterrupted_run(tmp_path):
    reference = _fit(tmp_path / "reference")
    run_dir = tmp_path / "stopped"
    stopped = _fit(run_dir, delay="0.5")
    _wait_for(lambda: len(list((run_dir / "checkpoints").glob("ckpt-*.index"))) >= 2, stopped)
    time.sleep(1.2)  # two or three batches into the third epoch, far from its end
    stopped.send_signal(signal.SIGTERM)
    out, err = stopped.communicate(timeout=60)  # a hang guard; promptness is the step count below
    assert stopped.returncode == 143, err[-2000:]
    assert "Traceback" not in err and len(_error_lines(err, "stopped: SIGTERM")) == 1, err[-2000:]
    metrics = _metrics(run_dir)
    assert metrics["stopped_by"] == "SIGTERM" and not metrics["finished"]
    assert metrics["steps"] % 10 != 0 and metrics["epochs"] == metrics["steps"] // 10  # mid-epoch
    assert metrics["steps"] < 30  # within the epoch the signal came in, not at the run's end
    assert (run_dir / "checkpoints" / f"ckpt-{metrics['steps']}.index").is_file()

    resumed = _fit(run_dir, "--resume")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    reference.communicate(timeout=300)
    done, expected = _metrics(run_dir), _metrics(tmp_path / "reference")
    assert done["steps"] == expected["steps"] == 60 and "stopped_by" not in done
    assert len(done["history"]["epoch"]) == 6
    for a, b in zip(done["weights"], expected["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_sigint_stops_with_130_and_a_second_signal_ends_at_once(tmp_path):
    run_dir = tmp_path / "interrupted"
    first = _fit(run_dir, delay="0.1")
    _wait_for(lambda: list((run_dir / "checkpoints").glob("ckpt-*.index")), first)
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=60)
    assert first.returncode == 130 and _metrics(run_dir)["stopped_by"] == "SIGINT"

    run_dir = tmp_path / "twice"
    twice = _fit(run_dir, delay="20")  # each batch then sleeps 20 s after its step
    _wait_for(lambda: (run_dir / "metrics.json").is_file(), twice)
    time.sleep(1)
    sent = time.time()
    twice.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    twice.send_signal(signal.SIGTERM)
    twice.communicate(timeout=60)
    assert twice.returncode == 143 and time.time() - sent < 10  # did not wait out the 20-s step
    assert "stopped_by" not in _metrics(run_dir)


def full_disk_after(monkeypatch, step: int) -> None:
    """`os.fsync` fails with ENOSPC from the `step`-th training step on, as on a disk that
    fills up mid-run (the project's own files all go through `common.files.atomic_write`)."""
    real, armed = os.fsync, []

    def fsync(fd: int) -> None:
        if armed:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    def batch_end(callback, batch, logs=None) -> None:
        if int(callback.model.optimizer.iterations.numpy()) >= step:
            armed.append(batch)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(resumable_fit.Slow, "on_train_batch_end", batch_end)


def _run_tiny(run_dir: Path, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stop:
        run_cli(resumable_fit.main, ["--run-dir", str(run_dir), "--epochs", "6", "--quiet"])
    return stop.value.code, capsys.readouterr().err


def _restores(run_dir: Path, checkpoint: str) -> None:
    reader = tf.train.load_checkpoint(str(run_dir / "checkpoints" / checkpoint))
    assert reader.get_variable_to_shape_map()


def test_a_full_disk_names_the_file_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    full_disk_after(monkeypatch, step=15)
    code, err = _run_tiny(tmp_path / "run", capsys)
    lines = _error_lines(err)
    assert code == 1 and len(lines) == 1, err[-2000:]
    assert f"cannot write {tmp_path / 'run' / 'metrics.json'}: no space left on device" in lines[0]
    assert "out of memory" not in lines[0] and lines[0].endswith("ckpt-10")
    _restores(tmp_path / "run", "ckpt-10")


def test_a_checkpoint_that_finds_the_disk_full_is_named_as_such(tmp_path, monkeypatch, capsys):
    real_save = tf.train.CheckpointManager.save

    def save(manager, checkpoint_number=None, **kwargs):
        if checkpoint_number < 20:
            return real_save(manager, checkpoint_number=checkpoint_number, **kwargs)
        temporary = f"{manager.directory}/ckpt-{checkpoint_number}_temp/part-00000-of-00001.data"
        raise tf.errors.ResourceExhaustedError(None, None, f"{{{{function_node SaveV2}}}} {temporary}; "
                                               "No space left on device [Op:SaveV2]")

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
    code, err = _run_tiny(tmp_path / "run", capsys)
    lines = _error_lines(err)
    assert code == 1 and len(lines) == 1, err[-2000:]
    assert f"cannot write {tmp_path / 'run'}/checkpoints/ckpt-20_temp/" in lines[0]
    assert "no space left on device" in lines[0] and lines[0].endswith("ckpt-10")
    _restores(tmp_path / "run", "ckpt-10")


def test_running_out_of_memory_still_says_out_of_memory(tmp_path, monkeypatch, capsys):
    def allocate(callback, batch, logs=None):
        if int(callback.model.optimizer.iterations.numpy()) >= 15:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[8,4]")

    monkeypatch.setattr(resumable_fit.Slow, "on_train_batch_end", allocate)
    code, err = _run_tiny(tmp_path / "run", capsys)
    lines = _error_lines(err)
    assert code == 1 and len(lines) == 1 and "out of memory (ResourceExhaustedError)" in lines[0], err
    assert lines[0].endswith("ckpt-10") and "no space" not in lines[0]


@pytest.mark.slow
def test_style_transfer_and_the_comparison_take_the_lock_of_their_folder(tmp_path, vgg19_weights):
    from experiments.compare import main as compare_main
    from nst.run import main as nst_main

    for program, args in ((nst_main, ["--size", "32", "--iterations", "1", "--vgg-weights", vgg19_weights,
                                      "--run-dir", str(tmp_path / "nst")]),
                          (compare_main, ["--quick", "--out", str(tmp_path / "compare")])):
        folder = Path(args[-1])
        with RunLock(folder):
            before = _snapshot(folder)
            with pytest.raises(UserError, match=rf"{folder} is in use .*pid {os.getpid()}\)"):
                program(args)
            assert _snapshot(folder) == before
