"""The IWAE objective (Burda et al. 2015) and the Gaussian-mixture sampler (vae/prior.py):
the bound against the ELBO on the same samples, settings, the mixture on known clusters;
end to end with a short run (slow)."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.config import parse_settings
from common.errors import UserError
from tests.helpers import assert_one_line_error
from vae.losses import iwae_log_likelihood
from vae.model import VAE, build_vae
from vae.prior import fit_latent_mixture, sample_latent_mixture
from vae.train import Settings


def tiny_vae(**options) -> VAE:
    keras.utils.set_random_seed(0)
    return build_vae("mlp", 3, [16], seed=0, **options)


def binary_images(n: int = 6) -> tf.Tensor:
    return tf.constant((np.random.default_rng(0).random((n, 28, 28, 1)) < 0.3).astype(np.float32))


def test_iwae_bound_is_at_least_the_elbo_estimate_of_the_same_samples():
    """L_k = log mean_i w_i ≥ mean_i log w_i (Jensen), image by image, for the same k draws;
    for k = 1 the two are the same number, the one-sample ELBO estimate."""
    model, images = tiny_vae(), binary_images()
    for k in (1, 5, 50):
        weights = model.log_weights(images, k)
        assert weights.shape == (k, 6)
        bound, elbo = iwae_log_likelihood(weights).numpy(), tf.reduce_mean(weights, axis=0).numpy()
        if k == 1:
            np.testing.assert_allclose(bound, elbo, rtol=1e-6)
        else:
            assert np.all(bound >= elbo - 1e-4) and np.all(bound > elbo)


def test_iwae_bound_with_k_1_averages_to_the_analytic_elbo():
    """E[L_1] = E_q[log p(x|z)] − KL(q ‖ p): over 4,000 draws it meets the model's ELBO (with
    its closed-form KL and the reconstruction averaged over the same number of draws)."""
    model, images = tiny_vae(), binary_images(3)
    draws = tf.reduce_mean(model.log_weights(images, 4000), axis=0).numpy()  # 4,000 values of L_1
    reconstruction, kl = model._terms(tf.tile(images, [2000, 1, 1, 1]), False)  # one z per copy
    elbo = -(np.mean(reconstruction.numpy().reshape(2000, 3), axis=0) + kl.numpy()[:3])
    np.testing.assert_allclose(draws, elbo, atol=0.5)


def test_iwae_training_step_descends_minus_the_bound():
    model = tiny_vae(objective="iwae", iwae_k=4)
    model.compile(keras.optimizers.Adam(1e-3))
    before = [w.numpy() for w in model.trainable_weights]
    logs = model.train_step(binary_images())
    assert np.isfinite(float(logs["loss"])) and {"elbo", "reconstruction", "kl"} <= set(logs)
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))
    # On average −L_4 lies below −ELBO: the logged loss is the tighter bound.
    assert float(logs["loss"]) < -float(logs["elbo"]) + 5.0


def test_objective_survives_saving(tmp_path):
    model = tiny_vae(objective="iwae", iwae_k=7)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert (loaded.objective, loaded.iwae_k) == ("iwae", 7)


@pytest.mark.parametrize("argv, fragment", [
    (["--objective", "iwae", "--iwae-k", "0"], "--iwae-k: must be greater than 0"),
    (["--objective", "iwae", "--beta", "0.5"], "no KL weight"),
    (["--objective", "elbow"], "--objective"),
])
def test_bad_iwae_settings_are_user_errors(argv, fragment):
    with pytest.raises(UserError, match=fragment):
        parse_settings(Settings, argv, "")


def test_conditional_vae_feeds_the_label_to_encoder_and_decoder(tmp_path):
    model = tiny_vae(n_classes=10)
    assert model.n_classes == 10
    images = binary_images(2)
    mean_3 = model._encode(images, tf.constant([3, 3]), False)[0].numpy()
    mean_5 = model._encode(images, tf.constant([5, 5]), False)[0].numpy()
    assert mean_3.shape == (2, 3) and not np.allclose(mean_3, mean_5)
    z = tf.zeros((2, 3))
    assert not np.allclose(model.decode(z, tf.constant([1, 1])).numpy(), model.decode(z, tf.constant([2, 2])).numpy())
    assert model.log_weights(images, 4, labels=tf.constant([3, 5])).shape == (4, 2)
    model.save(tmp_path / "c.keras")
    loaded = keras.saving.load_model(tmp_path / "c.keras")
    assert loaded.n_classes == 10
    np.testing.assert_allclose(loaded.decode(z, tf.constant([1, 2])).numpy(),
                               model.decode(z, tf.constant([1, 2])).numpy(), rtol=1e-6)


def test_conditional_training_step_uses_the_batch_labels():
    model = tiny_vae(n_classes=10)
    model.compile(keras.optimizers.Adam(1e-3))
    logs = model.train_step((binary_images(4), tf.constant([0, 1, 2, 3])))
    assert np.isfinite(float(logs["loss"]))


def test_mixture_finds_known_clusters_and_samples_reproducibly():
    rng = np.random.default_rng(0)
    centres = np.array([[-4.0, 0.0], [4.0, 2.0]])
    codes = np.concatenate([rng.normal(c, 0.3, (300, 2)) for c in centres])
    mixture = fit_latent_mixture(codes, 2)
    found = mixture.means_[np.argsort(mixture.means_[:, 0])]
    np.testing.assert_allclose(found, centres, atol=0.1)
    samples = sample_latent_mixture(mixture, 1000, seed=3)
    assert samples.shape == (1000, 2) and samples.dtype == np.float32
    np.testing.assert_array_equal(samples, sample_latent_mixture(mixture, 1000, seed=3))
    near = np.min(np.linalg.norm(samples[:, None] - centres[None], axis=-1), axis=1)
    assert np.mean(near < 1.5) > 0.99  # every draw comes from one of the two clusters
    assert abs(np.mean(samples[:, 0] > 0) - 0.5) < 0.06  # in proportion to the weights


def test_more_components_than_codes_is_a_user_error():
    with pytest.raises(UserError, match="--components: 5 components"):
        fit_latent_mixture(np.zeros((4, 2)), 5)


@pytest.mark.slow
def test_conditional_run_samples_the_requested_class(cli, data_dir, tmp_path):
    run = tmp_path / "cvae"
    result = cli("vae.train", "--run-dir", str(run), "--conditional", "--epochs", "1",
                 "--steps-per-epoch", "20", "--latent-dim", "4", "--hidden-units", "64", "--nll-k", "5",
                 "--nll-k-train", "0", "--no-eval", "--quiet", env={"DATA_DIR": data_dir})
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "sevens.npz"
    result = cli("vae.sample", "--run", str(run), "--label", "7", "--n", "5", "--out", str(out))
    assert result.returncode == 0 and np.load(out)["images"].shape == (5, 28, 28), result.stderr[-3000:]
    assert_one_line_error(cli("vae.sample", "--run", str(run), "--label", "12", "--out",
                              str(tmp_path / "x.png")), "--label: must be below 10")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_iwae_run_then_gmm_sampler_end_to_end(cli, data_dir, tiny_classifier_cache, tmp_path,
                                              monkeypatch):
    run = tmp_path / "iwae"
    result = cli("vae.train", "--run-dir", str(run), "--objective", "iwae", "--iwae-k", "3",
                 "--epochs", "1", "--steps-per-epoch", "20", "--latent-dim", "4", "--hidden-units",
                 "64", "--nll-k", "5", "--nll-k-train", "0", "--no-eval", "--quiet",
                 env={"DATA_DIR": data_dir})
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["finished"] and np.isfinite(metrics["test_nll"])
    assert json.loads((run / "config.json").read_text())["settings"]["objective"] == "iwae"
    out = tmp_path / "gmm.npz"
    result = cli("vae.sample", "--run", str(run), "--prior", "gmm", "--components", "3", "--n", "50",
                 "--out", str(out), env={"DATA_DIR": data_dir})
    assert result.returncode == 0, result.stderr[-3000:]
    assert np.load(out)["images"].shape == (50, 28, 28)
    bad = tmp_path / "bad.png"
    assert_one_line_error(cli("vae.sample", "--run", str(run), "--prior", "gmm", "--components",
                              "60000", "--out", str(bad), env={"DATA_DIR": data_dir}),
                          "--components: 60000 components")
    assert not bad.exists()
    assert_one_line_error(cli("vae.sample", "--run", str(run), "--label", "7", "--out", str(bad)),
                          "not a class-conditional run")
    assert not bad.exists()
    assert_one_line_error(cli("vae.train", "--run-dir", str(tmp_path / "k0"), "--objective", "iwae",
                              "--iwae-k", "0"), "--iwae-k")
    assert not (tmp_path / "k0").exists()
    check_prior_experiment(run, tiny_classifier_cache, tmp_path, monkeypatch)


def check_prior_experiment(run, classifier_cache, tmp_path, monkeypatch):
    """experiments.vae_prior scores both priors of every run; two copies of a run agree."""
    from experiments import vae_prior

    for name, value in classifier_cache.items():
        monkeypatch.setenv(name, value)
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    out = tmp_path / "prior.json"
    vae_prior.main(["--runs", str(run), str(copy), "--n", "300", "--components", "3",
                    "--out", str(out)])
    result = json.loads(out.read_text())
    normal, gmm = result["runs"][str(run)]["normal"], result["runs"][str(run)]["gmm"]
    assert 0 < normal["fid"] != gmm["fid"] > 0
    fid = result["summary"]["gmm"]["fid"]
    assert fid["n"] == 2 and fid["values"] == [gmm["fid"], gmm["fid"]] and fid["std"] == 0
    assert result["fid_ratio_gmm_to_normal"]["mean"] == pytest.approx(gmm["fid"] / normal["fid"])
    order = "gmm < normal" if gmm["fid"] < normal["fid"] else "normal < gmm"
    assert result["sentences"][0] == f"fid: {order} (intervals do not overlap)"
    for argv, fragment in ((["--runs", str(run), str(run)], "given twice"), ([], "--runs")):
        with pytest.raises(UserError, match=fragment):
            vae_prior.main([*argv, "--out", str(tmp_path / "none.json")])
    assert not (tmp_path / "none.json").exists()
