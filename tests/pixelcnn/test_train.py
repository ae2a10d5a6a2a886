"""pixelcnn.train and pixelcnn.sample end to end: run folder, metrics, the exact NLL against
a recomputation, best-by-validation, samples, the fast sampler against the naive one, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.data import binary_test_images, load_splits
from common.errors import UserError
from pixelcnn.losses import bernoulli_nll
from pixelcnn.model import build_pixelcnn
from pixelcnn.sample import CachedSampler, load_pixelcnn, load_sampler, sample_naive, uniforms
from pixelcnn.sample import main as sample_main
from pixelcnn.train import Settings, train
from tests.helpers import assert_one_line_error

TINY = dict(features=8, layers=2, kernel_size=3, batch_size=32, steps_per_epoch=5, quiet=True, eval=False)


@pytest.mark.parametrize("shape,likelihood,classes,kernel", [((7, 6, 1), "bernoulli", 0, 5),
                                                             ((4, 5, 3), "categorical", 0, 3),
                                                             ((4, 4, 3), "categorical", 4, 3)])
def test_the_cached_sampler_draws_the_naive_samplers_images(shape, likelihood, classes, kernel):
    model = build_pixelcnn(shape, likelihood, "gated", features=4 * shape[-1], layers=2, kernel_size=kernel,
                           n_classes=classes)
    uniform = uniforms(5, shape, seed=7)
    labels = np.arange(5) % classes if classes else None
    sampler = CachedSampler(model)
    naive, cached = sample_naive(model, uniform, labels), sampler(uniform, labels)
    np.testing.assert_array_equal(cached, naive)
    assert 0 < naive.mean() < 1 and len(np.unique(naive)) > 1
    assert not np.array_equal(sampler(uniforms(5, shape, seed=8), labels), cached)


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir) -> Path:
    folder = tmp_path_factory.mktemp("pixelcnn") / "run"
    assert train(Settings(run_dir=str(folder), data_dir=data_dir, epochs=2, lr_decay=0.5, **TINY)) == folder
    return folder


@pytest.mark.slow
def test_run_folder_and_the_exact_test_nll(run, data_dir):
    for name in ("config.json", "metrics.json", "model.keras", "model_best.keras", "samples.png", "curves.png"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["finished"] and metrics["steps"] == 10 and metrics["epochs"] == 2
    history = metrics["history"]
    assert len(history["test_nll"]) == len(history["validation_nll"]) == 2
    assert history["train_learning_rate"] == pytest.approx([1e-3, 5e-4])  # lr · decay^epoch
    best = int(np.argmin(history["validation_nll"])) + 1
    assert metrics["best_epoch"] == best and metrics["validation_nll"] == min(history["validation_nll"])
    # The reported number is −log p of the VAE's fixed binary test set under the kept weights.
    test = binary_test_images(load_splits("mnist", data_dir).x_test, "dynamic")
    model = load_pixelcnn(run)
    recomputed = np.mean([bernoulli_nll(test[i:i + 1000], model(test[i:i + 1000])).numpy()
                          for i in range(0, len(test), 1000)])
    assert metrics["test_nll"] == pytest.approx(recomputed, rel=1e-4)
    assert metrics["test_bits_per_dim"] == pytest.approx(recomputed / (784 * np.log(2)), rel=1e-4)
    assert metrics["test_nll"] < 784 * np.log(2)  # below a coin per pixel after 10 steps


@pytest.mark.slow
def test_sample_cli_writes_a_grid_and_uint8_arrays(run, tmp_path):
    sample_main(["--run", str(run), "--n", "6", "--out", str(tmp_path / "s.png")])
    assert Image.open(tmp_path / "s.png").size[0] > 28 * 2
    sample_main(["--run", str(run), "--n", "6", "--out", str(tmp_path / "s.npz")])
    with np.load(tmp_path / "s.npz") as archive:
        images = archive["images"]
    assert images.shape == (6, 28, 28) and images.dtype == np.uint8 and set(np.unique(images)) <= {0, 255}
    np.testing.assert_array_equal(images, (load_sampler(run).sample(6, seed=0)[..., 0] * 255).astype(np.uint8))


@pytest.mark.slow
def test_conditional_run_samples_the_asked_class_and_refuses_others(tmp_path, data_dir):
    folder = tmp_path / "conditional"
    train(Settings(run_dir=str(folder), data_dir=data_dir, epochs=1, conditional=True, **TINY))
    assert load_pixelcnn(folder).n_classes == 10
    sample_main(["--run", str(folder), "--n", "3", "--label", "3", "--out", str(tmp_path / "three.png")])
    with pytest.raises(UserError, match="must be below 10"):
        sample_main(["--run", str(folder), "--n", "3", "--label", "12", "--out", str(tmp_path / "x.png")])


@pytest.mark.slow
def test_colour_shapes_train_with_the_categorical_likelihood(tmp_path):
    folder = tmp_path / "shapes"
    train(Settings(run_dir=str(folder), dataset="shapes", image_size=8, epochs=1, **TINY))
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["likelihood"] == "categorical"
    assert 0 < metrics["test_bits_per_dim"] < 8.5  # near 8 bits (uniform) after 5 steps, not above
    assert load_sampler(folder).sample(2, seed=0).shape == (2, 8, 8, 3)


@pytest.mark.slow
@pytest.mark.parametrize("args,fragment", [
    (["--batch-size", "0"], "--batch-size"),
    (["--epochs", "-1"], "--epochs"),
    (["--kernel-size", "4"], "odd"),
    (["--lr-decay", "2"], "--lr-decay"),
    (["--likelihood", "bernoulli", "--binarize", "none"], "binary data"),
    (["--dataset", "nope"], "nope"),
])
def test_bad_input_is_one_line_and_writes_nothing(cli, tmp_path, args, fragment):
    assert_one_line_error(cli("pixelcnn.train", "--run-dir", str(tmp_path / "r"), *args), fragment)
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_resume_with_another_likelihood_is_refused(cli, run, tmp_path):
    before = (run / "metrics.json").read_bytes()
    result = cli("pixelcnn.train", "--run-dir", str(run), "--resume", "--likelihood", "categorical",
                 "--binarize", "none")
    assert_one_line_error(result, "--likelihood bernoulli")
    assert (run / "metrics.json").read_bytes() == before


@pytest.mark.slow
def test_the_sampling_benchmark_runs_at_tiny_settings(tmp_path):
    from experiments.bench.pixelcnn import main as bench_main

    results = bench_main(["--samples", "20", "--batch", "10", "--naive-batch", "2", "--naive-rows", "1",
                          "--out", str(tmp_path / "bench.json")])
    assert json.loads((tmp_path / "bench.json").read_text())["cached"]["samples"] == 20
    assert results["image_shape"] == [28, 28, 1] and results["speedup"] > 1
