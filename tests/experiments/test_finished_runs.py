"""experiments.finished_runs: finished-run loading, and the refusal of runs in another schema."""

from __future__ import annotations

import pytest

from common.errors import UserError
from experiments.finished_runs import load_finished_run
from tests.helpers import write_run

VAE_SETTINGS = {"arch": "mlp", "latent_dim": 50, "hidden_units": [500, 500], "epochs": 1}
GAN_SETTINGS = {"arch": "dcgan", "k": 2, "epochs": 2, "eval_samples": 10000}


def gan_schema_2() -> dict:
    """What gan.train writes after its second and last epoch (k = 2, values shortened)."""
    return {"schema": 2, "finished": True, "epochs": 2, "epochs_trained": 2.0, "steps": 40,
            "steps_per_epoch": 20, "time_budget_reached": False, "train_seconds": 16.8,
            "parameters": 923202, "sampler_parameters": 784641, "discriminator_steps": 80,
            "history": {"epoch": [1, 2], "train_d_loss": [1.2, 1.1], "sample_fid": [None, 0.02]}}


def test_load_finished_run_reads_schema_2(tmp_path):
    run = write_run(tmp_path / "gan", "gan", GAN_SETTINGS, gan_schema_2())
    family, config, metrics = load_finished_run(run, ("vae", "gan"))
    assert family == "gan" and config["settings"] == GAN_SETTINGS and metrics == gan_schema_2()


def test_runs_that_are_unfinished_old_or_damaged_give_one_line_errors(tmp_path):
    old = {k: v for k, v in gan_schema_2().items() if k != "schema"}  # schema 1 had no key
    cases = [("gan", GAN_SETTINGS, {**gan_schema_2(), "finished": False},
              "not a finished gan run (training stopped before epoch 2)"),
             ("gan", GAN_SETTINGS, None, "not a finished run (no metrics.json)"),
             ("gan", GAN_SETTINGS, old,
              "schema 1, and this version reads schema 2 only; train the run again with `python -m gan.train`"),
             ("vae", {"epochs": 1}, {**gan_schema_2(), "schema": 3}, "schema 3, and this version reads"),
             ("gan", GAN_SETTINGS, {k: v for k, v in gan_schema_2().items() if k != "steps"},
              "says schema 2 but lacks steps"),
             ("gan", GAN_SETTINGS, [1, 2], "not a metrics file")]
    for index, (family, settings, metrics, message) in enumerate(cases):
        run = write_run(tmp_path / str(index), family, settings, metrics)
        with pytest.raises(UserError) as error:
            load_finished_run(run)
        assert message in str(error.value) and "\n" not in str(error.value), str(error.value)
        assert str(error.value).startswith(str(run))
    with pytest.raises(UserError, match="is a 'vae' run, not a pixelcnn or gan run"):
        load_finished_run(tmp_path / "3", ("pixelcnn", "gan"))
