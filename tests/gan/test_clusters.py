"""gan.train --clusters: k-means clusters of the pixels as labels (gan/clusters.py): the
clusters of separated groups, the largest-remainder label counts by hand, fake labels drawn
from the cluster sizes, the saved clusters' round trip and a damaged file; end to end
(slow): a tiny run scored without a classification accuracy score, kept clusters on
--resume, gan.sample by cluster, and the settings refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from common.config import parse_settings
from common.errors import UserError
from gan.clusters import (
    CLUSTERS_FILE,
    fit_clusters,
    load_clusters,
    load_frequencies,
    proportional_labels,
    save_clusters,
)
from gan.conditional import EMBEDDING_SIZE, conditional_generator, projection_discriminator
from gan.model import GAN, build_discriminator, build_generator
from gan.sample import main as sample_main
from gan.train import Settings, train


def three_groups() -> tuple[np.ndarray, np.ndarray]:
    """100 8×8 images in three far-apart groups of 50, 30 and 20 (dark, top half lit,
    bottom half lit, with a little noise), and each image's group."""
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1, 2], [50, 30, 20])
    images = rng.uniform(0, 0.05, (100, 8, 8, 1))
    images[groups == 1, :4] += 0.9
    images[groups == 2, 4:] += 0.9
    return images.astype(np.float32), groups


def test_fit_clusters_finds_separated_groups_and_their_sizes():
    images, groups = three_groups()
    labels, frequencies = fit_clusters(images, 3, seed=0)
    assert labels.dtype == np.int32 and labels.shape == (100,)
    # One cluster per group, whatever their numbering: the pairs (group, cluster) are 3.
    assert len(set(zip(groups, labels))) == 3 and len(set(labels)) == 3
    np.testing.assert_allclose(frequencies, np.bincount(labels) / 100)
    np.testing.assert_allclose(sorted(frequencies), [0.2, 0.3, 0.5])


@pytest.mark.parametrize("k", [1, 101])
def test_fit_clusters_refuses_too_few_or_too_many(k):
    with pytest.raises(UserError, match="--clusters: need 2 to 100"):
        fit_clusters(three_groups()[0], k, seed=0)


@pytest.mark.parametrize("n, frequencies, counts", [
    (10, [0.5, 0.3, 0.2], [5, 3, 2]),
    (7, [0.5, 0.25, 0.25], [3, 2, 2]),  # 3.5, 1.75, 1.75: the two largest remainders round up
    (1, [0.2, 0.3, 0.5], [0, 0, 1]),
    (4, [0.0, 1.0], [0, 4]),
])
def test_proportional_labels_are_blocks_of_largest_remainder_counts(n, frequencies, counts):
    labels = proportional_labels(n, np.array(frequencies))
    assert labels.dtype == np.int32 and len(labels) == n
    np.testing.assert_array_equal(labels, np.repeat(np.arange(len(counts)), counts))


def test_fake_labels_follow_the_cluster_frequencies():
    frequencies = np.array([0.1, 0.6, 0.3])
    generator = conditional_generator(build_generator("dcgan", 4 + EMBEDDING_SIZE), 3)
    discriminator = projection_discriminator(build_discriminator("dcgan"), 3)
    gan = GAN(generator, discriminator, n_classes=3, label_frequencies=frequencies)
    labels = gan._fake_labels(40_000).numpy()
    assert labels.min() >= 0 and labels.max() <= 2
    np.testing.assert_allclose(np.bincount(labels, minlength=3) / 40_000, frequencies, atol=0.01)
    uniform = GAN(generator, discriminator, n_classes=3)._fake_labels(40_000).numpy()
    np.testing.assert_allclose(np.bincount(uniform, minlength=3) / 40_000, 1 / 3, atol=0.01)


def test_clusters_file_round_trip_and_a_damaged_file(tmp_path):
    labels, frequencies = np.array([2, 0, 1, 1], np.int32), np.array([0.25, 0.5, 0.25])
    save_clusters(tmp_path, labels, frequencies)
    loaded_labels, loaded_frequencies = load_clusters(tmp_path)
    np.testing.assert_array_equal(loaded_labels, labels)
    np.testing.assert_array_equal(loaded_frequencies, frequencies)
    np.testing.assert_array_equal(load_frequencies(tmp_path), frequencies)
    assert load_frequencies(tmp_path / "elsewhere") is None  # a run without clusters
    np.savez(tmp_path / CLUSTERS_FILE, frequencies=frequencies)  # the sampler reads no labels
    np.testing.assert_array_equal(load_frequencies(tmp_path), frequencies)
    with pytest.raises(UserError, match="cannot read the clusters"):
        load_clusters(tmp_path)
    (tmp_path / CLUSTERS_FILE).write_bytes(b"not an npz")
    for load in (load_clusters, load_frequencies):
        with pytest.raises(UserError, match="cannot read the clusters"):
            load(tmp_path)


@pytest.mark.parametrize("argv, fragment", [
    (["--clusters", "1"], "--clusters: give at least 2 clusters"),
    (["--clusters", "5", "--conditional"], "not with --conditional"),
    (["--clusters", "5", "--noise-components", "4"], "--noise-components"),
    (["--clusters", "-1"], "--clusters: must be at least 0"),
])
def test_bad_cluster_settings_are_user_errors(argv, fragment):
    with pytest.raises(UserError, match=fragment):
        parse_settings(Settings, argv, "")


@pytest.mark.slow
def test_cluster_run_end_to_end(tmp_path, data_dir, tiny_classifier_cache, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_CACHE", tiny_classifier_cache["CLASSIFIER_CACHE"])
    run = tmp_path / "run"
    options = dict(run_dir=str(run), data_dir=data_dir, clusters=4, ema=0.9, steps_per_epoch=2,
                   batch_size=16, quiet=True, eval_samples=64)
    train(Settings(epochs=1, **options))
    labels, frequencies = load_clusters(run)
    assert labels.shape == (50_000,) and frequencies.shape == (4,) and frequencies.sum() == pytest.approx(1)
    np.testing.assert_allclose(frequencies, np.bincount(labels, minlength=4) / 50_000)
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert np.isfinite(history["sample_fid"][0]) and np.isfinite(history["sample_ema_fid"][0])
    assert not any("classification_accuracy" in key for key in history)  # clusters are not classes
    saved = (run / CLUSTERS_FILE).read_bytes()
    train(Settings(epochs=2, resume=True, **options))
    assert (run / CLUSTERS_FILE).read_bytes() == saved  # read back, not fitted again
    sample_main(["--run", str(run), "--n", "8", "--out", str(tmp_path / "all.npz")])
    sample_main(["--run", str(run), "--n", "3", "--label", "3", "--out", str(tmp_path / "three.npz")])
    assert np.load(tmp_path / "all.npz")["images"].shape == (8, 28, 28)
    assert np.load(tmp_path / "three.npz")["images"].shape == (3, 28, 28)
    with pytest.raises(UserError, match="--label: must be below 4"):
        sample_main(["--run", str(run), "--label", "4", "--out", str(tmp_path / "x.png")])
