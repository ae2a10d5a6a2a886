"""vae.train and vae.sample end to end on real MNIST ($DATA_DIR): short runs, tiny k."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from common.data import load_splits
from common.errors import UserError
from common.evaluation.classifier import DigitCNN, FeatureClassifier, dataset_fingerprint, save_classifier
from tests.helpers import ROOT, assert_one_line_error
from vae.model import VAE, encode_means
from vae.sample import interpolate, load_vae, sample_images
from vae.train import Settings, train

pytestmark = pytest.mark.slow  # trains models or runs whole programs

QUICK = dict(steps_per_epoch=40, nll_k=10, nll_k_train=10, nll_examples=200, quiet=True, eval=False)


@pytest.fixture(scope="module")
def run(data_dir, tmp_path_factory) -> Path:
    """A 3-epoch MLP run with a 2-D latent (so every figure is made)."""
    path = tmp_path_factory.mktemp("vae") / "run"
    return train(Settings(run_dir=str(path), data_dir=data_dir, epochs=3, latent_dim=2,
                          hidden_units=[200, 200], **{**QUICK, "nll_every": 2}))


def test_short_run_improves_test_elbo_and_writes_everything(run):
    metrics = json.loads((run / "metrics.json").read_text())
    history = metrics["history"]
    assert history["epoch"] == [1, 2, 3]
    assert history["test_elbo"][-1] > history["test_elbo"][0] + 5.0, history["test_elbo"]
    # One z per image: a fresh evaluation differs only by sampling noise.
    assert metrics["test_elbo"] == pytest.approx(history["test_elbo"][-1], abs=1.0)
    assert metrics["test_elbo"] == pytest.approx(-(metrics["test_reconstruction"] + metrics["test_kl"]),
                                                 abs=1e-2)
    # The IWAE bound is tighter than the ELBO: NLL < −ELBO.
    assert 0 < metrics["test_nll"] < -metrics["test_elbo"]
    assert metrics["steps"] == 3 * 40 and metrics["epochs"] == 3
    assert 1 <= metrics["active_units"] <= 2 and metrics["parameters"] > 0
    assert [value is None for value in history["test_nll"]] == [True, False, True]
    assert metrics["train_seconds"] > 0
    for name in ("model.keras", "config.json", "reconstructions.png", "samples.png",
                 "manifold.png", "latent_scatter.png", "curves.png"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard" / "eval").glob("events.*"))


def test_save_load_gives_identical_outputs_from_model_file_and_checkpoint(run, tmp_path):
    saved = load_vae(run)
    assert isinstance(saved, VAE) and saved.latent_dim == 2
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "model.keras").unlink()
    restored = load_vae(copy)  # from the last checkpoint: the same final weights
    x = np.random.default_rng(0).uniform(size=(5, 28, 28, 1)).astype(np.float32)
    np.testing.assert_array_equal(encode_means(saved, x), encode_means(restored, x))
    np.testing.assert_array_equal(sample_images(saved, 6, seed=3), sample_images(restored, 6, seed=3))


def test_sample_and_interpolate_shapes_and_ranges(run):
    model = load_vae(run)
    images = sample_images(model, 7, seed=1)
    assert images.shape == (7, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    np.testing.assert_array_equal(images, sample_images(model, 7, seed=1))
    rng = np.random.default_rng(2)
    x_a, x_b = rng.uniform(size=(28, 28)), rng.uniform(size=(28, 28))
    for spherical in (False, True):
        path = interpolate(model, x_a, x_b, steps=5, spherical=spherical)
        assert path.shape == (5, 28, 28)
        np.testing.assert_allclose(path[0], interpolate(model, x_a, x_a, 2)[0], atol=1e-6)


def test_sample_cli_writes_png_and_npz(run, tmp_path, cli):
    result = cli("vae.sample", "--run", str(run), "--n", "12", "--out", str(tmp_path / "s.npz"))
    assert result.returncode == 0, result.stderr[-2000:]
    with np.load(tmp_path / "s.npz") as archive:
        assert archive["images"].shape == (12, 28, 28) and archive["images"].dtype == np.uint8
    result = cli("vae.sample", "--run", str(run), "--interpolate", "--steps", "6",
                 "--out", str(tmp_path / "i.png"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "i.png").stat().st_size > 0


def test_sample_precision_computes_the_same_images_in_16_bits(run):
    half = load_vae(run, "mixed_float16")
    assert half.decoder.layers[-1].compute_dtype == "float16"
    np.testing.assert_allclose(sample_images(half, 8, seed=1), sample_images(load_vae(run), 8, seed=1),
                               atol=2e-2)


def test_resume_after_kill_reaches_the_same_step_count(data_dir, tmp_path):
    path = tmp_path / "killed"
    args = [sys.executable, "-m", "vae.train", "--run-dir", str(path), "--epochs", "8",
            "--steps-per-epoch", "5", "--nll-k-train", "0", "--nll-k", "2", "--hidden-units", "64",
            "--no-eval", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATA_DIR": data_dir}
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not (path / "checkpoints" / "checkpoint").exists():
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed = json.loads((path / "metrics.json").read_text())
    assert not killed["finished"], "the run finished before it was killed"
    result = subprocess.run(args + ["--resume", "--lr", "0.0005"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming" in result.stdout and "learning rate 0.0005" in result.stdout
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["steps"] == 8 * 5
    assert metrics["history"]["epoch"] == list(range(1, 9))
    model = load_vae(path)
    assert model.latent_dim == 50
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(5e-4)


def test_mirrored_strategy_on_two_cpu_devices(data_dir, tmp_path):
    code = ("from common.distribute import split_cpu; split_cpu(2); import sys; "
            "from vae.train import main; main(sys.argv[1:])")
    result = subprocess.run(
        [sys.executable, "-c", code, "--run-dir", str(tmp_path / "m"), "--strategy", "mirrored",
         "--epochs", "1", "--steps-per-epoch", "5", "--nll-k-train", "2", "--nll-k", "2",
         "--nll-examples", "20", "--no-eval", "--quiet"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "DATA_DIR": data_dir},
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["steps"] == 5 and np.isfinite(metrics["test_elbo"])


def test_sample_quality_is_scored_with_a_cached_classifier(data_dir, tmp_path, monkeypatch):
    # An untrained, tiny classifier in a private cache: enough to exercise the hook.
    monkeypatch.setenv("CLASSIFIER_CACHE", str(tmp_path / "cache"))
    fingerprint = dataset_fingerprint(load_splits("mnist", data_dir))
    network = DigitCNN("mnist", fingerprint, width=4, feature_size=8)
    network.build((None, 28, 28, 1))
    save_classifier(FeatureClassifier(network))
    path = train(Settings(run_dir=str(tmp_path / "r"), data_dir=data_dir, epochs=1,
                          **{**QUICK, "eval": True, "steps_per_epoch": 5}))
    quality = json.loads((path / "metrics.json").read_text())["sample_quality"]
    assert np.isfinite(quality["fid"]) and quality["fid"] >= 0 and quality["samples"] == 2000


def test_sample_quality_is_skipped_with_a_notice_without_a_classifier(data_dir, tmp_path,
                                                                     monkeypatch, capsys):
    monkeypatch.setenv("CLASSIFIER_CACHE", str(tmp_path / "empty"))
    path = train(Settings(run_dir=str(tmp_path / "r"), data_dir=data_dir, epochs=1,
                          **{**QUICK, "eval": True, "steps_per_epoch": 2, "nll_k_train": 0}))
    assert "no mnist classifier cached" in capsys.readouterr().out
    assert "sample_quality" not in json.loads((path / "metrics.json").read_text())


def test_training_that_turns_nan_stops_with_exit_1_and_no_model(data_dir, tmp_path):
    path = tmp_path / "nan"
    with pytest.raises(UserError, match="non-finite") as error:
        train(Settings(run_dir=str(path), data_dir=data_dir, epochs=2, lr=1e12, **QUICK))
    assert error.value.exit_code == 1
    assert not (path / "model.keras").exists()
    # The record says the run never finished, so nothing mistakes it for a result.
    assert json.loads((path / "metrics.json").read_text())["finished"] is False


# Bad input: one line, exit 2, and nothing written.

def test_cli_rejects_non_positive_latent_dim(cli, tmp_path):
    result = cli("vae.train", "--latent-dim", "0", "--run-dir", str(tmp_path / "r"))
    assert_one_line_error(result, "--latent-dim")
    assert not (tmp_path / "r").exists()


def test_sample_cli_rejects_missing_run_folder(cli, tmp_path):
    assert_one_line_error(cli("vae.sample", "--run", str(tmp_path / "nope")), "no such run folder")


def test_load_rejects_a_run_of_another_program(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model": "gan", "settings": {}}))
    with pytest.raises(UserError, match="not a 'vae' run"):
        load_vae(tmp_path)


def test_load_rejects_a_checkpoint_from_another_architecture(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "model.keras").unlink()
    config = json.loads((copy / "config.json").read_text())
    config["settings"]["arch"] = "conv"
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="does not match"):
        load_vae(copy)


def test_resume_with_another_architecture_is_refused_and_leaves_the_run(run, data_dir):
    before = (run / "config.json").read_text()
    with pytest.raises(UserError, match="does not match"):
        train(Settings(run_dir=str(run), data_dir=data_dir, epochs=4, latent_dim=2, arch="conv",
                       resume=True, **QUICK))
    assert (run / "config.json").read_text() == before


def test_existing_run_is_not_overwritten(run, data_dir):
    with pytest.raises(UserError, match="already holds a run"):
        train(Settings(run_dir=str(run), data_dir=data_dir, latent_dim=2, **QUICK))


@pytest.mark.parametrize("overrides, fragment", [
    (dict(batch_size=10**6), "--batch-size"),
    (dict(dataset="fashion_mnist"), "fashion-mnist.npz"),
    (dict(data_dir="/nonexistent/folder"), "does not exist"),
])
def test_bad_data_settings_fail_before_writing(data_dir, tmp_path, overrides, fragment):
    settings = {"run_dir": str(tmp_path / "r"), "data_dir": data_dir, **QUICK, **overrides}
    with pytest.raises(UserError, match=fragment):
        train(Settings(**settings))
    assert not (tmp_path / "r").exists()
