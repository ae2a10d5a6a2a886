"""pixelcnn.model and pixelcnn.losses: causality of every stack and mask, the likelihoods
against NumPy, and the fast sampler against the naive one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from pixelcnn.losses import bernoulli_nll, bits_per_dim, categorical_nll
from pixelcnn.model import build_pixelcnn, channel_groups, kernel_mask

STACKS = [("gated", (7, 7, 1), "bernoulli"), ("plain", (7, 7, 1), "bernoulli"),
          ("gated", (5, 5, 3), "categorical"), ("plain", (5, 5, 3), "categorical")]


def input_gradient(model, image: np.ndarray, i: int, j: int, c: int) -> np.ndarray:
    """|∂ Σ logits(i, j, c) / ∂ x|, (H, W, C): which input values output (i, j, c) reads."""
    x = tf.Variable(image[None])
    with tf.GradientTape() as tape:
        out = model(x)[0, i, j, c]
        total = tf.reduce_sum(out)
    return np.abs(tape.gradient(total, x).numpy()[0])


@pytest.mark.parametrize("arch,shape,likelihood", STACKS)
def test_every_output_reads_only_earlier_values(arch, shape, likelihood):
    height, width, channels = shape
    model = build_pixelcnn(shape, likelihood, arch, features=6 * channels, layers=3, kernel_size=3)
    image = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
    order = np.arange(height * width * channels).reshape(shape)  # raster order, channels inside
    for i, j, c in [(0, 0, 0), (2, 3, 0), (height - 1, width - 1, channels - 1), (1, 0, channels - 1)]:
        gradient = input_gradient(model, image, i, j, c)
        later = order >= order[i, j, c]  # itself and every later value, later channels of (i, j) too
        assert np.all(gradient[later] == 0.0), (i, j, c)
        if order[i, j, c] > 0:
            assert np.any(gradient[~later] > 0.0), (i, j, c)


def test_the_gated_stack_has_no_blind_spot_and_the_plain_one_has():
    """Output (9, 2) of a 12×12 image: the gated stack reads a full rectangle of the rows
    above; the plain stack reads (5, 8) but misses the nearer (8, 6), since its view of the
    row just above grows only one column to the right per layer (the blind spot of van den
    Oord et al. 2016b, figure 1)."""
    image = np.random.default_rng(1).uniform(size=(12, 12, 1)).astype(np.float32)
    reach = {arch: input_gradient(build_pixelcnn((12, 12, 1), "bernoulli", arch, features=8, layers=3,
                                                 kernel_size=3), image, 9, 2, 0)[:9, :, 0] > 0
             for arch in ("gated", "plain")}
    rows = reach["gated"][reach["gated"].any(axis=1)]
    assert len(rows) >= 3 and all((row == rows[0]).all() for row in rows)  # a rectangle
    assert reach["plain"][5, 8] and not reach["plain"][8, 6]


def test_channel_masks_follow_red_green_blue():
    groups = channel_groups(6, 3)
    assert groups.tolist() == [0, 0, 1, 1, 2, 2]
    assert channel_groups(12, 3, halves=2).tolist() == [0, 0, 1, 1, 2, 2] * 2
    a = kernel_mask((1, 1), (0, 0), 3, 6, 3, "A")[0, 0]
    b = kernel_mask((1, 1), (0, 0), 6, 6, 3, "B")[0, 0]
    assert a.tolist() == [[0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0]]  # R sees nothing
    assert b[:, :2].sum() == 4 and b[2:, :2].sum() == 0 and b[:, 4:].sum() == 12  # B sees everything
    spatial = kernel_mask((3, 3), (1, 1), 1, 1, 1, "B")[..., 0, 0]
    assert spatial.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]


def test_bernoulli_nll_against_numpy():
    rng = np.random.default_rng(2)
    x = (rng.uniform(size=(3, 4, 4, 1)) < 0.4).astype(np.float32)
    logits = rng.normal(size=x.shape).astype(np.float32) * 3
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(bernoulli_nll(x, logits).numpy(), expected, rtol=1e-5)


def test_categorical_nll_against_numpy():
    rng = np.random.default_rng(3)
    levels = rng.integers(0, 256, size=(2, 3, 3, 3))
    logits = rng.normal(size=(*levels.shape, 256)).astype(np.float32)
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    expected = -np.take_along_axis(log_softmax, levels[..., None], axis=-1)[..., 0].sum(axis=(1, 2, 3))
    np.testing.assert_allclose(categorical_nll(levels / 255.0, logits).numpy(), expected, rtol=1e-5)


def test_zero_logits_give_exactly_784_ln2_nats_and_one_bit_per_dimension():
    x = (np.random.default_rng(4).uniform(size=(5, 28, 28, 1)) < 0.5).astype(np.float32)
    nll = bernoulli_nll(x, np.zeros_like(x)).numpy()
    np.testing.assert_allclose(nll, 784 * math.log(2), rtol=1e-6)
    assert bits_per_dim(float(nll[0]), 784) == pytest.approx(1.0, rel=1e-6)
    levels = np.zeros((1, 2, 2, 3, 256), np.float32)  # uniform over 256 levels: 8 bits each
    assert bits_per_dim(float(categorical_nll(np.ones((1, 2, 2, 3)), levels)[0]), 12) == pytest.approx(8.0)
