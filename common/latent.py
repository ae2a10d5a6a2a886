"""Paths through a Gaussian latent space, shared by the samplers of the VAE and the GAN."""

from __future__ import annotations

import numpy as np


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation (Shoemake 1985; White 2016, "Sampling Generative Networks").

    Points (len(t), D) on the great circle from a (t = 0) to b (t = 1): the path keeps the
    norms a Gaussian vector has, where the straight line cuts through the low-density
    middle of the ball:  slerp = (sin((1 − t)ω) a + sin(tω) b) / sin ω,  cos ω = a·b / (‖a‖‖b‖).
    """
    t = np.asarray(t, dtype=np.float64)
    cosine = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12)
    omega = np.arccos(np.clip(cosine, -1.0, 1.0))
    if omega < 1e-6:  # (nearly) parallel: the straight line is the same path
        return (1.0 - t)[:, None] * a + t[:, None] * b
    return (np.sin((1.0 - t) * omega)[:, None] * a + np.sin(t * omega)[:, None] * b) / np.sin(omega)
