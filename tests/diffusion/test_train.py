"""diffusion.train and diffusion.sample end to end: run folder, metrics and the bound, the
sampling CLI (grid, .npz, DDPM, a guided class), the comparison's adapter, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.errors import UserError, run_cli
from diffusion.sample import load_sampler
from diffusion.sample import main as sample_main
from diffusion.train import Settings, train
from diffusion.train import main as train_main
from tests.helpers import assert_one_line_error

TINY = dict(features=8, res_blocks=1, timesteps=20, sample_steps=5, batch_size=32, steps_per_epoch=3,
            bound_images=3, quiet=True, eval=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir) -> Path:
    folder = tmp_path_factory.mktemp("diffusion") / "run"
    assert train(Settings(run_dir=str(folder), data_dir=data_dir, epochs=2, **TINY)) == folder
    return folder


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory, data_dir) -> Path:
    folder = tmp_path_factory.mktemp("diffusion") / "conditional"
    train(Settings(run_dir=str(folder), data_dir=data_dir, epochs=1, conditional=True, **TINY))
    return folder


@pytest.mark.slow
def test_run_folder_metrics_and_the_bound(run):
    for name in ("config.json", "metrics.json", "model.keras", "samples.png", "curves.png"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["finished"] and metrics["steps"] == 6 and metrics["epochs"] == 2
    assert len(metrics["history"]["test_loss"]) == 2 and all(v > 0 for v in metrics["history"]["train_loss"])
    assert metrics["bound_images"] == 3
    assert metrics["test_bits_per_dim"] == pytest.approx(metrics["test_bound_nats"] / (784 * np.log(2)))
    assert metrics["test_bits_per_dim"] > 0
    assert Image.open(run / "samples.png").size == (8 * 30 + 2, 8 * 30 + 2)  # 64 digits, 2 px borders


@pytest.mark.slow
def test_sample_cli_grid_npz_and_ddpm(run, tmp_path):
    sample_main(["--run", str(run), "--steps", "5", "--eta", "0", "--n", "9", "--out", str(tmp_path / "s.png")])
    assert Image.open(tmp_path / "s.png").size == (3 * 30 + 2,) * 2
    sample_main(["--run", str(run), "--sampler", "ddpm", "--n", "3", "--out", str(tmp_path / "s.npz")])
    with np.load(tmp_path / "s.npz") as archive:
        images = archive["images"]
    assert images.shape == (3, 28, 28) and images.dtype == np.uint8
    sampler = load_sampler(run)
    assert sampler.info["family"] == "diffusion" and sampler.sample(2, seed=0).shape == (2, 28, 28, 1)
    assert sampler.interpolations(1).shape == (10, 28, 28, 1)
    few = load_sampler(run, steps=2)  # the comparison's "sampler": {"steps": 2}
    assert np.array_equal(few.sample(2, seed=0), sampler.draw(2, 0, steps=2))
    assert not np.allclose(few.sample(2, seed=0), sampler.sample(2, seed=0))
    with pytest.raises(UserError, match="steps: DDIM takes 1 to T"):
        load_sampler(run, steps=0)


@pytest.mark.slow
def test_a_conditional_run_draws_a_guided_class(conditional_run, tmp_path):
    out = tmp_path / "seven.npz"
    sample_main(["--run", str(conditional_run), "--steps", "5", "--label", "7", "--guidance", "3", "--n", "4",
                 "--out", str(out)])
    with np.load(out) as archive:
        assert archive["images"].shape == (4, 28, 28)
    assert load_sampler(conditional_run).n_classes == 10


@pytest.mark.slow
@pytest.mark.parametrize("args,fragment", [
    (["--steps", "0"], "--steps"),
    (["--steps", "21"], "T = 20"),
    (["--label", "3"], "not a class-conditional run"),
    (["--guidance", "3"], "not a class-conditional run"),
    (["--eta", "-1"], "--eta"),
])
def test_bad_sampling_input_is_one_line_and_writes_nothing(run, tmp_path, capsys, args, fragment):
    out = tmp_path / "s.png"
    with pytest.raises(SystemExit) as stop:
        run_cli(sample_main, ["--run", str(run), "--out", str(out), *args])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert stop.value.code == 2 and len(errors) == 1 and fragment in errors[0], errors
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("args,fragment", [
    (["--schedule", "quadratic"], "--schedule"),
    (["--batch-size", "0"], "--batch-size"),
    (["--features", "12"], "multiple of 8"),
    (["--sample-steps", "50", "--timesteps", "20"], "--sample-steps"),
])
def test_bad_training_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, fragment):
    with pytest.raises(SystemExit) as stop:
        run_cli(train_main, ["--run-dir", str(tmp_path / "r"), *args])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert stop.value.code == 2 and len(errors) == 1 and fragment in errors[0], errors
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_the_program_exits_2_without_a_traceback(cli, run, tmp_path):
    assert_one_line_error(cli("diffusion.sample", "--run", str(run), "--steps", "0"), "--steps")
    before = (run / "metrics.json").read_bytes()
    assert_one_line_error(cli("diffusion.train", "--run-dir", str(run), "--resume", "--schedule", "cosine"),
                          "--schedule linear")
    assert (run / "metrics.json").read_bytes() == before


@pytest.mark.slow
def test_the_steps_benchmark_scores_each_step_count(run, tmp_path, tiny_classifier_cache, monkeypatch):
    from experiments.bench.diffusion_steps import main as steps_main

    monkeypatch.setenv("CLASSIFIER_CACHE", tiny_classifier_cache["CLASSIFIER_CACHE"])
    rows = steps_main(["--run", str(run), "--steps", "2", "20", "--samples", "100", "--out", str(tmp_path / "s.json")])
    assert [row["steps"] for row in rows] == [2, 20] and all(row["fid"] > 0 and row["seconds"] > 0 for row in rows)
    assert rows[1]["seconds_per_1000"] > rows[0]["seconds_per_1000"]  # ten times the passes
    assert json.loads((tmp_path / "s.json").read_text())["rows"][0]["samples"] == 100
    with pytest.raises(Exception, match="--steps"):
        steps_main(["--run", str(run), "--steps", "21"])


@pytest.mark.slow
def test_the_training_benchmark_runs_at_tiny_settings(tmp_path):
    from experiments.bench.diffusion import main as bench_main

    results = bench_main(["--batch", "4", "--steps", "2", "--warmup", "1", "--repeats", "1",
                          "--out", str(tmp_path / "bench.json")])
    assert set(results["images_per_second"]) == {"ours", "keras-io"} and results["ratio"] > 0
