"""gan.train and gan.sample end to end: run folder, metrics, save → load, resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from common.errors import UserError
from common.images import to_uint8
from gan import model as gan_model
from gan.model import build_discriminator, build_generator
from gan.sample import interpolate, load_generator, sample_images, score
from gan.sample import main as sample_main
from gan.train import Settings, main, train
from gan.trainer import TrainingMonitor
from tests.helpers import ROOT, assert_one_line_error

pytestmark = pytest.mark.slow  # trains models or runs whole programs

TINY = ["--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "16", "--log-every", "1", "--quiet",
        "--no-eval"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir, tiny_classifier_cache) -> Path:
    """A two-epoch, three-steps-per-epoch dcgan run with k = 2, scored at epoch 2 by the tiny
    classifier (its cache stays set for the module's tests)."""
    folder = tmp_path_factory.mktemp("gan") / "run"
    settings = Settings(run_dir=str(folder), data_dir=data_dir, k=2, epochs=2, steps_per_epoch=3,
                        batch_size=16, log_every=1, quiet=True, eval_every=2, eval_samples=100)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLASSIFIER_CACHE", tiny_classifier_cache["CLASSIFIER_CACHE"])
        assert train(settings) == folder
        yield folder


def test_run_folder_and_metrics(run, data_dir):
    for name in ("config.json", "metrics.json", "generator.keras", "samples.gif", "progress.png", "curves.png",
                 "outputs.png", "samples/epoch_001.png", "samples/epoch_002.png", "checkpoints/checkpoint"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard" / "train").glob("events.out.tfevents.*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["train_seconds"] > 0
    generator_parameters = build_generator("dcgan").count_params()
    assert metrics["sampler_parameters"] == generator_parameters
    assert metrics["parameters"] == generator_parameters + build_discriminator("dcgan").count_params()
    assert metrics["schema"] == 2 and metrics["finished"] and metrics["epochs_trained"] == 2
    assert metrics["steps"] == 6 and metrics["discriminator_steps"] == 12  # d = k·g
    history = metrics["history"]
    assert history["train_g_updates"] == [3, 6] and history["train_d_updates"] == [6, 12]
    for name in ("d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm"):
        assert len(history[f"train_{name}"]) == 2 and all(np.isfinite(history[f"train_{name}"])), name
    # Epoch values are the means of the step values (the trackers reset every epoch).
    steps = metrics["step_history"]
    assert steps["step"] == [1, 2, 3, 4, 5, 6]
    assert history["train_d_loss"][0] == pytest.approx(steps["d_loss"][2], rel=1e-6)
    assert history["sample_fid"][0] is None and history["sample_fid"][1] > 0  # scored at epoch 2 only
    assert 1 <= history["sample_classes_covered"][1] <= 10
    with Image.open(run / "samples.gif") as gif:
        assert gif.n_frames == 2 and gif.size == Image.open(run / "samples/epoch_001.png").size


def test_saved_generator_is_the_checkpointed_one(run):
    loaded = load_generator(run)
    restored = build_generator("dcgan")
    tf.train.Checkpoint(generator=restored).restore(
        tf.train.latest_checkpoint(run / "checkpoints")).expect_partial()
    noise = np.random.default_rng(0).standard_normal((4, 100)).astype(np.float32)
    np.testing.assert_allclose(loaded(noise, training=False), restored(noise, training=False), atol=1e-6)


def test_sample_and_interpolate(run):
    generator = load_generator(run)
    images = sample_images(generator, 5, seed=3)
    assert images.shape == (5, 28, 28) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    np.testing.assert_array_equal(images, sample_images(generator, 5, seed=3))
    walk = interpolate(generator, 7, seed=3)
    assert walk.shape == (7, 28, 28)
    # The walk starts and ends at the first two noise vectors drawn from the seed.
    np.testing.assert_allclose(walk[[0, -1]], sample_images(generator, 2, seed=3), atol=1e-5)


def test_sample_cli_writes_png_and_npz(run, tmp_path, cli):
    result = cli("gan.sample", "--run", str(run), "--n", "6", "--out", str(tmp_path / "s.npz"))
    assert result.returncode == 0, result.stderr[-2000:]
    with np.load(tmp_path / "s.npz") as archive:
        assert archive["images"].shape == (6, 28, 28) and archive["images"].dtype == np.uint8
        np.testing.assert_array_equal(archive["images"], to_uint8(sample_images(load_generator(run), 6)))
    sample_main(["--run", str(run), "--interpolate", "--n", "2", "--steps", "5",
                 "--out", str(tmp_path / "walk.png")])
    assert Image.open(tmp_path / "walk.png").size == (5 * 30 + 2, 2 * 30 + 2)


def test_sample_precision_computes_the_same_images_in_16_bits(run, tmp_path):
    sample_main(["--run", str(run), "--n", "6", "--precision", "mixed_bfloat16",
                 "--out", str(tmp_path / "b.npz")])
    with np.load(tmp_path / "b.npz") as archive:
        half = archive["images"].astype(int)
    full = to_uint8(sample_images(load_generator(run), 6)).astype(int)
    assert load_generator(run, "mixed_bfloat16").layers[-1].compute_dtype == "bfloat16"
    assert np.abs(half - full).mean() < 4  # bfloat16 keeps 8 bits of mantissa: same digits


def nan_discriminator_loss(real, fake, *smoothing):
    """The logistic D loss turned NaN, its logs as they are."""
    loss, logs = gan_model.losses.discriminator_loss(real, fake, *smoothing)
    return loss * float("nan"), logs


def test_nan_stops_and_keeps_the_last_good_state(run, tmp_path, monkeypatch, data_dir):
    copy = tmp_path / "run"
    subprocess.run(["cp", "-r", str(run), str(copy)], check=True)
    generator_bytes = (copy / "generator.keras").read_bytes()
    nan_loss = gan_model.losses.Objective(nan_discriminator_loss, gan_model.losses.nonsaturating_generator_loss)
    monkeypatch.setitem(gan_model.losses.OBJECTIVES, "nonsaturating", nan_loss)
    settings = Settings(run_dir=str(copy), data_dir=data_dir, k=2, epochs=3, steps_per_epoch=3,
                        batch_size=16, log_every=1, quiet=True, resume=True, eval=False)
    with pytest.raises(UserError, match="non-finite in epoch 3.*ckpt-6") as error:
        train(settings)
    assert error.value.exit_code == 1  # a failed run, not bad input
    assert tf.train.latest_checkpoint(copy / "checkpoints").endswith("ckpt-6")  # numbered by G steps
    assert (copy / "generator.keras").read_bytes() == generator_bytes
    assert json.loads((copy / "metrics.json").read_text())["epochs"] == 2


def test_time_budget_ends_a_finished_run_early(tmp_path, data_dir):
    folder = tmp_path / "timed"
    # 6 ms: spent by the first step (it traces the train step), so training stops after it.
    train(Settings(run_dir=str(folder), data_dir=data_dir, arch="mlp", epochs=5, steps_per_epoch=40,
                   batch_size=16, quiet=True, eval=False, max_minutes=1e-4))
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["time_budget_reached"] and metrics["epochs"] == 1
    assert metrics["history"]["train_g_updates"] == [1]
    assert metrics["finished"] and metrics["epochs_trained"] == 1 / 40  # although epochs < 5


def test_a_resumed_run_counts_the_budget_it_spent_before(tmp_path, data_dir):
    """--max-minutes is the run's budget: resumed with the same one, a run that spent it
    trains no step; with a larger one, it trains on (what experiments.compare's --points
    rely on)."""
    folder = tmp_path / "timed"
    settings = dict(run_dir=str(folder), data_dir=data_dir, arch="mlp", epochs=5, steps_per_epoch=40,
                    batch_size=16, quiet=True, eval=False)
    train(Settings(**settings, max_minutes=1e-4))
    spent = json.loads((folder / "metrics.json").read_text())
    assert spent["steps"] == 1 and spent["budget_seconds"] >= 60 * 1e-4
    train(Settings(**settings, max_minutes=1e-4, resume=True))
    again = json.loads((folder / "metrics.json").read_text())
    assert again["steps"] == 1 and again["time_budget_reached"] and again["finished"]
    assert again["budget_seconds"] == spent["budget_seconds"]
    train(Settings(**settings, max_minutes=spent["budget_seconds"] / 60 + 1e-5, resume=True))
    more = json.loads((folder / "metrics.json").read_text())
    assert more["steps"] > 1 and more["budget_seconds"] > spent["budget_seconds"]


def test_sigterm_saves_the_step_and_resume_keeps_d_equal_to_k_times_g(tmp_path, data_dir):
    """SIGTERM mid-run of 1,000 epochs: exit 143 (within a 60-s guard) with a checkpoint of the
    step it stopped after, and --resume ends with every generator step's k discriminator steps, none lost or doubled."""
    folder = tmp_path / "stopped"
    args = [sys.executable, "-m", "gan.train", "--run-dir", str(folder), "--arch", "mlp", "--k", "2",
            "--epochs", "1000", "--steps-per-epoch", "30", "--batch-size", "8", "--quiet", "--no-eval"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATA_DIR": data_dir}
    process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None and not tf.train.latest_checkpoint(
            folder / "checkpoints"):
        time.sleep(0.1)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    err = process.communicate(timeout=60)[1].decode()
    assert process.returncode == 143, err[-2000:]
    metrics = json.loads((folder / "metrics.json").read_text())
    steps, epochs = metrics["steps"], metrics["epochs"]
    assert metrics["stopped_by"] == "SIGTERM" and (folder / "checkpoints" / f"ckpt-{steps}.index").is_file()
    resume = [arg if arg != "1000" else str(epochs + 2) for arg in args] + ["--resume"]
    result = subprocess.run(resume, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["steps"] == 30 * (epochs + 2) and metrics["discriminator_steps"] == 2 * metrics["steps"]


def test_resume_after_kill(tmp_path, data_dir):
    folder = tmp_path / "killed"
    args = [sys.executable, "-m", "gan.train", "--run-dir", str(folder), "--arch", "mlp",
            "--epochs", "1000", "--steps-per-epoch", "2", "--batch-size", "8", "--quiet", "--no-eval"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATA_DIR": data_dir}
    process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            latest = tf.train.latest_checkpoint(folder / "checkpoints")
            if latest and int(latest.rsplit("-", 1)[1]) >= 2:  # the first epoch's two steps
                break
            time.sleep(0.2)
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    done = int(tf.train.latest_checkpoint(folder / "checkpoints").rsplit("-", 1)[1]) // 2  # numbered by step
    resume = [arg if arg != "1000" else str(done + 2) for arg in args] + ["--resume"]
    result = subprocess.run(resume, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["epochs"] == done + 2
    assert metrics["history"]["train_g_updates"] == [2.0 * (e + 1) for e in range(done + 2)]
    assert metrics["history"]["train_d_updates"] == metrics["history"]["train_g_updates"]
    assert metrics["steps"] == metrics["discriminator_steps"] == 2 * (done + 2)


@pytest.mark.parametrize("argv, fragment", [
    (["--k", "0"], "--k: must be greater than 0"),
    (["--lr-d", "0"], "--lr-d: must be greater than 0"),
    (["--lr-g=-1e-3"], "--lr-g: must be greater than 0"),
    (["--lr-g", "5"], "--lr-g: must be at most 1"),
    (["--beta2", "1"], "--beta2: must be below 1"),
    (["--loss", "relativistic"], "--loss"),
    (["--loss", "wgan-gp", "--label-smoothing", "0.1"], "label-smoothing"),
    (["--resume"], "no such run folder"),
    (["--data-dir", "/no/such/folder"], "does not exist"),
    (["--dataset", "fashion_mnist"], "fashion-mnist.npz"),
    (["--noise-components", "1"], "--noise-components: give at least 2"),
    (["--noise-components", "4", "--conditional"], "not with --conditional"),
])
def test_bad_settings_are_user_errors(argv, fragment, tmp_path, data_dir):
    if "--data-dir" not in argv:
        argv = argv + ["--data-dir", data_dir]
    with pytest.raises(UserError, match=fragment.replace("-", r"\-")):
        main(argv + ["--run-dir", str(tmp_path / "new"), *TINY])
    assert not (tmp_path / "new").exists()


def test_cli_errors_are_one_line(cli, run, tmp_path, data_dir):
    config_before = (run / "config.json").read_bytes()
    result = cli("gan.train", "--run-dir", str(run), "--resume", "--arch", "mlp", *TINY,
                 env={"DATA_DIR": data_dir})
    assert_one_line_error(result, "does not match")
    assert (run / "config.json").read_bytes() == config_before
    assert_one_line_error(cli("gan.sample", "--run", str(tmp_path / "missing")), "no such run folder")


def test_in_process_errors_write_nothing(run, tmp_path, data_dir):
    with pytest.raises(UserError, match="--resume: say which run"):
        main(["--resume"])
    config_before = (run / "config.json").read_bytes()
    with pytest.raises(UserError, match="already holds a run"):
        main(["--run-dir", str(run), "--data-dir", data_dir, *TINY])
    assert (run / "config.json").read_bytes() == config_before
    with pytest.raises(UserError, match="--out"):
        sample_main(["--run", str(run), "--out", str(tmp_path / "x.gif")])
    with pytest.raises(UserError, match="--run"):
        sample_main(["--out", str(tmp_path / "x.png")])
    assert not list(tmp_path.iterdir())


def test_score_reproduces_the_training_time_evaluation(run):
    history = json.loads((run / "metrics.json").read_text())["history"]
    values = score(run, sample_images(load_generator(run), 100, seed=0))  # as gan.train scored it
    assert values["epochs"] == 2
    assert values["fid"] == pytest.approx(history["sample_fid"][1], rel=1e-6)
    assert values["classes_covered"] == history["sample_classes_covered"][1]


def test_best_generator_is_kept_only_when_the_fid_falls(tmp_path):
    generator = build_generator("dcgan", width=8)
    run = SimpleNamespace(run_dir=tmp_path, metrics={"history": {"sample_fid": [30.0, None]}})
    monitor = TrainingMonitor(run, settings=None, fixed=None)
    monitor.keep_if_best(generator, "", 3, {"sample_fid": 31.0})  # above epoch 1's 30
    assert not (tmp_path / "generator_best.keras").exists() and "best_fid" not in run.metrics
    monitor.keep_if_best(generator, "", 3, {"sample_fid": 25.0})
    assert run.metrics["best_fid"] == {"epoch": 3, "fid": 25.0}
    kept = (tmp_path / "generator_best.keras").read_bytes()
    run.metrics["history"]["sample_fid"].append(25.0)
    generator.set_weights([w + 1.0 for w in generator.get_weights()])
    for fid in (25.0, 40.0, float("nan")):  # a tie, a rise and a failed score keep epoch 3's
        monitor.keep_if_best(generator, "", 4, {"sample_fid": fid})
    monitor.keep_if_best(generator, "ema_", 4, {"sample_fid": 1.0})  # another generator's score
    assert (tmp_path / "generator_best.keras").read_bytes() == kept
    assert run.metrics["best_fid"]["epoch"] == 3 and not (tmp_path / "generator_ema_best.keras").exists()


def test_best_generator_reproduces_the_lowest_fid(tmp_path, data_dir, tiny_classifier_cache, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_CACHE", tiny_classifier_cache["CLASSIFIER_CACHE"])
    run = train(Settings(run_dir=str(tmp_path / "run"), data_dir=data_dir, ema=0.9, epochs=3,
                         steps_per_epoch=2, batch_size=16, width=8, quiet=True, eval_samples=64))
    metrics = json.loads((run / "metrics.json").read_text())
    for prefix, raw in (("", True), ("ema_", False)):
        fids = metrics["history"][f"sample_{prefix}fid"]
        best = metrics[f"best_{prefix}fid"]
        assert best == {"epoch": int(np.argmin(fids)) + 1, "fid": min(fids)}
        images = sample_images(load_generator(run, raw=raw, best=True), 64, seed=0)  # as scored
        assert score(run, images)["fid"] == pytest.approx(best["fid"], rel=1e-5)
    sample_main(["--run", str(run), "--best", "--n", "4", "--out", str(tmp_path / "best.npz")])
    assert np.load(tmp_path / "best.npz")["images"].shape == (4, 28, 28)


def test_sampling_into_the_run_or_scoring_waits_for_its_lock(run, tmp_path):
    from common.runs import RunLock

    with RunLock(run):  # as if gan.train were still writing it
        for extra in (["--out", str(run / "more.png")], ["--score", "--out", str(tmp_path / "s.png")]):
            with pytest.raises(UserError, match=f"{run} is in use"):
                sample_main(["--run", str(run), "--n", "4", *extra])
        sample_main(["--run", str(run), "--n", "4", "--out", str(tmp_path / "elsewhere.png")])  # reading is free
    assert not (run / "more.png").exists() and (tmp_path / "elsewhere.png").is_file()


def test_best_generator_of_an_unscored_run_is_a_user_error(tmp_path, data_dir):
    unscored = train(Settings(run_dir=str(tmp_path / "run"), data_dir=data_dir, epochs=1, steps_per_epoch=2,
                              batch_size=16, width=8, quiet=True, eval=False))
    with pytest.raises(UserError, match="no generator_best.keras yet .no epoch scored; train with --eval"):
        load_generator(unscored, best=True)
