"""Sample-quality metrics for generative models: pure NumPy/SciPy functions on arrays.

Features and class probabilities come from the project's own MNIST / Fashion-MNIST
classifier (`common.evaluation.classifier`), not from Inception-v3, so the FID and classifier-score
numbers here are comparable with each other but NOT with published Inception FID / IS.

- `frechet_distance`, `fid`: Heusel et al. 2017, "GANs Trained by a Two Time-Scale
  Update Rule Converge to a Local Nash Equilibrium".
- `classifier_score`: the Inception Score of Salimans et al. 2016, "Improved Techniques
  for Training GANs", with a dataset-specific classifier.
- `class_histogram`: how the samples spread over the classes (mode collapse).
- `classification_accuracy_score`, `per_class_accuracy`: for class-conditional samples, the
  share the classifier assigns to the class they were asked for.
- `precision_recall`: Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for
  Assessing Generative Models".
- `density_coverage`: Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
  Generative Models".
- `kid`, `mmd2_unbiased`, `polynomial_kernel`: Bińkowski et al. 2018, "Demystifying MMD
  GANs" (the Kernel Inception Distance, here on the project's classifier features).
- `fid_by_sample_count`, `fid_infinity`: the sample-size bias of FID and its extrapolation
  to infinitely many samples, Chong & Forsyth 2020, "Effectively Unbiased FID and Inception
  Score and Where to Find Them".
- `parzen_log_likelihood`, `choose_parzen_sigma`: the Parzen-window estimate of Goodfellow
  et al. 2014, "Generative Adversarial Nets" (after Breuleux et al. 2011).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.special

# The grid searched for the Parzen width in the GAN paper's code (goodfeli/adversarial,
# parzen_ll.py: numpy.logspace(-1, 0, 10)).
PARZEN_SIGMA_GRID = tuple(float(s) for s in np.logspace(-1.0, 0.0, 10))
# A class is "covered" by samples when it holds at least this part of its uniform share.
COVERED_SHARE = 0.1


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet (2-Wasserstein) distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2).

        d² = ‖mu1 − mu2‖² + Tr(sigma1 + sigma2 − 2 (sigma1 sigma2)^½)

    (Dowson & Landau 1982; used as FID by Heusel et al. 2017). The matrix square root is
    `scipy.linalg.sqrtm`; when the product is singular (e.g. dead feature units), `eps`
    is added to both diagonals and the root taken again, as in the reference
    implementations (TTUR, pytorch-fid). Round-off can leave a tiny imaginary part,
    which is dropped; a large one raises `ValueError`.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"shapes do not match: mu {mu1.shape}, {mu2.shape}; "
                         f"sigma {sigma1.shape}, {sigma2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if caught or not np.isfinite(covmean).all():
        offset = np.eye(len(mu1)) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imaginary = np.max(np.abs(np.diagonal(covmean).imag))
        if imaginary > 1e-3 * max(1.0, np.max(np.abs(np.diagonal(covmean).real))):
            raise ValueError(f"matrix square root has a large imaginary part ({imaginary:.3g})")
        covmean = covmean.real
    distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(max(distance, 0.0))  # round-off can make the distance of equal fits −1e-12


def gaussian_fit(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of (N, D) features, in float64."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"expected features of shape (N >= 2, D), got {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussian fits of two (N, D) feature sets (Heusel et al. 2017).

    With this project's classifier features, the number is not comparable to Inception FID.
    It is biased upwards for small N, so compare only numbers computed with the same N.
    """
    return frechet_distance(*gaussian_fit(features_a), *gaussian_fit(features_b))


def fid_by_sample_count(fake_features: np.ndarray, real_features: np.ndarray,
                        counts: Sequence[int]) -> dict[int, float]:
    """{N: FID of the first N fake features against all real features} for each N in `counts`.

    FID is biased upwards by roughly a constant over N (Chong & Forsyth 2020, eq. 3:
    E[FID_N] ≈ FID_∞ + k/N), so the same model scores worse with fewer samples; listing
    FID at several N shows how large that bias is at the N used. Counts above the
    number of fake features are refused.
    """
    fake = np.asarray(fake_features)
    if any(count < 2 or count > len(fake) for count in counts):
        raise ValueError(f"sample counts must lie in 2..{len(fake)}, got {list(counts)}")
    return {int(count): fid(fake[:count], real_features) for count in counts}


def fid_infinity(counts: Sequence[int], fids: Sequence[float]) -> tuple[float, float]:
    """FID_∞ and the slope k of the least-squares line FID_N = FID_∞ + k · (1/N).

    Chong & Forsyth (2020) fit FID against 1/N over several sample counts N and read the
    unbiased FID_∞ off the intercept at 1/N = 0. With x_i = 1/N_i and y_i = FID_{N_i}:

        k = Σ (x_i − x̄)(y_i − ȳ) / Σ (x_i − x̄)²,   FID_∞ = ȳ − k x̄

    Needs at least two different counts.
    """
    x = 1.0 / np.asarray(counts, np.float64)
    y = np.asarray(fids, np.float64)
    if x.shape != y.shape or len(np.unique(x)) < 2:
        raise ValueError(f"need FIDs at two or more different counts, got {list(counts)}")
    slope = float(np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2))
    return float(y.mean() - slope * x.mean()), slope


def polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """k(x, y) = (xᵀy / d + 1)³ for every row x of `a` and y of `b`: the KID kernel (d = feature size)."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def mmd2_unbiased(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased estimate of MMD² between the sets `a` and `b` (m points each) with `polynomial_kernel`.

        MMD²_u = 1/(m(m−1)) Σ_{i≠j} k(a_i, a_j) + 1/(m(m−1)) Σ_{i≠j} k(b_i, b_j)
                 − 2/m² Σ_{i,j} k(a_i, b_j)

    (Gretton et al. 2012, eq. 3, as used by Bińkowski et al. 2018). It can be negative.
    """
    m = len(a)
    if len(b) != m or m < 2:
        raise ValueError(f"need two sets of the same size m >= 2, got {len(a)} and {len(b)}")
    k_aa, k_bb = polynomial_kernel(a, a), polynomial_kernel(b, b)
    within = (k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
    return float(within - 2.0 * polynomial_kernel(a, b).sum() / m ** 2)


def kid(features_a: np.ndarray, features_b: np.ndarray, subset_size: int = 1000,
        subsets: int = 100, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Bińkowski et al. 2018), on (N, D) features: (mean, std) over subsets.

        KID = mean over s of MMD²_u(A_s, B_s),   k(x, y) = (xᵀy / d + 1)³

    Each of the `subsets` pairs (A_s, B_s) holds `subset_size` points of each set drawn
    without replacement: with rng = np.random.default_rng(seed), subset s takes
    rng.choice(len(a), m, replace=False) of `features_a`, then the same of `features_b`.
    The std is NumPy's (ddof = 0) over the subset estimates, as in the paper's code.
    Unlike FID, the estimate is unbiased, so it does not depend on the sample count
    (only its spread does). With the project's classifier features it is not comparable
    with Inception KID.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected (N, D) features of equal D, got {a.shape} and {b.shape}")
    if subset_size < 2 or subsets < 1:
        raise ValueError(f"need subset_size >= 2 and subsets >= 1, got {subset_size} and {subsets}")
    if min(len(a), len(b)) < subset_size:
        raise ValueError(f"KID needs at least {subset_size} points in each set (the subset size), "
                         f"got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(subsets):
        rows_a = rng.choice(len(a), subset_size, replace=False)
        rows_b = rng.choice(len(b), subset_size, replace=False)
        estimates.append(mmd2_unbiased(a[rows_a], b[rows_b]))
    return float(np.mean(estimates)), float(np.std(estimates))


def classifier_score(probabilities: np.ndarray) -> float:
    """exp E_x KL(p(y|x) ‖ p(y)), with p(y) the mean of p(y|x) over the samples.

    The Inception Score of Salimans et al. (2016) with a dataset-specific classifier
    (probabilities of shape (N, classes)). It lies in [1, classes]: 1 when every sample
    gets the same class distribution (e.g. all one class), `classes` when each sample is
    classified confidently and the classes are used equally. It rewards confident,
    diverse samples but says nothing about diversity within a class.
    """
    p = np.asarray(probabilities, np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"expected probabilities of shape (N, classes), got {p.shape}")
    marginal = p.mean(axis=0, keepdims=True)
    kl = scipy.special.rel_entr(p, marginal).sum(axis=1)  # 0·log 0 = 0
    return float(np.exp(kl.mean()))


def per_class_accuracy(probabilities: np.ndarray, requested: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes,): for each class c, the share of the samples asked for as c that the
    classifier assigns to c (argmax of its probabilities (N, C)); NaN for a class never asked for."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    requested = np.asarray(requested).astype(np.int64)
    if requested.shape != predicted.shape:
        raise ValueError(f"expected one requested label per sample, got {requested.shape} for "
                         f"{predicted.shape[0]} samples")
    asked = np.bincount(requested, minlength=n_classes).astype(np.float64)
    hits = np.bincount(requested[predicted == requested], minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(asked > 0, hits / asked, np.nan)


def classification_accuracy_score(probabilities: np.ndarray, requested: np.ndarray) -> float:
    """The share of class-conditional samples that the classifier assigns (argmax) to the
    class they were generated for, in [0, 1]: how well a conditional model obeys its label.

    Not Ravuri & Vinyals' (2019) CAS, which trains a classifier on the samples; here the
    project's classifier, trained on real data, judges them (the conditional analogue of
    the classifier score).
    """
    predicted = np.asarray(probabilities).argmax(axis=1)
    requested = np.asarray(requested).astype(np.int64)
    if requested.shape != predicted.shape or len(requested) == 0:
        raise ValueError(f"expected one requested label per sample, got {requested.shape} for "
                         f"{predicted.shape[0]} samples")
    return float(np.mean(predicted == requested))


@dataclass(frozen=True)
class ClassHistogram:
    """How samples spread over the classes.

    `counts`/`fractions` per class; `kl_to_uniform` = Σ_c f_c log(f_c · C) in nats (0 for a
    perfectly even spread, log C when all samples are one class); `classes_covered` = number
    of classes holding at least `COVERED_SHARE` (10 %) of the uniform share 1/C.
    """

    counts: np.ndarray
    fractions: np.ndarray
    kl_to_uniform: float
    classes_covered: int


def class_histogram(probabilities_or_labels: np.ndarray, n_classes: int) -> ClassHistogram:
    """Histogram of predicted classes: probabilities (N, C) are reduced by argmax; labels (N,) used as is.

    A class counts as covered when it holds at least 10 % of its uniform share, i.e. at
    least N / (10 C) samples (with C = 10: 1 % of the samples).
    """
    values = np.asarray(probabilities_or_labels)
    labels = values.argmax(axis=1) if values.ndim == 2 else values.astype(np.int64)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"expected (N, classes) probabilities or (N,) labels, got {values.shape}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    counts = np.bincount(labels, minlength=n_classes)
    fractions = counts / counts.sum()
    kl = float(scipy.special.rel_entr(fractions, np.full(n_classes, 1.0 / n_classes)).sum())
    covered = int(np.sum(fractions >= COVERED_SHARE / n_classes))
    return ClassHistogram(counts, fractions, kl, covered)


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) squared Euclidean distances, float64, clipped at 0 against round-off."""
    d = (a * a).sum(axis=1)[:, None] - 2.0 * (a @ b.T) + (b * b).sum(axis=1)[None, :]
    return np.maximum(d, 0.0)


def knn_radii(features: np.ndarray, k: int, batch_size: int = 1000) -> np.ndarray:
    """Squared distance from each point to its k-th nearest neighbour in the same set (self excluded).

    The balls of `precision_recall` and `density_coverage`; compute them once for a
    reference set that many sample sets are scored against, and pass them as `real_radii`.
    """
    features = np.asarray(features, np.float64)
    radii = np.empty(len(features))
    for start in range(0, len(features), batch_size):
        d = _squared_distances(features[start:start + batch_size], features)
        # Index k of the sorted row: index 0 is the point itself (distance 0).
        radii[start:start + batch_size] = np.partition(d, k, axis=1)[:, k]
    return radii


def _fraction_inside(points: np.ndarray, centres: np.ndarray, radii: np.ndarray,
                     batch_size: int) -> float:
    """Fraction of `points` inside at least one ball (centre, radius²)."""
    inside = 0
    for start in range(0, len(points), batch_size):
        d = _squared_distances(points[start:start + batch_size], centres)
        inside += int(np.any(d <= radii[None, :], axis=1).sum())
    return inside / len(points)


def precision_recall(real_features: np.ndarray, fake_features: np.ndarray, k: int = 3,
                     batch_size: int = 1000, real_radii: np.ndarray | None = None) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019), on (N, D) features.

    Each set's manifold is the union of balls around its points, each ball reaching the
    point's k-th nearest neighbour within the set. Precision = fraction of fake points
    inside the real manifold (are samples realistic?); recall = fraction of real points
    inside the fake manifold (is the data's variety covered?). Distances are computed
    `batch_size` rows at a time, so 10k × 10k needs ~80 MB rather than 800 MB.
    `real_radii`, when given, is `knn_radii(real_features, k)` computed beforehand.
    """
    real = np.asarray(real_features, np.float64)
    fake = np.asarray(fake_features, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"expected (N, D) features of equal D, got {real.shape} and {fake.shape}")
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"need more than k={k} points in each set, got {len(real)} and {len(fake)}")
    real_radii = knn_radii(real, k, batch_size) if real_radii is None else real_radii
    fake_radii = knn_radii(fake, k, batch_size)
    precision = _fraction_inside(fake, real, real_radii, batch_size)
    recall = _fraction_inside(real, fake, fake_radii, batch_size)
    return precision, recall


def density_coverage(real_features: np.ndarray, fake_features: np.ndarray, k: int = 5,
                     batch_size: int = 1000, real_radii: np.ndarray | None = None) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), on (N, D) real and (M, D) fake features.

    With B(X_i, r_i) the ball around real point X_i reaching its k-th nearest real neighbour
    (self excluded), and 1[·] counting a fake point strictly inside (as the paper's code):

        density  = 1/(kM) Σ_j Σ_i 1[Y_j ∈ B(X_i, r_i)]
        coverage = 1/N Σ_i 1[∃ j: Y_j ∈ B(X_i, r_i)]

    Only the real set's balls are used, so unlike k-NN precision/recall an outlier among
    the fake points cannot inflate the real manifold's reach, and a cluster of poor samples
    inside one large real ball counts once per ball rather than as fully realistic.
    Density is 1 on average for samples from the real distribution and can exceed 1;
    coverage lies in [0, 1]. The paper uses k = 5. `real_radii`, when given, is
    `knn_radii(real_features, k)` computed beforehand.
    """
    real = np.asarray(real_features, np.float64)
    fake = np.asarray(fake_features, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"expected (N, D) features of equal D, got {real.shape} and {fake.shape}")
    if len(real) <= k or len(fake) == 0:
        raise ValueError(f"need more than k={k} real points and one fake point, "
                         f"got {len(real)} and {len(fake)}")
    radii = knn_radii(real, k, batch_size) if real_radii is None else real_radii
    inside_count, covered = 0, 0
    for start in range(0, len(real), batch_size):
        # Real rows, as in knn_radii: a fake point equal to a real point's k-th neighbour
        # then gets exactly that radius (a tie, not inside), whatever the round-off.
        inside = _squared_distances(real[start:start + batch_size], fake) < radii[start:start + batch_size, None]
        inside_count += int(inside.sum())
        covered += int(inside.any(axis=1).sum())
    return inside_count / (k * len(fake)), covered / len(real)


def parzen_log_likelihood(samples: np.ndarray, test: np.ndarray, sigma: float,
                          batch_size: int = 100) -> tuple[float, float]:
    """Mean log-likelihood (nats) of `test` under a Gaussian Parzen window on `samples`, ± its standard error.

        log p(x) = logsumexp_i(−‖x − s_i‖² / 2σ²) − log N − (D/2) log(2πσ²)

    on flattened pixels in [0, 1], as in Goodfellow et al. 2014 (10,000 samples, σ from
    `choose_parzen_sigma` on a validation set). Returns (mean, std / √n_test).

    Caveat (Theis, van den Oord & Bethge 2016, "A note on the evaluation of generative
    models"): in 784 dimensions this is a poor estimate of the true log-likelihood. It can
    rank models very differently from their actual likelihoods, and even the training data
    themselves can score worse than a blurry model. Report it only next to other metrics.
    """
    per_example = _parzen_per_example(samples, test, [sigma], batch_size)[0]
    if len(per_example) < 2:
        raise ValueError("need at least 2 test points for a standard error")
    return float(per_example.mean()), float(per_example.std(ddof=1) / math.sqrt(len(per_example)))


def _parzen_per_example(samples: np.ndarray, test: np.ndarray, sigmas: Sequence[float],
                        batch_size: int) -> np.ndarray:
    """(len(sigmas), len(test)) log-densities; the distances are computed once for all σ."""
    sigmas = np.asarray(sigmas, np.float64)
    if not np.all(sigmas > 0):
        raise ValueError(f"sigma must be positive, got {sigmas}")
    centres = np.asarray(samples, np.float64).reshape(len(samples), -1)
    points = np.asarray(test, np.float64).reshape(len(test), -1)
    if centres.shape[1] != points.shape[1] or len(centres) == 0 or len(points) == 0:
        raise ValueError(f"samples {np.shape(samples)} and test {np.shape(test)} do not match")
    dims = centres.shape[1]
    normalisers = math.log(len(centres)) + 0.5 * dims * np.log(2.0 * math.pi * sigmas ** 2)
    out = np.empty((len(sigmas), len(points)))
    for start in range(0, len(points), batch_size):
        d = _squared_distances(points[start:start + batch_size], centres)
        for i, sigma in enumerate(sigmas):
            out[i, start:start + batch_size] = scipy.special.logsumexp(-d / (2.0 * sigma ** 2), axis=1)
    return out - normalisers[:, None]


def choose_parzen_sigma(samples: np.ndarray, validation: np.ndarray,
                        grid: Sequence[float] = PARZEN_SIGMA_GRID, batch_size: int = 100) -> float:
    """The σ in `grid` that maximises the Parzen log-likelihood of `validation` (GAN paper protocol).

    Goodfellow et al. (2014) chose σ by cross-validation on a validation set over a log
    grid (their code: 10 values from 0.1 to 1). The chosen σ is then used once on the
    test set. See `parzen_log_likelihood` for the Theis et al. (2016) caveat.
    """
    if len(grid) == 0:
        raise ValueError("the sigma grid is empty")
    scores = _parzen_per_example(samples, validation, grid, batch_size).mean(axis=1)
    return float(grid[int(np.argmax(scores))])
