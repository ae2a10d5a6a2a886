"""common.metrics on cases whose answers are known in closed form or by direct computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from common.metrics import (
    PARZEN_SIGMA_GRID,
    choose_parzen_sigma,
    class_histogram,
    classifier_score,
    fid,
    frechet_distance,
    gaussian_fit,
    parzen_log_likelihood,
    precision_recall,
)


def random_rotation(dims: int, rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(dims, dims)))
    return q


# --- Fréchet distance / FID -------------------------------------------------------------

def test_frechet_distance_of_diagonal_gaussians_has_the_closed_form():
    # For commuting covariances: d² = ‖Δμ‖² + Σ_i (√a_i − √b_i)².
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    expected = 1.0 + 0.0 + 4.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 0.5) ** 2
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_is_rotation_invariant_and_symmetric():
    rng = np.random.default_rng(0)
    q = random_rotation(5, rng)
    a, b = rng.uniform(0.5, 3.0, 5), rng.uniform(0.5, 3.0, 5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    sigma1, sigma2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu2, sigma2, mu1, sigma1) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_of_non_commuting_covariances_matches_the_2x2_formula():
    # For 2×2 SPD A, B: Tr √(AB) = √(Tr(AB) + 2√det(AB)) (Cayley–Hamilton).
    a = np.array([[2.0, 0.5], [0.5, 1.0]])
    b = np.array([[1.0, -0.3], [-0.3, 3.0]])
    trace_root = math.sqrt(np.trace(a @ b) + 2 * math.sqrt(np.linalg.det(a @ b)))
    expected = np.trace(a) + np.trace(b) - 2 * trace_root
    assert frechet_distance(np.zeros(2), a, np.zeros(2), b) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_survives_singular_covariances():
    # A dead feature (always 0) makes both covariances singular; the eps offset handles it.
    sigma = np.diag([1.0, 2.0, 0.0])
    d = frechet_distance(np.zeros(3), sigma, np.zeros(3), np.diag([4.0, 2.0, 0.0]))
    assert d == pytest.approx(1.0, abs=1e-4)
    assert frechet_distance(np.zeros(3), sigma, np.zeros(3), sigma) == pytest.approx(0.0, abs=1e-4)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_fid_of_a_set_with_itself_is_zero_and_grows_by_the_squared_mean_shift():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(2000, 8)) @ rng.normal(size=(8, 8))
    assert fid(features, features) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([0.5, -1.0, 0, 0, 2.0, 0, 0, 0])
    # A shift leaves the covariance unchanged, so FID = ‖shift‖² = 5.25 exactly.
    assert fid(features, features + shift) == pytest.approx(5.25, rel=1e-6)
    assert fid(features, features + 2 * shift) == pytest.approx(4 * 5.25, rel=1e-6)


def test_fid_of_two_samples_of_one_gaussian_is_small_and_of_different_ones_large():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(5000, 4)), rng.normal(size=(5000, 4))
    assert fid(a, b) < 0.02
    assert fid(a, 3 * b) == pytest.approx(4 * (3 - 1) ** 2, rel=0.05)  # Σ(√9 − √1)² over 4 dims


def test_gaussian_fit_matches_numpy_and_needs_two_points():
    x = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]])
    mu, sigma = gaussian_fit(x)
    np.testing.assert_allclose(mu, [2.0, 4.0])
    np.testing.assert_allclose(sigma, [[4.0, 7.0], [7.0, 13.0]])
    with pytest.raises(ValueError):
        gaussian_fit(x[:1])


# --- classifier score and class histogram -----------------------------------------------

def test_classifier_score_of_one_class_samples_is_one():
    assert classifier_score(np.tile(np.eye(10)[3], (50, 1))) == pytest.approx(1.0)
    assert classifier_score(np.full((50, 10), 0.1)) == pytest.approx(1.0)


def test_classifier_score_of_confident_balanced_samples_is_the_number_of_classes():
    assert classifier_score(np.tile(np.eye(10), (7, 1))) == pytest.approx(10.0)


def test_classifier_score_of_an_unbalanced_case_by_hand():
    # Three samples of class 0, one of class 1: p(y) = (3/4, 1/4);
    # KL = log(4/3) for the three, log 4 for the one → exp(mean) = (4/3)^(3/4) · 4^(1/4).
    probabilities = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert classifier_score(probabilities) == pytest.approx((4 / 3) ** 0.75 * 4 ** 0.25)


def test_class_histogram_counts_kl_and_coverage():
    # 1000 samples over 10 classes: covered means at least 10 (10 % of the uniform 100).
    labels = np.repeat(np.arange(10), [300, 200, 200, 100, 100, 50, 30, 10, 9, 1])
    histogram = class_histogram(labels, 10)
    np.testing.assert_array_equal(histogram.counts, [300, 200, 200, 100, 100, 50, 30, 10, 9, 1])
    assert histogram.classes_covered == 8
    fractions = histogram.counts / 1000
    assert histogram.kl_to_uniform == pytest.approx(np.sum(fractions * np.log(fractions * 10)))


def test_class_histogram_of_probabilities_uses_argmax_and_extremes():
    uniform = class_histogram(np.tile(np.eye(10), (3, 1)) * 0.9 + 0.01, 10)
    assert uniform.classes_covered == 10 and uniform.kl_to_uniform == pytest.approx(0.0)
    collapsed = class_histogram(np.zeros(40, dtype=int), 10)
    assert collapsed.classes_covered == 1 and collapsed.kl_to_uniform == pytest.approx(math.log(10))
    with pytest.raises(ValueError):
        class_histogram(np.array([0, 10]), 10)


# --- precision and recall -------------------------------------------------------------

def test_precision_recall_of_identical_sets_is_one():
    features = np.random.default_rng(3).normal(size=(300, 16))
    assert precision_recall(features, features, k=3, batch_size=64) == (1.0, 1.0)


def test_precision_recall_by_hand_in_one_dimension():
    # Real 0..4 with k=1: every real ball has radius 1, so fake 0.5 is inside, 10 is not.
    # Fake {0.5, 10} with k=1: both radii 9.5; every real point lies within 9.5 of 0.5.
    real = np.arange(5.0)[:, None]
    fake = np.array([[0.5], [10.0]])
    assert precision_recall(real, fake, k=1) == (0.5, 1.0)
    # Fake {0.5, 1.5, 2.5, 20} with k=1: radii 1, 1, 1, 17.5 → real within: 0..3 by the
    # small balls (0 is 0.5 from 0.5) and 4 by the ball of radius 17.5 around 20 (16 away).
    fake = np.array([[0.5], [1.5], [2.5], [20.0]])
    assert precision_recall(real, fake, k=1) == (0.75, 1.0)


def test_precision_recall_of_disjoint_sets_is_zero_and_independent_of_batch_size():
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(200, 5)), rng.normal(size=(150, 5)) + 100.0
    assert precision_recall(real, fake) == (0.0, 0.0)
    mixed = np.concatenate([real[:100] + 0.01, fake[:50]])
    assert precision_recall(real, mixed, batch_size=7) == precision_recall(real, mixed, batch_size=1000)


def test_precision_recall_needs_more_than_k_points():
    with pytest.raises(ValueError):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)), k=3)


# --- Parzen window --------------------------------------------------------------------

def direct_parzen(samples: np.ndarray, test: np.ndarray, sigma: float) -> np.ndarray:
    """log (1/N Σ_i Π_d N(x_d; s_id, σ²)) by explicit loops, for small D."""
    out = []
    for x in test:
        density = 0.0
        for s in samples:
            density += np.prod(np.exp(-(x - s) ** 2 / (2 * sigma ** 2)) / math.sqrt(2 * math.pi * sigma ** 2))
        out.append(math.log(density / len(samples)))
    return np.array(out)


def test_parzen_log_likelihood_matches_a_direct_computation():
    rng = np.random.default_rng(5)
    samples, test = rng.uniform(size=(40, 2, 2)), rng.uniform(size=(25, 2, 2))  # images, D = 4
    direct = direct_parzen(samples.reshape(40, -1), test.reshape(25, -1), 0.3)
    mean, stderr = parzen_log_likelihood(samples, test, sigma=0.3, batch_size=7)
    assert mean == pytest.approx(direct.mean(), rel=1e-10)
    assert stderr == pytest.approx(direct.std(ddof=1) / 5.0, rel=1e-10)


def test_parzen_log_likelihood_is_stable_in_784_dimensions():
    # Far from every sample the densities underflow to 0 in float64; logsumexp does not.
    rng = np.random.default_rng(6)
    samples, test = rng.uniform(size=(20, 28, 28)), rng.uniform(size=(5, 28, 28))
    mean, stderr = parzen_log_likelihood(samples, test, sigma=0.05)
    assert np.isfinite(mean) and np.isfinite(stderr) and mean < -1e4


def test_choose_parzen_sigma_picks_the_grid_value_with_the_best_validation_likelihood():
    rng = np.random.default_rng(7)
    samples, validation = rng.uniform(size=(30, 3)), rng.uniform(size=(20, 3))
    scores = [direct_parzen(samples, validation, s).mean() for s in PARZEN_SIGMA_GRID]
    assert choose_parzen_sigma(samples, validation) == PARZEN_SIGMA_GRID[int(np.argmax(scores))]
    # Validation points on top of the samples want the narrowest window in the grid.
    assert choose_parzen_sigma(samples, samples + 1e-3, grid=[0.01, 0.1, 1.0]) == 0.01
    assert PARZEN_SIGMA_GRID[0] == pytest.approx(0.1) and PARZEN_SIGMA_GRID[-1] == pytest.approx(1.0)


def test_parzen_rejects_bad_sigma():
    with pytest.raises(ValueError):
        parzen_log_likelihood(np.zeros((3, 4)), np.zeros((2, 4)), sigma=0.0)
