"""common.evaluation.metrics on cases whose answers are known in closed form or by direct computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from common.evaluation.metrics import (
    PARZEN_SIGMA_GRID,
    choose_parzen_sigma,
    class_histogram,
    classifier_score,
    density_coverage,
    fid,
    fid_by_sample_count,
    fid_infinity,
    frechet_distance,
    gaussian_fit,
    kid,
    knn_radii,
    mmd2_unbiased,
    parzen_log_likelihood,
    polynomial_kernel,
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


def test_fid_by_sample_count_scores_the_first_n_samples():
    rng = np.random.default_rng(8)
    fake, real = rng.normal(size=(400, 3)), rng.normal(size=(500, 3))
    by_count = fid_by_sample_count(fake, real, [50, 400])
    assert by_count == {50: fid(fake[:50], real), 400: fid(fake, real)}
    assert by_count[50] > by_count[400]  # the small-sample bias, upwards
    with pytest.raises(ValueError):
        fid_by_sample_count(fake, real, [401])


def test_fid_infinity_is_the_intercept_of_the_line_in_one_over_n():
    # Exact data FID_N = 5 + 3000/N: the fit recovers both numbers.
    counts = [1000, 2000, 5000, 10000]
    intercept, slope = fid_infinity(counts, [5 + 3000 / n for n in counts])
    assert intercept == pytest.approx(5.0, rel=1e-12) and slope == pytest.approx(3000.0, rel=1e-12)
    # Two points: the line through them, by hand. x = 1/2000, 1/5000; y = 12, 9.
    # slope = (12 − 9) / (1/2000 − 1/5000) = 3 / 0.0003 = 10,000; intercept = 9 − 10,000/5000 = 7.
    assert fid_infinity([2000, 5000], [12.0, 9.0]) == pytest.approx((7.0, 10000.0))
    # Noisy data: the same answer as NumPy's least-squares polynomial fit.
    fids = [30.0, 24.5, 21.0, 20.2]
    slope, intercept = np.polyfit(1.0 / np.array(counts), fids, 1)
    assert fid_infinity(counts, fids) == pytest.approx((intercept, slope), rel=1e-9)
    with pytest.raises(ValueError):
        fid_infinity([1000, 1000], [1.0, 2.0])


# --- KID ------------------------------------------------------------------------------

def direct_mmd2(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased MMD² with k(x, y) = (x·y/d + 1)³ by explicit loops over the pairs."""
    m, d = len(a), a.shape[1]

    def k(x, y):
        return (float(np.dot(x, y)) / d + 1.0) ** 3

    within_a = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j)
    within_b = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j)
    across = sum(k(a[i], b[j]) for i in range(m) for j in range(m))
    return within_a / (m * (m - 1)) + within_b / (m * (m - 1)) - 2.0 * across / m ** 2


def test_mmd2_of_two_points_in_one_dimension_by_hand():
    # a = {0, 1}, b = {1, 2}, d = 1, k(x, y) = (xy + 1)³:
    # within a: k(0,1) twice → 2/2 = 1; within b: k(1,2) = 27 twice → 54/2 = 27;
    # across: k(0,1) + k(0,2) + k(1,1) + k(1,2) = 1 + 1 + 8 + 27 = 37 → 2·37/4 = 18.5.
    a, b = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    assert mmd2_unbiased(a, b) == pytest.approx(1 + 27 - 18.5)
    assert polynomial_kernel(a, b).tolist() == [[1.0, 1.0], [8.0, 27.0]]


def test_mmd2_matches_the_direct_double_sums():
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(12, 4)), rng.normal(size=(12, 4)) + 0.5
    assert mmd2_unbiased(a, b) == pytest.approx(direct_mmd2(a, b), rel=1e-10)
    with pytest.raises(ValueError):
        mmd2_unbiased(a, b[:5])


def test_kid_averages_the_documented_subsets():
    rng = np.random.default_rng(10)
    a, b = rng.normal(size=(30, 3)), rng.normal(size=(40, 3)) * 1.5
    mean, std = kid(a, b, subset_size=10, subsets=4, seed=7)
    draw = np.random.default_rng(7)
    estimates = []
    for _ in range(4):
        rows_a = draw.choice(30, 10, replace=False)
        rows_b = draw.choice(40, 10, replace=False)
        estimates.append(direct_mmd2(a[rows_a], b[rows_b]))
    assert mean == pytest.approx(np.mean(estimates), rel=1e-10)
    assert std == pytest.approx(np.std(estimates), rel=1e-10)


def test_kid_of_whole_sets_has_no_spread_and_is_unbiased_near_zero():
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=(8, 2)), rng.normal(size=(8, 2))
    mean, std = kid(a, b, subset_size=8, subsets=3)  # every subset is the whole set, reordered
    assert mean == pytest.approx(direct_mmd2(a, b), rel=1e-10) and std == pytest.approx(0.0, abs=1e-12)
    # Two samples of one distribution: KID of either sign, averaging near 0; a mean shift
    # of 0.5 in 5 dimensions gives ‖Δμ‖²-sized values instead (about 1 here).
    same = [kid(rng.normal(size=(200, 5)), rng.normal(size=(200, 5)), 100, 10, seed)[0] for seed in range(6)]
    assert min(same) < 0 < max(same) and abs(np.mean(same)) < 0.02
    shifted = kid(rng.normal(size=(200, 5)) + 0.5, rng.normal(size=(200, 5)), 100, 10)[0]
    assert shifted > 10 * max(same)


def test_kid_needs_subset_size_points_in_each_set():
    with pytest.raises(ValueError, match="at least 10 points"):
        kid(np.zeros((9, 2)), np.zeros((20, 2)), subset_size=10)


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


# --- density and coverage ------------------------------------------------------------

def direct_density_coverage(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Naeem et al.'s definitions by explicit loops: k-th neighbour radii of the real points."""
    radii = [np.sort([np.linalg.norm(x - y) for y in real])[k] for x in real]  # index 0: itself
    inside = np.array([[np.linalg.norm(y - x) < r for x, r in zip(real, radii)] for y in fake])
    return inside.sum() / (k * len(fake)), inside.any(axis=0).mean()


def test_density_coverage_by_hand_in_one_dimension():
    # Real 0..4. k=1: every radius is 1; fake 0.5 lies strictly inside the balls of 0 and 1,
    # fake 2.0 only inside that of 2 (1 and 3 are exactly 1 away), fake 10 in none:
    # density = 3 / (1·3) = 1, coverage = |{0, 1, 2}| / 5.
    real = np.arange(5.0)[:, None]
    fake = np.array([[0.5], [2.0], [10.0]])
    assert density_coverage(real, fake, k=1) == (1.0, 0.6)
    # k=2: radii 2, 1, 1, 1, 2; 0.5 is inside the balls of 0 (0.5 < 2) and 1 (0.5 < 1), 2.0
    # inside that of 2 only (0 and 4 are exactly 2 away): density = 3 / (2·3) = 0.5.
    assert density_coverage(real, fake, k=2) == (0.5, 0.6)


def test_density_coverage_matches_the_direct_loops_and_the_identical_set_case():
    rng = np.random.default_rng(12)
    real, fake = rng.normal(size=(60, 3)), rng.normal(size=(45, 3)) * 0.7
    density, coverage = density_coverage(real, fake, k=4, batch_size=7)
    expected = direct_density_coverage(real, fake, 4)
    assert density == pytest.approx(expected[0], rel=1e-12) and coverage == pytest.approx(expected[1])
    # The real set against itself: each point is strictly inside its own ball and those of
    # k − 1 others' (no ties in continuous data), so density = kN / (kN) = 1; coverage 1.
    assert density_coverage(real, real, k=5) == (1.0, 1.0)
    # Radii computed once beforehand (for a reference scored many times) give the same answer.
    assert density_coverage(real, fake, k=4, real_radii=knn_radii(real, 4)) == density_coverage(real, fake, k=4)
    assert precision_recall(real, fake, real_radii=knn_radii(real, 3)) == precision_recall(real, fake)
    assert density_coverage(real, real + 100.0) == (0.0, 0.0)
    with pytest.raises(ValueError):
        density_coverage(real[:5], fake, k=5)


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
