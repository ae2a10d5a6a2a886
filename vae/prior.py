"""An ex-post prior for sampling a trained VAE: a Gaussian mixture on the aggregate posterior.

A VAE's decoder is trained on codes drawn from q(z|x) over the training set, whose mixture
(the aggregate posterior q(z) = E_x q(z|x)) can differ much from N(0, I): prior samples
then land in regions the decoder never saw and decode to blurry non-digits. Fitting a
density to the encoded training set after training and sampling from it instead is the
"ex-post density estimation" of Ghosh et al., "From Variational to Deterministic
Autoencoders", ICLR 2020 (§4, a 10-component GMM on the codes), and the second stage of Dai
& Wipf, "Diagnosing and Enhancing VAE Models", ICLR 2019, in its simplest form. Here the
mixture is fitted to the posterior means μ(x) (full covariances, EM by scikit-learn).
"""

from __future__ import annotations

import numpy as np
from sklearn.mixture import GaussianMixture

from common.errors import UserError


def check_components(components: int, images: int) -> None:
    """A mixture needs at least one training image per component (else a `UserError`)."""
    if components > images:
        raise UserError(f"--components: {components} components need at least as many training "
                        f"images, the run's dataset has {images}")


def fit_latent_mixture(codes: np.ndarray, components: int, seed: int = 0) -> GaussianMixture:
    """A `components`-component full-covariance Gaussian mixture fitted by EM (k-means
    start) to codes (N, latent_dim); more components than codes is a `UserError`."""
    check_components(components, len(codes))
    mixture = GaussianMixture(components, covariance_type="full", reg_covar=1e-6, max_iter=200,
                              random_state=seed)
    return mixture.fit(np.asarray(codes, np.float64))


def sample_latent_mixture(mixture: GaussianMixture, n: int, seed: int = 0) -> np.ndarray:
    """n codes (n, latent_dim) float32 from the mixture, reproducible from `seed`: a component
    by its weight, then a draw from its Gaussian."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, mixture.weights_)
    codes = [rng.multivariate_normal(mean, covariance, size=count)
             for mean, covariance, count in zip(mixture.means_, mixture.covariances_, counts)]
    return np.concatenate(codes)[rng.permutation(n)].astype(np.float32)
