"""Class-conditional GANs: the projection discriminator against its formula, the label
embedding, the classification accuracy score on known answers, settings refused with one
line; end to end (slow): a tiny conditional run with EMA, gan.sample --label."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.config import parse_settings
from common.errors import UserError
from common.evaluation.metrics import classification_accuracy_score, per_class_accuracy
from gan.conditional import EMBEDDING_SIZE, conditional_generator, projection_discriminator
from gan.model import build_discriminator, build_generator
from gan.sample import generator_classes, sample_images
from gan.sample import main as sample_main
from gan.train import Settings, train
from tests.helpers import assert_one_line_error


def test_classification_accuracy_score_known_answers():
    probabilities = np.eye(3)[[0, 1, 2, 2, 1, 0]]  # the classifier's argmax: 0 1 2 2 1 0
    requested = np.array([0, 1, 2, 0, 0, 0])
    assert classification_accuracy_score(probabilities, requested) == pytest.approx(4 / 6)
    np.testing.assert_allclose(per_class_accuracy(probabilities, requested, 4), [2 / 4, 1, 1, np.nan])
    with pytest.raises(ValueError, match="one requested label per sample"):
        classification_accuracy_score(probabilities, requested[:3])


def test_projection_discriminator_is_psi_of_phi_plus_embedding_dot_phi():
    plain = build_discriminator("dcgan")
    conditional = projection_discriminator(plain, 10)
    images = tf.random.stateless_uniform((4, 28, 28, 1), seed=(0, 1), minval=-1, maxval=1)
    labels = tf.constant([0, 3, 3, 9])
    features = keras.Model(plain.inputs, plain.get_layer("logit").input)(images).numpy()  # φ(x)
    embedding = conditional.get_layer("class_embedding").kernel.numpy()  # (classes, features)
    expected = plain(images).numpy()[:, 0] + np.sum(embedding[labels.numpy()] * features, axis=1)
    np.testing.assert_allclose(conditional([images, labels]).numpy()[:, 0], expected, rtol=1e-4, atol=1e-5)


def test_conditional_generator_follows_its_label():
    generator = conditional_generator(build_generator("dcgan", 8 + EMBEDDING_SIZE), 10)
    assert generator_classes(generator) == 10
    images = sample_images(generator, 4, seed=1, labels=np.array([1, 1, 2, 2]))
    again = sample_images(generator, 4, seed=1, labels=np.array([1, 1, 2, 2]))
    other = sample_images(generator, 4, seed=1, labels=np.array([5, 5, 5, 5]))
    assert images.shape == (4, 28, 28)
    np.testing.assert_array_equal(images, again)
    assert not np.allclose(images, other)


@pytest.mark.parametrize("argv, fragment", [
    (["--ema", "1.5"], "--ema: the decay must lie in [0, 1), got 1.5"),
    (["--ema", "-0.1"], "--ema: must be at least 0"),
    (["--diffaugment", "translation,colour"], "--diffaugment"),
    (["--spectral-norm", "--arch", "mlp"], "--spectral-norm"),
    (["--upsample", "nearest", "--arch", "mlp"], "--upsample: only the dcgan generator"),
    (["--downsample", "average", "--arch", "mlp"], "--downsample: only the dcgan discriminator"),
    (["--r1", "-1"], "--r1"),
    (["--loss", "hinge", "--label-smoothing", "0.1"], "--label-smoothing"),
])
def test_bad_stabiliser_settings_are_user_errors(argv, fragment):
    with pytest.raises(UserError, match=fragment.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        parse_settings(Settings, argv, "")


TINY = dict(epochs=1, steps_per_epoch=2, batch_size=16, log_every=1, quiet=True, eval=False)


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory, data_dir):
    folder = tmp_path_factory.mktemp("cgan") / "run"
    train(Settings(run_dir=str(folder), data_dir=data_dir, conditional=True, spectral_norm=True,
                   ema=0.9, r1=1.0, diffaugment="translation,cutout", loss="hinge", **TINY))
    return folder


@pytest.mark.slow
def test_conditional_run_saves_both_generators_and_samples_by_label(conditional_run, tmp_path):
    for name in ("generator.keras", "generator_ema.keras", "samples_ema.png", "samples/epoch_001.png"):
        assert (conditional_run / name).is_file(), name
    history = json.loads((conditional_run / "metrics.json").read_text())["history"]
    assert np.isfinite(history["train_r1_penalty"][0]) and "train_critic_real" in history
    out = tmp_path / "sevens.npz"
    sample_main(["--run", str(conditional_run), "--label", "7", "--n", "6", "--out", str(out)])
    assert np.load(out)["images"].shape == (6, 28, 28)
    with pytest.raises(UserError, match="--label: must be below 10"):
        sample_main(["--run", str(conditional_run), "--label", "12", "--out", str(tmp_path / "x.png")])
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_label_on_an_unconditional_run_and_bad_ema_are_one_line_errors(cli, tmp_path, data_dir):
    run = tmp_path / "plain"
    train(Settings(run_dir=str(run), data_dir=data_dir, **TINY))
    assert_one_line_error(cli("gan.sample", "--run", str(run), "--label", "7", "--out",
                              str(tmp_path / "s.png")), "not a class-conditional run")
    assert not (tmp_path / "s.png").exists()
    assert_one_line_error(cli("gan.train", "--run-dir", str(tmp_path / "ema"), "--ema", "1.5"), "--ema")
    assert not (tmp_path / "ema").exists()


@pytest.mark.slow
def test_score_gives_the_classification_accuracy_score(conditional_run, tiny_classifier_cache, monkeypatch):
    from common.conditioning import cycled_labels
    from common.evaluation.classifier import get_classifier
    from gan.sample import load_generator, score

    monkeypatch.setenv("CLASSIFIER_CACHE", tiny_classifier_cache["CLASSIFIER_CACHE"])
    labels = cycled_labels(200, 10)
    images = sample_images(load_generator(conditional_run), 200, labels=labels)
    result = score(conditional_run, images, labels=labels)
    classifier = get_classifier("mnist", tiny_classifier_cache["DATA_DIR"], if_missing="error")
    predicted = classifier.probabilities(images).argmax(axis=1)
    assert result["classification_accuracy_score"] == pytest.approx(np.mean(predicted == labels))
    assert result["accuracy_per_class"] == pytest.approx([np.mean(predicted[labels == c] == c) for c in range(10)])


@pytest.mark.slow
def test_resume_restores_the_ema_generator_and_the_power_iteration(conditional_run, data_dir):
    """Last in this file: it extends the shared run by one epoch."""
    from common.checkpoints import Checkpointer
    from common.training import TrainingRun
    from gan.stabilizers import SpectralNorm
    from gan.trainer import build

    options = dict(run_dir=str(conditional_run), data_dir=data_dir, conditional=True, spectral_norm=True,
                   ema=0.9, r1=1.0, diffaugment="translation,cutout", loss="hinge")
    settings = Settings(**options, **{**TINY, "epochs": 2}, resume=True)
    with TrainingRun("gan", settings, 2) as run:
        model = build(settings, run, (28, 28, 1), n_classes=10)
        checkpointer = Checkpointer(conditional_run / "checkpoints", generator=model.generator,
                                    discriminator=model.discriminator, generator_ema=model.ema_generator)
        checkpointer.checkpoint.restore(checkpointer.latest).expect_partial()
        saved = keras.saving.load_model(conditional_run / "generator_ema.keras")
        for restored, on_disk in zip(model.ema_generator.weights, saved.weights):
            np.testing.assert_array_equal(restored.numpy(), on_disk.numpy())
        layers = [inner for layer in model.discriminator.layers
                  for inner in (layer.layers if isinstance(layer, keras.Model) else [layer])]
        # A fresh u ~ N(0, I) has norm ≈ √units; after training steps it is a unit vector.
        u = [layer.u.numpy() for layer in layers if isinstance(layer, SpectralNorm)]
        assert len(u) == 4 and all(abs(np.linalg.norm(v) - 1) < 1e-4 for v in u)
    train(settings)
    assert json.loads((conditional_run / "metrics.json").read_text())["epochs"] == 2
