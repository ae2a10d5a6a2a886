"""experiments.ablation: runs grouped into models by seed, each run's last scored epoch, the
changes from the baseline as flags, mean ± std [bootstrap interval] and the resolution lines,
and the refusals. The runs are written by hand (config.json and schema-2 metrics.json), so
every expected number comes from the values put in."""

from __future__ import annotations

import json

import numpy as np
import pytest

from common.errors import UserError
from experiments.ablation import last_score, main, setting_changes
from tests.helpers import assert_one_line_error, write_run

BASE = {"arch": "dcgan", "loss": "nonsaturating", "spectral_norm": False, "ema": 0.999, "epochs": 3,
        "eval_every": 2, "max_minutes": None}


def schema_2(fid: list, ema_fid: list, seconds: float) -> dict:
    """Finished-run metrics, scored after epochs 2 and 3 (None where not scored)."""
    return {"schema": 2, "finished": True, "epochs": 3, "epochs_trained": 3.0, "steps": 30,
            "steps_per_epoch": 10, "time_budget_reached": False, "train_seconds": seconds,
            "parameters": 10, "sampler_parameters": 5,
            "history": {"epoch": [1, 2, 3], "sample_fid": fid, "sample_ema_fid": ema_fid}}


@pytest.fixture
def runs(tmp_path):
    """base: seeds 0, 1, 2 (scored every 2, 2 and 3 epochs: that only watches the run, so they
    are still one model); sn_hinge: seeds 0, 1 (--spectral-norm --loss hinge)."""
    for seed, fid in enumerate((40.0, 45.0, 50.0)):
        write_run(tmp_path / f"base_seed{seed}", "gan",
                  {**BASE, "seed": seed, "name": f"b{seed}", "eval_every": 2 + seed // 2},
                  schema_2([None, 60.0, fid], [None, 55.0, fid - 1], 120.0 * (seed + 1)))
    changed = {**BASE, "loss": "hinge", "spectral_norm": True, "eval_every": 1}
    write_run(tmp_path / "sn_hinge_seed0", "gan", {**changed, "seed": 0},
              schema_2([30.0, 20.0, 8.0], [30.0, 20.0, 7.0], 60.0))
    write_run(tmp_path / "sn_hinge_seed1", "gan", {**changed, "seed": 1},
              schema_2([30.0, 20.0, 9.0], [30.0, 45.0], 60.0))
    return tmp_path


def test_last_score_is_the_last_epoch_that_recorded_the_metric():
    history = {"epoch": [1, 2, 3, 4], "sample_fid": [None, 12.5, None, None], "sample_kid": []}
    assert last_score(history, "sample_fid") == (12.5, 2)
    assert last_score(history, "sample_kid") == (None, None)
    assert last_score(history, "sample_ema_fid") == (None, None)


def test_setting_changes_are_written_as_flags_and_ignore_what_only_watches_the_run():
    base = {"loss": "nonsaturating", "spectral_norm": True, "diffaugment": None, "seed": 0,
            "eval_every": 1, "lr_d": 2e-4}
    run = {"loss": "hinge", "spectral_norm": False, "diffaugment": ["translation", "cutout"], "seed": 3,
           "eval_every": 5}
    assert setting_changes(base, run) == ["--diffaugment translation cutout", "--loss hinge",
                                          "--lr-d (not set)", "--no-spectral-norm"]
    assert setting_changes(base, base) == []


def test_models_are_grouped_by_seed_and_summarised_against_the_baseline(runs, capsys):
    out = runs / "out"
    result = main(["--runs", *(str(path) for path in sorted(runs.glob("*_seed*"))), "--baseline", "base",
                   "--metrics", "sample_fid", "sample_ema_fid", "--out", str(out)])
    base, sn = result["rows"]["base"], result["rows"]["sn_hinge"]
    assert list(result["rows"]) == ["base", "sn_hinge"]  # the baseline first though given last
    assert base["seeds"] == [0, 1, 2] and sn["seeds"] == [0, 1]
    assert base["changes"] == [] and sn["changes"] == ["--loss hinge", "--spectral-norm"]
    assert base["scored_after_epoch"] == [3]
    fid = base["summary"]["sample_fid"]
    assert fid["mean"] == pytest.approx(45.0) and fid["std"] == pytest.approx(np.std([40, 45, 50], ddof=1))
    assert fid["ci"] == [40.0, 50.0]  # three seeds: the bootstrap interval is their range
    assert base["train_minutes"]["mean"] == pytest.approx(4.0)  # (120 + 240 + 360) s / 3
    # sn_hinge seed 1 last scored its EMA generator after epoch 2: a value, not "missing".
    assert sn["values"]["sample_ema_fid"] == [7.0, 45.0] and sn["scored_after_epoch"] == [2, 3]
    assert result["sentences"] == [
        "sample_fid: sn_hinge < base (intervals do not overlap)",
        "sample_ema_fid: sn_hinge vs base not resolved (intervals overlap)"]
    report = (out / "report.md").read_text()
    assert "| sn_hinge | --loss hinge --spectral-norm | 0, 1 | 2, 3 | 8.50 ± 0.71 [8.00, 9.00] |" in report
    assert "- sample_fid: sn_hinge < base (intervals do not overlap)" in report
    assert json.loads((out / "metrics.json").read_text())["rows"]["base"]["values"]["sample_fid"] == [
        40.0, 45.0, 50.0]
    assert report in capsys.readouterr().out


def test_a_seed_without_the_metric_leaves_the_model_without_a_summary(runs, tmp_path):
    write_run(runs / "noema_seed0", "gan", {**BASE, "ema": 0.0, "seed": 0},
              schema_2([None, 60.0, 41.0], [None, None, None], 10.0))
    result = main(["--runs", str(runs / "base_seed0"), str(runs / "noema_seed0"),
                   "--metrics", "sample_fid", "sample_ema_fid", "--out", str(tmp_path / "o")])
    assert result["rows"]["noema"]["summary"]["sample_ema_fid"] is None
    assert result["rows"]["noema"]["changes"] == ["--ema 0.0"]
    assert not any(line.startswith("sample_ema_fid") for line in result["sentences"])


@pytest.mark.parametrize("args, fragment", [
    (["--baseline", "nope"], "--baseline: no model 'nope' among the runs (base, sn_hinge)"),
    (["--metrics", "sample_kid"], "--metrics: no run recorded sample_kid"),
    (["--runs", "VAE"], "--runs: an ablation sets runs of one family against each other; got gan and vae runs"),
])
def test_bad_choices_are_refused(runs, args, fragment):
    write_run(runs / "vae_seed0", "vae", {"seed": 0}, schema_2([1.0], [1.0], 1.0))
    given = [str(path) for path in sorted(runs.glob("*_seed*")) if path.name != "vae_seed0"]
    if args[0] == "--runs":
        args = ["--runs", *given, str(runs / "vae_seed0")]
    with pytest.raises(UserError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        main(["--runs", *given, *args, "--out", str(runs / "out")])
    assert not (runs / "out").exists()


@pytest.mark.slow  # a subprocess importing TensorFlow, for the exit status and the one line
def test_runs_grouped_as_one_model_must_share_their_settings(cli, runs):
    write_run(runs / "base_seed7", "gan", {**BASE, "loss": "hinge", "seed": 7}, schema_2([1.0], [1.0], 1.0))
    result = cli("experiments.ablation", "--runs", str(runs / "base_seed0"), str(runs / "base_seed7"),
                 "--out", str(runs / "out"))
    assert_one_line_error(result, "grouped as 'base'", "differ in loss")
    assert not (runs / "out").exists()


def test_a_setting_added_after_a_run_counts_as_its_default(runs, tmp_path):
    """The base runs' config.json has no noise_components (as if made before the flag)."""
    write_run(runs / "base_seed3", "gan", {**BASE, "seed": 3, "noise_components": 0},
              schema_2([None, 60.0, 44.0], [None, 55.0, 43.0], 60.0))
    given = [str(runs / f"base_seed{seed}") for seed in range(4)]
    result = main(["--runs", *given, "--metrics", "sample_fid", "--out", str(tmp_path / "o")])
    assert result["rows"]["base"]["seeds"] == [0, 1, 2, 3]
    write_run(runs / "base_seed4", "gan", {**BASE, "seed": 4, "noise_components": 4},
              schema_2([None, 60.0, 44.0], [None, 55.0, 43.0], 60.0))
    with pytest.raises(UserError, match="differ in noise_components"):
        main(["--runs", *given, str(runs / "base_seed4"), "--out", str(tmp_path / "p")])
