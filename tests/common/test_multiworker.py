"""Data-parallel training over two worker processes on 127.0.0.1 (MultiWorkerMirroredStrategy).

Each trainer runs as two processes with a two-worker TF_CONFIG, as a user spreading a run
over two machines would. Both must finish, end with identical weights (the fingerprint
each worker prints), and the chief's metrics.json must hold the right step counters.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from common.images import load_image, resize_long_side, save_image
from tests.helpers import ROOT

pytestmark = pytest.mark.slow
FINGERPRINT = re.compile(r"^worker (chief|non-chief): (\d+) steps, weights sha256 ([0-9a-f]+)$", re.M)


def free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out (closed again; a start that loses the race is retried)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(module: str, args: list[str]) -> list[subprocess.Popen]:
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CONFIG": json.dumps(config),
               "CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "2"}
        processes.append(subprocess.Popen([sys.executable, "-m", module, *args, "--strategy", "multiworker"],
                                          cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))
    return processes


def train_on_two_workers(module: str, *args: str, timeout: float = 400) -> list[tuple[str, int, str]]:
    """Run `python -m module args` as two workers; (role, steps, fingerprint) of each."""
    for attempt in range(2):
        processes = start_workers(module, list(args))
        try:
            outputs = [process.communicate(timeout=timeout)[0] for process in processes]
        finally:
            for process in processes:
                process.kill()
        if not any("address already in use" in out.lower() for out in outputs) or attempt:
            break
    for process, out in zip(processes, outputs):
        assert process.returncode == 0, out[-4000:]
    found = [FINGERPRINT.findall(out) for out in outputs]
    assert all(len(lines) == 1 for lines in found), outputs
    return sorted(lines[0] for lines in found)


def assert_same_state(workers: list[tuple[str, int, str]]) -> None:
    (role_a, steps_a, digest_a), (role_b, steps_b, digest_b) = workers
    assert {role_a, role_b} == {"chief", "non-chief"}
    assert steps_a == steps_b and digest_a == digest_b


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_vae_trains_on_two_workers(data_dir, tmp_path):
    run_dir = tmp_path / "vae"
    workers = train_on_two_workers(
        "vae.train", "--run-dir", str(run_dir), "--data-dir", data_dir, "--epochs", "2",
        "--steps-per-epoch", "3", "--batch-size", "20", "--hidden-units", "32", "--latent-dim", "4",
        "--nll-k", "2", "--nll-k-train", "0", "--no-eval", "--quiet")
    assert_same_state(workers)
    metrics = metrics_of(run_dir)
    assert metrics["finished"] and metrics["steps"] == 6 and int(workers[0][1]) == 6
    assert not list(tmp_path.glob("vae_worker_*"))  # the non-chief wrote nothing here


def test_gan_trains_on_two_workers_with_k_discriminator_steps(data_dir, tmp_path):
    run_dir = tmp_path / "gan"
    workers = train_on_two_workers(
        "gan.train", "--run-dir", str(run_dir), "--data-dir", data_dir, "--arch", "dcgan", "--k", "2",
        "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "16", "--no-eval", "--quiet")
    assert_same_state(workers)
    metrics = metrics_of(run_dir)
    assert metrics["steps"] == 6 and metrics["discriminator_steps"] == 2 * 6  # d = k·g
    assert (run_dir / "generator.keras").is_file()


def test_fast_style_transfer_trains_on_two_workers(asset_images, vgg19_weights, tmp_path):
    photos = tmp_path / "photos"
    for name in ("tubingen", "golden_gate"):
        save_image(photos / f"{name}.png", resize_long_side(load_image(asset_images / f"{name}.jpg"), 80))
    run_dir = tmp_path / "fast"
    workers = train_on_two_workers(
        "nst.fast", "train", "--run-dir", str(run_dir), "--style", str(asset_images / "starry_night.jpg"),
        "--content-dir", str(photos), "--steps", "4", "--log-every", "2", "--image-size", "48",
        "--batch-size", "2", "--style-size", "64", "--vgg-weights", vgg19_weights, "--quiet")
    assert_same_state(workers)
    assert metrics_of(run_dir)["steps"] == 4 and (run_dir / "model.keras").is_file()


def test_resume_on_two_workers_continues_from_the_chiefs_checkpoint(tmp_path):
    run_dir = tmp_path / "tiny"
    first = train_on_two_workers("tests.resumable_fit", "--run-dir", str(run_dir), "--epochs", "2")
    assert_same_state(first)
    resumed = train_on_two_workers("tests.resumable_fit", "--run-dir", str(run_dir), "--epochs", "4",
                                   "--resume")
    assert_same_state(resumed)
    metrics = metrics_of(run_dir)
    assert metrics["steps"] == 4 * 10 and metrics["history"]["epoch"] == [1, 2, 3, 4]
