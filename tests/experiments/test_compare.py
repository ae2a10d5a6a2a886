"""experiments.compare: the --quick pipeline with two seeds end to end, --runs with N models
(grouped into seeds by folder name; schema-1 and schema-2 runs), --html, the classifier
built when none is cached, the families' sampler adapters, and bad input.

A tiny classifier is trained on a slice of MNIST and cached under the real MNIST
fingerprint in a temporary cache (tests.conftest), so the pipeline runs without the real one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import common.evaluation.classifier
from common.data import load_splits
from common.errors import UserError
from common.evaluation.classifier import TRAINING_DEFAULTS, classifier_path, dataset_fingerprint
from common.runs import cpu_description
from experiments.classifier import Settings as ClassifierSettings
from experiments.compare import main
from experiments.finished_runs import load_finished_run
from experiments.models import Sampler, check_sampler_options, load_sampler
from tests.helpers import assert_one_line_error, run_module, tiny_trainer

# --runs comparisons score fewer samples than --quick, so KID draws smaller subsets.
FEW = ["--samples", "100", "--kid-subset-size", "50", "--parzen-validation", "20", "--parzen-test", "100"]

pytestmark = pytest.mark.slow  # trains models or runs whole programs


@pytest.fixture(scope="module")
def cache(tiny_classifier_cache) -> dict[str, str]:
    return tiny_classifier_cache


@pytest.fixture(scope="module")
def quick(cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "quick"
    result = run_module("experiments.compare", "--quick", "--seeds", "2", "--out", str(out), env=cache)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


@pytest.mark.slow
def test_quick_pipeline_with_two_seeds_writes_the_report_figures_metrics_and_runs(quick):
    out, result = quick
    report = (out / "report.md").read_text()
    for row in ("real training images", "VAE", "GAN", "Gaussian noise", "Bernoulli"):
        line = next(line for line in report.splitlines() if line.startswith(f"| {row}"))
        assert line.split(" | ")[1] == "2"  # two seeds in every row, the reference rows too
    for column in ("FID ↓", "KID ↓", "density", "coverage ↑", "precision ↑", "recall ↑"):
        assert f" {column} |" in report.splitlines()[4]
    assert "| *samples per seed* | – | 1,000 vs 10,000 test | 10 subsets of 1,000 vs 1,000 |" in report
    assert "2 seeds per model (VAE: 0, 1; GAN: 0, 1)" in report
    assert f"Every run trained on: {cpu_description()}." in report
    assert "## Which differences the seeds resolve" in report and "## FID against the number of samples" in report
    assert report.splitlines()[2].startswith("**A quick run (`--quick`): it checks that the pipeline works")
    ranking = report.split("## Which differences the seeds resolve")[1].split("##")[0]
    assert ranking.strip() == "- a quick run ranks nothing"
    assert "Budget: 1 epoch(s) of at most 20 steps per model." in report
    assert "| FID at 250 | FID at 500 | FID at 1,000 | FID∞ (fit in 1/N) |" in report
    assert "not with Inception FID" in report and "Theis et al. 2016" in report
    metrics = json.loads((out / "metrics.json").read_text())
    rows = metrics["rows"]
    assert list(rows)[:3] == ["real training images", "VAE", "GAN"]
    assert metrics["seeds"] == {"VAE": [0, 1], "GAN": [0, 1]}
    for row in rows.values():
        assert [seed["seed"] for seed in row["seeds"]] == [0, 1]
        for seed in row["seeds"]:  # every seed's raw numbers are kept
            assert 0 <= seed["precision"] <= 1 and 0 <= seed["recall"] <= 1 and seed["fid"] >= 0
            assert 0 <= seed["coverage"] <= 1 and seed["density"] >= 0 and seed["kid_std"] >= 0
            assert 1 <= seed["classifier_score"] <= 10 and sum(seed["class_counts"]) == 1000
            assert list(seed["fid_by_samples"]) == ["250", "500", "1000"]
        fid = row["summary"]["fid"]
        values = [seed["fid"] for seed in row["seeds"]]
        assert fid["values"] == values and fid["mean"] == pytest.approx(np.mean(values))
        assert fid["ci"] == [min(values), max(values)]  # two seeds: the interval is their range
        assert f"{fid['mean']:.2f} ± {fid['std']:.2f} [{min(values):.2f}, {max(values):.2f}]" in report
    assert rows["VAE"]["seeds"][0]["test_nll"] > 0 and rows["GAN"]["seeds"][1]["test_nll"] is None
    assert rows["VAE"]["model"] == "vae" and rows["real training images"]["model"] is None
    assert rows["VAE"]["summary"]["epochs"]["values"] == rows["GAN"]["summary"]["epochs"]["values"] == [1, 1]
    for name in ("samples", "interpolations", "curves", "neighbours_vae", "neighbours_gan"):
        assert (out / f"{name}.png").stat().st_size > 1000
        assert f"{name}.png" in report
    assert not (out / "report.html").exists()  # only with --html
    for kind in ("vae", "gan"):
        for seed in (0, 1):
            assert json.loads((out / "runs" / kind / f"seed_{seed}" / "config.json").read_text())[
                "settings"]["seed"] == seed
            assert list((out / "runs" / kind / f"seed_{seed}" / "tensorboard").rglob("events.out.tfevents.*"))
    assert report.startswith("# mnist: VAE vs GAN") and "Budget: 1 epoch(s) of at most 20 steps per model" in report
    assert "training GAN (gan) seed 1 for 1 epoch(s)" in result.stdout


POINTS = ["--quick", "--minutes", "2", "--points", "1", "--models", '{"model": "gan"}']


@pytest.fixture(scope="module")
def points_study(cache, tmp_path_factory):
    """Two --points comparisons on one --runs-dir: seed 0 ("first"), then with --resume
    seeds 0 and 1 ("both"); the mtimes of seed 0's files between the two."""
    root = tmp_path_factory.mktemp("points")
    args = [*POINTS, "--runs-dir", str(root / "runs")]
    first = run_module("experiments.compare", *args, "--out", str(root / "first"), env=cache)
    assert first.returncode == 0, first.stderr[-3000:]
    seed_0 = root / "runs" / "gan" / "seed_0"
    mtimes = {path: path.stat().st_mtime_ns for path in (seed_0 / "metrics.json", seed_0 / "points" / "0.05.json")}
    both = run_module("experiments.compare", *args, "--seeds", "2", "--resume", "--out", str(root / "both"), env=cache)
    assert both.returncode == 0, both.stderr[-3000:]
    return root, both, mtimes


def test_points_score_each_run_during_training_and_resume_takes_up_another_comparisons_runs(points_study):
    """--points: each seed's run is trained in segments (resumed, so its epochs only grow)
    and scored after each, the last included; --quick scales the points with the budget. A
    second comparison with --resume and more seeds on the same --runs-dir trains only the
    new seed and takes the first one's point scores as kept in its run; its report has a
    table per point, the curves and the samples at each time."""
    root, result, mtimes = points_study
    assert "training GAN (gan) seed 1" in result.stdout and "seed 0 for" not in result.stdout
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in mtimes.items())  # neither trained nor rescored
    metrics = json.loads((root / "both" / "metrics.json").read_text())
    assert metrics["settings"]["points"] == [0.05] and metrics["settings"]["minutes"] == 0.1
    assert list(metrics["points"]) == ["0.05", "0.1"]
    early, final = (metrics["points"][key]["GAN"]["seeds"] for key in ("0.05", "0.1"))
    assert early[0] == json.loads((root / "first" / "metrics.json").read_text())["points"]["0.05"]["GAN"][
        "seeds"][0]
    assert [seed["seed"] for seed in early] == [seed["seed"] for seed in final] == [0, 1]
    assert final == metrics["rows"]["GAN"]["seeds"]  # the budget's point is the final table
    assert final[0]["classifier_weights"] == metrics["classifier_weights"]
    for before, after in zip(early, final):
        assert 0 < before["train_seconds"] < after["train_seconds"] and before["epochs"] < after["epochs"]
        assert before["sample_seconds_per_1000"] > 0 and before["fid"] != after["fid"]
    report = (root / "both" / "report.md").read_text()
    assert "### After 0.05 minutes of training" in report and "### After 0.1 minutes of training" in report
    assert report.split("### After 0.05 minutes")[1].split("###")[0].count("a quick run ranks nothing") == 1
    assert "scored also after 0.05 minutes" in report and "sampling (s per 1,000)" in report
    for name in ("budget_curves", "samples_by_time", "samples"):
        assert (root / "both" / f"{name}.png").stat().st_size > 1000 and f"{name}.png" in report
    assert not (root / "both" / "interpolations.png").exists()  # the final table loads no network
    assert sorted(path.name for path in (root / "runs" / "gan" / "seed_0" / "points").iterdir()) == [
        "0.05.json", "0.05.npz", "0.1.json", "0.1.npz"]


def kept_copy(runs: Path, kept: Path) -> None:
    """What git keeps of a study's runs (.gitignore): config.json, metrics.json, points/."""
    for path in runs.rglob("*"):
        if path.is_file() and (path.name in ("config.json", "metrics.json") or path.parent.name == "points"):
            (kept / path.relative_to(runs)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, kept / path.relative_to(runs))


def test_a_points_study_kept_without_weights_reports_again_and_refuses_other_scores(points_study, cache, tmp_path):
    """The runs' kept files alone (as git keeps a study) give the same tables with no
    training; points scored on other samples or with other classifier weights are refused,
    and so is a run that trained past a point whose scores it did not keep."""
    root, _, _ = points_study
    kept = tmp_path / "kept"
    kept_copy(root / "runs", kept)
    assert not list(kept.rglob("*.keras"))
    args = [*POINTS, "--seeds", "2", "--resume", "--runs-dir", str(kept)]
    again = run_module("experiments.compare", *args, "--out", str(tmp_path / "again"), env=cache)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "training GAN" not in again.stdout
    before, after = (json.loads((out / "metrics.json").read_text()) for out in (root / "both", tmp_path / "again"))
    assert after["rows"]["GAN"] == before["rows"]["GAN"] and after["points"] == before["points"]
    assert (tmp_path / "again" / "samples.png").stat().st_size > 1000
    stored = kept / "gan" / "seed_0" / "points" / "0.05.json"
    original = stored.read_text()
    for key, value, message in (("classifier_weights", "0" * 16, "with another classifier (weights 0000"),
                                ("samples", 500, "was scored after 0.05 min on 500 samples, not --samples 1000")):
        stored.write_text(json.dumps({**json.loads(original), key: value}))
        other = run_module("experiments.compare", *args, "--out", str(tmp_path / key), env=cache)
        assert_one_line_error(other, message)
    stored.unlink()
    past = run_module("experiments.compare", *args, "--out", str(tmp_path / "past"), env=cache)
    assert_one_line_error(past, "has trained past 0.05 min without keeping that point's scores")


@pytest.mark.slow
def test_existing_comparison_is_not_overwritten(cli, cache, quick):
    out, _ = quick
    before = (out / "report.md").read_bytes()
    result = cli("experiments.compare", "--quick", "--out", str(out), env=cache)
    assert_one_line_error(result, "--overwrite")
    assert (out / "report.md").read_bytes() == before


@pytest.mark.slow
def test_any_number_of_finished_runs_can_be_compared_and_seeds_grouped(cli, cache, quick, tmp_path):
    out, _ = quick
    shutil.copytree(out / "runs" / "gan" / "seed_0", tmp_path / "gan copy")  # a third model
    # runs/gan holds seed_0 and seed_1: one model with two seeds; vae/seed_0 is named "vae".
    runs = [out / "runs" / "gan", out / "runs" / "vae" / "seed_0", tmp_path / "gan copy"]
    result = cli("experiments.compare", "--runs", *map(str, runs), "--out", str(tmp_path / "again"),
                 *FEW, "--html", env=cache)
    assert result.returncode == 0, result.stderr[-3000:]
    again = tmp_path / "again"
    metrics = json.loads((again / "metrics.json").read_text())
    assert list(metrics["runs"]) == ["gan", "vae", "gan copy"] and not (again / "runs").exists()
    assert metrics["seeds"] == {"gan": [0, 1], "vae": [0], "gan copy": [0]}
    rows = metrics["rows"]
    assert rows["vae"]["model"] == "vae" and rows["gan copy"]["model"] == "gan"
    assert len(rows["real training images"]["seeds"]) == 2  # as many draws as the most seeds
    # The copy is the same generator sampled with the same seed: the same numbers.
    assert rows["gan copy"]["seeds"][0]["fid"] == rows["gan"]["seeds"][0]["fid"]
    report = (again / "report.md").read_text()
    assert report.startswith("# mnist: gan vs vae vs gan copy")
    assert "| vae | 1 (no interval) |" in report
    assert "- FID: gan vs vae not resolved (vae: 1 seed, no interval)" in report
    for name in ("neighbours_gan", "neighbours_vae", "neighbours_gan_copy"):
        assert (again / f"{name}.png").stat().st_size > 1000 and f"({name}.png)" in report
    page = (again / "report.html").read_text()  # --html: the figures linked, not inlined
    assert "src='samples.png'" in page and "src='neighbours_gan_copy.png'" in page
    assert "base64" not in page and "<td>gan copy</td>" in page and "not resolved" in page


@pytest.mark.slow
def test_a_missing_classifier_is_built_as_experiments_classifier_would(quick, tmp_path, monkeypatch, capsys,
                                                                        data_dir):
    out, _ = quick
    calls = []
    monkeypatch.setenv("CLASSIFIER_CACHE", str(tmp_path / "fresh cache"))
    monkeypatch.setenv("DATA_DIR", data_dir)
    monkeypatch.setattr(common.evaluation.classifier, "train_classifier", tiny_trainer(calls))
    main(["--runs", str(out / "runs" / "vae" / "seed_0"), "--out", str(tmp_path / "x"), *FEW])
    printed = capsys.readouterr().out
    path = classifier_path("mnist", dataset_fingerprint(load_splits("mnist", data_dir)))
    assert f"no mnist classifier cached: training one (about 200 s on 2 CPU cores, 8 epochs) into {path}" in printed
    assert path.parent == tmp_path / "fresh cache" and path.is_file() and (tmp_path / "x" / "report.md").is_file()
    # The settings are experiments.classifier's defaults: the same classifier a user would build.
    defaults = ClassifierSettings()
    assert calls == [{**TRAINING_DEFAULTS, "verbose": 0, "image_options": {}}]  # the dataset as stored
    assert {key: getattr(defaults, key) for key in TRAINING_DEFAULTS} == TRAINING_DEFAULTS
    main(["--runs", str(out / "runs" / "vae" / "seed_0"), "--out", str(tmp_path / "y"), *FEW])
    assert len(calls) == 1 and "no mnist classifier cached" not in capsys.readouterr().out  # cached now


@pytest.fixture
def environment(cache, monkeypatch):
    """The same environment in this process, for the checks that fail before any work."""
    for name, value in cache.items():
        monkeypatch.setenv(name, value)


@pytest.mark.slow
def test_unfinished_foreign_or_mismatched_runs_are_refused(environment, quick, tmp_path):
    out, _ = quick
    vae, gan = out / "runs" / "vae" / "seed_0", out / "runs" / "gan" / "seed_0"
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text((gan / "config.json").read_text())
    shutil.copytree(gan, tmp_path / "vae_seed7")  # named as a seed of "vae", but a GAN
    cases = [([vae, vae], "both runs of 'vae' with seed 0"),
             ([tmp_path, gan], "config.json"),
             ([vae, tmp_path / "half"], "not a finished run"),
             ([vae, tmp_path / "vae_seed7"], "grouped as 'vae' by their folder names but differ in")]
    for runs, fragment in cases:
        with pytest.raises(UserError, match=fragment):
            main(["--runs", *map(str, runs), "--out", str(tmp_path / "x")])
        assert not (tmp_path / "x").exists()


def test_bad_settings_are_refused_before_any_work(environment, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"epochs": 2, "learning_rate": 0.1}))
    out = tmp_path / "out"
    cases = [(["--config", str(config)], "learning_rate"),
             (["--models", '{"model": "vae", "args": ["--epochs", "3"]}'], "--epochs is set by"),
             (["--models", '{"model": "gan", "args": ["--k=0"]}'], "GAN: --k"),
             (["--models", '{"model": "flow"}'], "must be one of vae, gan"),
             (["--models", '{"model": "gan", "lr": 1}'], "unknown key.*lr"),
             (["--models", '{"model": "gan", "args": "--k 2"}'], "list of strings"),
             (["--models", '{"model": "gan", "name": "A b"}', '{"model": "vae", "name": "a-B"}'],
              "names must differ"),
             (["--minutes", "0"], "--minutes"),
             (["--samples", "5"], "--samples"),
             (["--seeds", "0"], "--seeds: must be at least 1"),
             (["--runs", str(tmp_path), "--seeds", "2"], "--seeds: with --runs"),
             (["--samples", "500"], "--kid-subset-size: KID draws subsets of 1000"),
             (["--fid-counts", "1"], "--fid-counts"),
             (["--points", "5"], "--points: scoring during training needs --minutes"),
             (["--points", "5", "20", "--minutes", "10"], "--points: each point must come before"),
             (["--points", "0", "--minutes", "10"], "--points"),
             (["--resume", "--overwrite"], "--resume: continues the runs")]
    for args, fragment in cases:
        with pytest.raises(UserError, match=fragment):
            main(["--out", str(out), *args])
        assert not out.exists()
    with pytest.raises(UserError, match="--out"):
        main([])


def test_seeds_zero_is_a_one_line_error(cli, cache, tmp_path):
    result = cli("experiments.compare", "--quick", "--seeds", "0", "--out", str(tmp_path / "x"), env=cache)
    assert_one_line_error(result, "--seeds: must be at least 1, got 0")
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
@pytest.mark.parametrize("family", ["vae", "gan"])
def test_each_family_adapter_follows_the_sampler_protocol(quick, family):
    out, _ = quick
    run = out / "runs" / family / "seed_0"
    found, _, metrics = load_finished_run(run)
    sampler = load_sampler(found, run)
    assert found == family and isinstance(sampler, Sampler)
    images = sampler.sample(5, 0)
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    assert np.array_equal(images, sampler.sample(5, 0)) and not np.array_equal(images, sampler.sample(5, 1))
    assert sampler.interpolations(2).shape == (20, 28, 28, 1)
    assert sampler.info["family"] == family and sampler.info["latent_dim"] > 0
    assert sampler.info["sampler_parameters"] == metrics["sampler_parameters"]  # counted two ways
    title, xlabel, curves = sampler.curves(metrics)
    assert title and xlabel and curves
    for x, y in curves.values():
        assert len(x) == len(y) > 0


def test_the_vae_samples_from_a_fitted_mixture_when_its_spec_asks(quick):
    """A model spec's "sampler" options reach the family's adapter: {"prior": "gmm"} draws
    the VAE's codes from a mixture fitted to the encoded training set, not N(0, I); another
    family's adapter, or an unknown option, is refused before anything trains."""
    out, _ = quick
    run = out / "runs" / "vae" / "seed_0"
    mixture = load_sampler("vae", run, options={"prior": "gmm", "components": 3})
    normal = load_sampler("vae", run)
    assert mixture.info["prior"] == "gmm" and mixture.mixture.n_components == 3
    images = mixture.sample(6, 0)
    assert images.shape == (6, 28, 28, 1) and np.array_equal(images, mixture.sample(6, 0))
    assert not np.allclose(images, normal.sample(6, 0))
    for family, options, fragment in (("gan", {"prior": "gmm"}, "gan samplers take no option, not prior"),
                                      ("vae", {"prior": "gmm", "k": 2}, "vae samplers take prior, components, not k")):
        with pytest.raises(UserError, match=fragment):
            check_sampler_options(family, options, "--models[0]")


def write_schema_1(source: Path, target: Path) -> None:
    """A copy of a (schema-2) quick run whose metrics.json is as the trainers wrote it before
    schema 2: no `schema` key."""
    shutil.copytree(source, target)
    metrics = json.loads((source / "metrics.json").read_text())
    del metrics["schema"]
    (target / "metrics.json").write_text(json.dumps(metrics))


@pytest.mark.slow
def test_copies_of_runs_compare_like_the_runs_they_copy(environment, quick, tmp_path):
    out, _ = quick
    vae, gan = out / "runs" / "vae" / "seed_0", out / "runs" / "gan" / "seed_0"
    for family, run in (("vae", vae), ("gan", gan)):
        shutil.copytree(run, tmp_path / f"{family} copy")
    again = tmp_path / "again"
    again.mkdir()
    (again / "report.html").write_text("an older comparison's page")
    main(["--runs", str(vae), str(gan), str(tmp_path / "vae copy"), str(tmp_path / "gan copy"),
          "--out", str(again), "--overwrite", *FEW])
    rows = json.loads((again / "metrics.json").read_text())["rows"]
    timing = "sample_seconds_per_1000"  # the one number that depends on the moment, not the run
    for family in ("vae", "gan"):
        copy, original = rows[f"{family} copy"], rows[family]
        assert [{k: v for k, v in seed.items() if k != timing} for seed in copy["seeds"]] == \
            [{k: v for k, v in seed.items() if k != timing} for seed in original["seeds"]]
        assert {k: v for k, v in copy["summary"].items() if k != timing} == \
            {k: v for k, v in original["summary"].items() if k != timing}
        assert copy["seeds"][0][timing] > 0
    gan_numbers, vae_numbers = rows["gan"]["seeds"][0], rows["vae"]["seeds"][0]
    assert gan_numbers["total_parameters"] > gan_numbers["generator_parameters"] > 0
    assert vae_numbers["generator_parameters"] == 668784 and rows["gan copy"]["seeds"][0]["test_nll"] is None
    assert not (again / "report.html").exists()  # without --html an older page goes too


@pytest.mark.slow
def test_runs_of_an_older_schema_give_a_one_line_error(cli, cache, quick, tmp_path):
    out, _ = quick
    old = tmp_path / "old"
    write_schema_1(out / "runs" / "gan" / "seed_0", old)
    result = cli("experiments.compare", "--runs", str(old), "--out", str(tmp_path / "x"), env=cache)
    assert_one_line_error(result, str(old / "metrics.json"), "schema 1, and this version reads schema 2 only",
                          "python -m gan.train")
    assert not (tmp_path / "x").exists()
