"""experiments.compare: the --quick pipeline end to end, --runs with N models (schema-1 and
schema-2 runs), --html, the families' sampler adapters, and bad input.

A tiny classifier is trained on a slice of MNIST and cached under the real MNIST
fingerprint in a temporary cache, so the pipeline runs without the real one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from common.classifier import dataset_fingerprint, save_classifier, train_classifier
from common.data import Splits, load_splits
from common.errors import UserError
from experiments.compare import main
from experiments.models import Sampler, load_sampler
from experiments.runs import load_finished_run
from tests.conftest import assert_one_line_error, run_module

pytestmark = pytest.mark.slow  # trains models or runs whole programs


@pytest.fixture(scope="module")
def cache(data_dir, tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("classifier_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLASSIFIER_CACHE", str(folder))
        splits = load_splits("mnist", data_dir)
        small = Splits(splits.x_train[:2000], splits.y_train[:2000], splits.x_validation[:500],
                       splits.y_validation[:500], splits.x_test[:500], splits.y_test[:500])
        result = train_classifier("mnist", small, dataset_fingerprint(splits), epochs=1,
                                  width=4, feature_size=16, augment=False, verbose=0)
        save_classifier(result.classifier)
    return {"CLASSIFIER_CACHE": str(folder), "DATA_DIR": data_dir}


@pytest.fixture(scope="module")
def quick(cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "quick"
    result = run_module("experiments.compare", "--quick", "--out", str(out), env=cache)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_quick_pipeline_writes_the_report_figures_metrics_and_runs(quick):
    out, _ = quick
    report = (out / "report.md").read_text()
    for row in ("real training images", "VAE", "GAN", "Gaussian noise", "Bernoulli"):
        assert f"| {row}" in report
    assert "not with Inception FID" in report and "Theis et al. 2016" in report
    metrics = json.loads((out / "metrics.json").read_text())
    rows = metrics["rows"]
    assert set(rows) >= {"real training images", "VAE", "GAN"}
    for row in rows.values():
        assert 0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1 and row["fid"] >= 0
        assert 1 <= row["classifier_score"] <= 10 and sum(row["class_counts"]) == 1000
    assert rows["VAE"]["test_nll"] > 0 and rows["GAN"]["test_nll"] is None
    assert rows["VAE"]["epochs"] == rows["GAN"]["epochs"] == 1
    for name in ("samples", "interpolations", "curves", "neighbours_vae", "neighbours_gan"):
        assert (out / f"{name}.png").stat().st_size > 1000
        assert f"{name}.png" in report
    assert not (out / "report.html").exists()  # only with --html
    for kind in ("vae", "gan"):
        assert list((out / "runs" / kind / "tensorboard").rglob("events.out.tfevents.*"))
    assert report.startswith("# mnist: VAE vs GAN") and "Budget: 1 epoch(s) per model" in report


def test_existing_comparison_is_not_overwritten(cli, cache, quick):
    out, _ = quick
    before = (out / "report.md").read_bytes()
    result = cli("experiments.compare", "--quick", "--out", str(out), env=cache)
    assert_one_line_error(result, "--overwrite")
    assert (out / "report.md").read_bytes() == before


def test_any_number_of_finished_runs_can_be_compared(cli, cache, quick, tmp_path):
    out, _ = quick
    shutil.copytree(out / "runs" / "gan", tmp_path / "gan copy")  # a third model
    runs = [out / "runs" / "gan", out / "runs" / "vae", tmp_path / "gan copy"]
    result = cli("experiments.compare", "--runs", *map(str, runs), "--out", str(tmp_path / "again"),
                 "--samples", "100", "--parzen-validation", "20", "--parzen-test", "100", "--html",
                 env=cache)
    assert result.returncode == 0, result.stderr[-3000:]
    again = tmp_path / "again"
    metrics = json.loads((again / "metrics.json").read_text())
    assert list(metrics["runs"]) == ["gan", "vae", "gan copy"] and not (again / "runs").exists()
    rows = metrics["rows"]
    assert rows["vae"]["model"] == "vae" and rows["gan copy"]["model"] == "gan"
    # The copy is the same generator sampled with the same seed: the same numbers.
    assert rows["gan copy"]["fid"] == rows["gan"]["fid"]
    report = (again / "report.md").read_text()
    assert report.startswith("# mnist: gan vs vae vs gan copy")
    for name in ("neighbours_gan", "neighbours_vae", "neighbours_gan_copy"):
        assert (again / f"{name}.png").stat().st_size > 1000 and f"({name}.png)" in report
    page = (again / "report.html").read_text()  # --html: the figures linked, not inlined
    assert "src='samples.png'" in page and "src='neighbours_gan_copy.png'" in page
    assert "base64" not in page and "<td>gan copy</td>" in page


@pytest.fixture
def environment(cache, monkeypatch):
    """The same environment in this process, for the checks that fail before any work."""
    for name, value in cache.items():
        monkeypatch.setenv(name, value)


def test_unfinished_or_foreign_runs_are_refused(environment, quick, tmp_path):
    out, _ = quick
    vae, gan = out / "runs" / "vae", out / "runs" / "gan"
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text((gan / "config.json").read_text())
    cases = [([vae, vae], "two folders are named vae"),
             ([tmp_path, gan], "config.json"),
             ([vae, tmp_path / "half"], "not a finished run")]
    for runs, fragment in cases:
        with pytest.raises(UserError, match=fragment):
            main(["--runs", *map(str, runs), "--out", str(tmp_path / "x")])
        assert not (tmp_path / "x").exists()


def test_bad_settings_and_missing_classifier_are_refused_before_any_work(environment, tmp_path,
                                                                         monkeypatch):
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
             (["--samples", "5"], "--samples")]
    for args, fragment in cases:
        with pytest.raises(UserError, match=fragment):
            main(["--out", str(out), *args])
        assert not out.exists()
    with pytest.raises(UserError, match="--out"):
        main([])
    monkeypatch.setenv("CLASSIFIER_CACHE", str(tmp_path / "empty"))
    with pytest.raises(UserError, match="python -m experiments.classifier --dataset mnist"):
        main(["--out", str(out)])
    assert not out.exists()


@pytest.mark.parametrize("family", ["vae", "gan"])
def test_each_family_adapter_follows_the_sampler_protocol(quick, family):
    out, _ = quick
    run = out / "runs" / family
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


def write_schema_1(source: Path, target: Path) -> None:
    """A copy of a (schema-2) quick run whose metrics.json is rewritten by hand as the trainers
    wrote it before schema 2."""
    shutil.copytree(source, target)
    new = json.loads((source / "metrics.json").read_text())
    old = {key: new[key] for key in ("epochs", "time_budget_reached", "train_seconds", "steps_per_epoch")}
    if "test_nll" in new:  # the VAE: the same keys less the schema-2 additions
        old.update({key: value for key, value in new.items() if key not in
                    ("schema", "finished", "epochs_trained", "sampler_parameters")})
    else:  # the GAN: generator parameters only, the step history as `steps`, unprefixed history
        history = {key.removeprefix("train_").removeprefix("sample_"): values
                   for key, values in new["history"].items() if key != "epoch"}
        old.update(parameters=new["sampler_parameters"], steps=new["step_history"], history=history,
                   discriminator_parameters=new["parameters"] - new["sampler_parameters"])
    (target / "metrics.json").write_text(json.dumps(old))


def test_schema_1_runs_compare_like_the_schema_2_runs_they_copy(environment, quick, tmp_path):
    out, _ = quick
    for family in ("vae", "gan"):
        write_schema_1(out / "runs" / family, tmp_path / f"{family} v2")
    again = tmp_path / "again"
    again.mkdir()
    (again / "report.html").write_text("an older comparison's page")
    main(["--runs", str(out / "runs" / "vae"), str(out / "runs" / "gan"), str(tmp_path / "vae v2"),
          str(tmp_path / "gan v2"), "--out", str(again), "--overwrite", "--samples", "100",
          "--parzen-validation", "20", "--parzen-test", "100"])
    rows = json.loads((again / "metrics.json").read_text())["rows"]
    for family in ("vae", "gan"):
        assert rows[f"{family} v2"] == rows[family]
    assert rows["gan"]["total_parameters"] > rows["gan"]["generator_parameters"] > 0
    assert rows["vae"]["generator_parameters"] == 668784 and rows["gan v2"]["test_nll"] is None
    assert not (again / "report.html").exists()  # without --html an older page goes too


def test_metrics_that_cannot_be_converted_give_a_one_line_error(cli, cache, quick, tmp_path):
    out, _ = quick
    broken = tmp_path / "broken"
    write_schema_1(out / "runs" / "gan", broken)
    metrics = json.loads((broken / "metrics.json").read_text())
    del metrics["discriminator_parameters"]
    (broken / "metrics.json").write_text(json.dumps(metrics))
    result = cli("experiments.compare", "--runs", str(broken), "--out", str(tmp_path / "x"), env=cache)
    assert_one_line_error(result, str(broken / "metrics.json"), "written by an older version",
                          "'discriminator_parameters'", "python -m gan.train")
    assert not (tmp_path / "x").exists()
