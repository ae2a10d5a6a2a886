"""experiments.runs: schema-1 metrics of both families → schema 2, and finished-run loading.

The schema-1 inputs have the keys vae.train and gan.train write today (values shortened);
the expected schema-2 dicts are written out in full by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.errors import UserError
from experiments.runs import load_finished_run, upgrade_metrics

VAE_SETTINGS = {"arch": "mlp", "latent_dim": 50, "hidden_units": [500, 500], "epochs": 1}
GAN_SETTINGS = {"arch": "dcgan", "k": 2, "epochs": 2, "eval_samples": 10000}


def vae_schema_1() -> dict:
    """What vae.train writes at the end of a run (one epoch, 20 steps)."""
    return {"test_nll": 217.5, "test_nll_standard_error": 0.53, "nll_k": 20, "test_elbo": -225.9,
            "test_reconstruction": 213.0, "test_kl": 13.0, "active_units": 50, "likelihood": True,
            "train_seconds": 3.7, "epochs": 1, "time_budget_reached": False, "steps": 20,
            "steps_per_epoch": 20, "parameters": 1361884,
            "history": {"epoch": [1], "train_elbo": [-318.1], "test_elbo": [-226.0]},
            "sample_quality": {"fid": 0.02, "classifier_score": 1.0, "classes_covered": 2.0,
                               "class_kl_to_uniform": 1.7, "samples": 2000, "history": []}}


def gan_schema_1() -> dict:
    """What gan.train writes after its second epoch (k = 2, sample scores at epoch 2 only)."""
    return {"epochs": 2, "train_seconds": 16.8, "parameters": 784641, "discriminator_parameters": 138561,
            "steps_per_epoch": 20,
            "history": {"d_loss": [1.2, 1.1], "g_loss": [0.6, 0.7], "d_updates": [40.0, 80.0],
                        "g_updates": [20.0, 40.0], "epoch_seconds": [8.8, 8.0], "fid": [None, 0.02],
                        "classifier_score": [None, 1.5], "classes_covered": [None, 3.0],
                        "class_kl_to_uniform": [None, 2.3]},
            "steps": {"step": [20, 40], "d_loss": [1.2, 1.0], "g_loss": [0.6, 0.8],
                      "d_updates": [40.0, 80.0], "g_updates": [20.0, 40.0]}}


def test_vae_schema_1_is_upgraded_to_schema_2():
    expected = {"test_nll": 217.5, "test_nll_standard_error": 0.53, "nll_k": 20, "test_elbo": -225.9,
                "test_reconstruction": 213.0, "test_kl": 13.0, "active_units": 50, "likelihood": True,
                "train_seconds": 3.7, "epochs": 1, "time_budget_reached": False, "steps": 20,
                "steps_per_epoch": 20, "parameters": 1361884,
                "history": {"epoch": [1], "train_elbo": [-318.1], "test_elbo": [-226.0]},
                "sample_quality": {"fid": 0.02, "classifier_score": 1.0, "classes_covered": 2.0,
                                   "class_kl_to_uniform": 1.7, "samples": 2000, "history": []},
                "schema": 2, "finished": True, "epochs_trained": 1.0,
                "sampler_parameters": 668784}  # 50·500+500 + 500·500+500 + 500·784+784
    assert upgrade_metrics("vae", vae_schema_1(), VAE_SETTINGS) == expected


def test_vae_time_budget_gives_fractional_epochs_and_no_nll_means_unfinished():
    metrics = {**vae_schema_1(), "epochs": 3, "steps": 50, "time_budget_reached": True}
    upgraded = upgrade_metrics("vae", metrics, {**VAE_SETTINGS, "epochs": 10})
    assert upgraded["epochs_trained"] == 2.5 and upgraded["finished"] is True
    del metrics["test_nll"]
    assert upgrade_metrics("vae", metrics, VAE_SETTINGS)["finished"] is False


def test_gan_schema_1_is_upgraded_to_schema_2():
    expected = {"epochs": 2, "train_seconds": 16.8, "steps_per_epoch": 20, "schema": 2,
                "finished": True, "epochs_trained": 2.0, "steps": 40, "discriminator_steps": 80,
                "time_budget_reached": False, "sampler_parameters": 784641,
                "parameters": 784641 + 138561,
                "history": {"epoch": [1, 2], "train_d_loss": [1.2, 1.1], "train_g_loss": [0.6, 0.7],
                            "train_d_updates": [40.0, 80.0], "train_g_updates": [20.0, 40.0],
                            "epoch_seconds": [8.8, 8.0], "sample_fid": [None, 0.02],
                            "sample_classifier_score": [None, 1.5],
                            "sample_classes_covered": [None, 3.0],
                            "sample_class_kl_to_uniform": [None, 2.3]},
                "step_history": {"step": [20, 40], "d_loss": [1.2, 1.0], "g_loss": [0.6, 0.8],
                                 "d_updates": [40.0, 80.0], "g_updates": [20.0, 40.0]},
                "sample_quality": {"fid": 0.02, "classifier_score": 1.5, "classes_covered": 3.0,
                                   "class_kl_to_uniform": 2.3, "samples": 10000,
                                   "history": [{"epoch": 2, "fid": 0.02, "classifier_score": 1.5,
                                                "classes_covered": 3.0, "class_kl_to_uniform": 2.3}]}}
    assert upgrade_metrics("gan", gan_schema_1(), GAN_SETTINGS) == expected


def test_gan_finished_means_all_epochs_or_the_time_budget():
    unfinished = upgrade_metrics("gan", gan_schema_1(), {**GAN_SETTINGS, "epochs": 5})
    assert unfinished["finished"] is False and unfinished["epochs_trained"] == 2.0
    budget = {**gan_schema_1(), "time_budget_reached": True}
    budget["history"] = {**budget["history"], "g_updates": [20.0, 30.0]}  # epoch 2 cut after 10 steps
    upgraded = upgrade_metrics("gan", budget, {**GAN_SETTINGS, "epochs": 5})
    assert upgraded["finished"] is True and upgraded["epochs_trained"] == 1.5
    assert upgraded["steps"] == 30 and "sample_quality" in upgraded
    unscored = gan_schema_1()
    unscored["history"] = {**unscored["history"], "fid": [0.03, None]}  # the last epoch not scored
    assert "sample_quality" not in upgrade_metrics("gan", unscored, GAN_SETTINGS)


def test_schema_2_metrics_come_back_unchanged():
    metrics = upgrade_metrics("gan", gan_schema_1(), GAN_SETTINGS)
    assert upgrade_metrics("gan", json.loads(json.dumps(metrics)), GAN_SETTINGS) == metrics


def write_run(folder: Path, family: str, settings: dict, metrics: object | None) -> Path:
    """A run folder with config.json and (unless None) metrics.json."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model": family, "settings": settings}))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_load_finished_run_converts_schema_1(tmp_path):
    run = write_run(tmp_path / "gan", "gan", GAN_SETTINGS, gan_schema_1())
    family, config, metrics = load_finished_run(run, ("vae", "gan"))
    assert family == "gan" and config["settings"] == GAN_SETTINGS
    assert metrics == upgrade_metrics("gan", gan_schema_1(), GAN_SETTINGS)


def test_runs_that_are_unfinished_or_cannot_be_converted_give_one_line_errors(tmp_path):
    no_discriminator = {k: v for k, v in gan_schema_1().items() if k != "discriminator_parameters"}
    schema_2 = upgrade_metrics("gan", gan_schema_1(), GAN_SETTINGS)
    cases = [("gan", {**GAN_SETTINGS, "epochs": 5}, gan_schema_1(),
              "not a finished gan run (training stopped before epoch 5)"),
             ("gan", GAN_SETTINGS, None, "not a finished run (no metrics.json)"),
             ("gan", GAN_SETTINGS, no_discriminator,
              ("written by an older version (schema 1) that cannot be converted "
               "(no 'discriminator_parameters'); train the run again with `python -m gan.train`")),
             ("vae", {"epochs": 1}, vae_schema_1(), "cannot be converted (its config.json describes no"),
             ("fast", {}, {"epochs": 1}, "no converter knows 'fast' runs"),
             ("gan", GAN_SETTINGS, {**schema_2, "schema": 3}, "schema 3 is not one this version reads"),
             ("gan", GAN_SETTINGS, {k: v for k, v in schema_2.items() if k != "finished"},
              "says schema 2 but lacks finished"),
             ("gan", GAN_SETTINGS, [1, 2], "not a metrics file")]
    for index, (family, settings, metrics, message) in enumerate(cases):
        run = write_run(tmp_path / str(index), family, settings, metrics)
        with pytest.raises(UserError) as error:
            load_finished_run(run)
        assert message in str(error.value) and "\n" not in str(error.value), str(error.value)
        assert str(error.value).startswith(str(run))
    with pytest.raises(UserError, match="is a 'fast' run, not a vae or gan run"):
        load_finished_run(tmp_path / "4", ("vae", "gan"))
