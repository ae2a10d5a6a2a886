"""Keeping the content image's colours (Gatys, Bethge, Hertzmann & Shechtman 2016,
"Preserving Color in Neural Artistic Style Transfer", arXiv:1606.05897).

Two recipes, both on float RGB images in [0, 1]:
- luminance-only transfer: style-transfer the luminance channel alone (YIQ's Y, with the
  style's luminance matched to the content's mean and spread), then put the content's
  I and Q chrominance back;
- colour histogram matching: recolour the style image so its RGB mean and covariance
  equal the content's, then transfer as usual.
"""

from __future__ import annotations

import numpy as np

COLOR_METHODS = ("luminance", "histogram")
# NTSC RGB → YIQ.
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                       [0.595716, -0.274453, -0.321263],
                       [0.211456, -0.522591, 0.311135]], dtype=np.float64)
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


def rgb_to_yiq(image: np.ndarray) -> np.ndarray:
    return (np.asarray(image, np.float64) @ RGB_TO_YIQ.T).astype(np.float32)


def yiq_to_rgb(image: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(image, np.float64) @ YIQ_TO_RGB.T, 0.0, 1.0).astype(np.float32)


def luminance_image(image: np.ndarray) -> np.ndarray:
    """The Y channel repeated as a grey RGB image, which VGG19 sees as a photo."""
    luminance = rgb_to_yiq(image)[..., :1]
    return np.repeat(np.clip(luminance, 0.0, 1.0), 3, axis=-1)


def match_luminance(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Grey style image whose luminance has the content's mean and standard deviation."""
    style_y = rgb_to_yiq(style)[..., 0]
    content_y = rgb_to_yiq(content)[..., 0]
    matched = (style_y - style_y.mean()) * (content_y.std() / max(style_y.std(), 1e-6))
    matched = np.clip(matched + content_y.mean(), 0.0, 1.0)
    return np.repeat(matched[..., None], 3, axis=-1).astype(np.float32)


def with_content_chrominance(result: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The result's luminance with the content's I and Q channels (same height and width)."""
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = rgb_to_yiq(result)[..., 0]
    return yiq_to_rgb(yiq)


def match_color_histogram(style: np.ndarray, content: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Recolour `style` so its RGB mean and covariance are the content's.

    x' = Σ_C^½ · Σ_S^−½ · (x − μ_S) + μ_C with symmetric matrix square roots (the
    "image analogies" colour transform of the paper's section 2.1).
    """
    def mean_and_covariance(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pixels = np.asarray(image, np.float64).reshape(-1, 3)
        return pixels.mean(axis=0), np.cov(pixels, rowvar=False) + eps * np.eye(3)

    def matrix_power(matrix: np.ndarray, power: float) -> np.ndarray:
        values, vectors = np.linalg.eigh(matrix)
        return (vectors * np.maximum(values, eps) ** power) @ vectors.T

    style_mean, style_cov = mean_and_covariance(style)
    content_mean, content_cov = mean_and_covariance(content)
    transform = matrix_power(content_cov, 0.5) @ matrix_power(style_cov, -0.5)
    pixels = np.asarray(style, np.float64).reshape(-1, 3) - style_mean
    pixels = pixels @ transform.T + content_mean
    return np.clip(pixels.reshape(style.shape), 0.0, 1.0).astype(np.float32)
