"""Conditioning without labels: k-means clusters of the training images stand in for classes.

A conditional GAN learns each class's images separately, so it does not have to draw the
in-between images an unconditional generator makes where the data falls apart into
pieces (on MNIST, digits that are half one digit and half another). Clusters give that
split without labels (Sage et al., "Logo Synthesis and Manipulation with Clustered
Generative Adversarial Networks", CVPR 2018; Liu et al., "Diverse Image Generation via
Self-Conditioned GANs", CVPR 2020, who cluster D's features and re-cluster while
training). Here the clusters are fitted once, on the pixels:

    c(x) = argmin_j ‖x − μ_j‖²,   μ_1…μ_K from k-means on the training images,
    π_j  = |{x : c(x) = j}| / N,

and the GAN is trained as a class-conditional one on the labels c(x) (`gan.conditional`),
with its fake labels drawn from π instead of uniformly, so a sample y ~ π, z ~ N(0, I),
G(z, y) follows the data's own cluster sizes. Nothing but the images is used: the model
stays an unconditional generator of p(x) = Σ_j π_j p(x | j).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import UserError
from common.files import atomic_write

CLUSTERS_FILE = "clusters.npz"  # in the run folder: `labels` (N,), `frequencies` (K,)


def fit_clusters(images: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels (N,) int32, frequencies π (k,) float64) of k-means on the flattened images.

    scikit-learn's mini-batch k-means (Sculley 2010), best of 3 k-means++ starts, seeded.
    """
    from sklearn.cluster import MiniBatchKMeans  # here: gan.sample, which reads clusters, need not load it

    if not 2 <= k <= len(images):
        raise UserError(f"--clusters: need 2 to {len(images)} (the training images), got {k}")
    flat = images.reshape(len(images), -1)
    kmeans = MiniBatchKMeans(k, random_state=seed, n_init=3, batch_size=4096).fit(flat)
    labels = kmeans.labels_.astype(np.int32)
    return labels, np.bincount(labels, minlength=k) / len(labels)


def save_clusters(run_dir: str | Path, labels: np.ndarray, frequencies: np.ndarray) -> None:
    with atomic_write(Path(run_dir) / CLUSTERS_FILE) as stream:
        np.savez(stream, labels=labels, frequencies=frequencies)


def load_frequencies(run_dir: str | Path) -> np.ndarray | None:
    """π of a run trained with --clusters, or None for any other run (the labels stay unread)."""
    path = Path(run_dir) / CLUSTERS_FILE
    return read_arrays(path, "frequencies")[0].astype(np.float64) if path.is_file() else None


def load_clusters(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    labels, frequencies = read_arrays(Path(run_dir) / CLUSTERS_FILE, "labels", "frequencies")
    return labels.astype(np.int32), frequencies.astype(np.float64)


def read_arrays(path: Path, *names: str) -> list[np.ndarray]:
    """The named arrays of the clusters file (an .npz reads only the arrays asked for)."""
    try:
        with np.load(path) as data:
            return [data[name] for name in names]
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"{path}: cannot read the clusters ({error})") from None


def proportional_labels(n: int, frequencies: np.ndarray) -> np.ndarray:
    """n labels in blocks 0, 0, …, 1, 1, …, with class j n·π_j times, rounded by largest
    remainder (Hamilton's method), so the counts sum to n and are as close to n·π as can be."""
    exact = n * np.asarray(frequencies, np.float64)
    counts = np.floor(exact).astype(int)
    short = n - counts.sum()
    counts[np.argsort(counts - exact, kind="stable")[:short]] += 1  # largest remainders first
    return np.repeat(np.arange(len(counts)), counts).astype(np.int32)
