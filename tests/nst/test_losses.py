"""NST losses, preprocessing, colour and helpers against hand-computed NumPy values."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from common.errors import UserError
from nst import color, losses
from nst.layers import CONV_LAYERS, estimate_memory_bytes, layer_index, poolings_before
from nst.model import deprocess, pixel_bounds, preprocess
from nst.swirl import swirl_painting

RNG = np.random.default_rng(0)


def test_gram_matrix_is_the_channel_correlation_matrix():
    features = RNG.normal(size=(1, 3, 4, 5)).astype(np.float32)
    gram = losses.gram_matrix(features).numpy()
    unrolled = features.reshape(12, 5).T  # n_C × n_H·n_W
    assert gram.shape == (5, 5)
    np.testing.assert_allclose(gram, unrolled @ unrolled.T, rtol=1e-5)
    np.testing.assert_allclose(gram, gram.T)
    assert np.all(np.linalg.eigvalsh(gram.astype(np.float64)) > -1e-4)  # positive semi-definite


def test_style_layer_loss_by_hand():
    # One position, one channel: G_S = 2² = 4, G_G = 1² = 1 → (4 − 1)² / (4·1²·1²).
    style = losses.gram_matrix(np.full((1, 1, 1, 1), 2.0, np.float32))
    generated = losses.gram_matrix(np.ones((1, 1, 1, 1), np.float32))
    assert losses.style_layer_loss(style, generated, 1).numpy() == pytest.approx(2.25)


def test_style_layer_loss_has_the_papers_factor():
    n_h, n_w, n_c = 3, 2, 4
    style = RNG.normal(size=(1, n_h, n_w, n_c)).astype(np.float32)
    generated = RNG.normal(size=(1, n_h, n_w, n_c)).astype(np.float32)
    a_s, a_g = style.reshape(-1, n_c), generated.reshape(-1, n_c)
    expected = np.sum((a_s.T @ a_s - a_g.T @ a_g) ** 2) / (4 * n_c ** 2 * (n_h * n_w) ** 2)
    value = losses.style_layer_loss(losses.gram_matrix(style), losses.gram_matrix(generated),
                                    n_h * n_w)
    assert value.numpy() == pytest.approx(expected, rel=1e-5)


def test_style_loss_weights_the_layers():
    features = {name: RNG.normal(size=(1, 2, 2, 3)).astype(np.float32) for name in ("a", "b")}
    targets = {name: losses.gram_matrix(RNG.normal(size=(1, 2, 2, 3)).astype(np.float32))
               for name in ("a", "b")}
    total, per_layer = losses.style_loss(targets, features, {"a": 0.25, "b": 0.75})
    for name in ("a", "b"):
        expected = losses.style_layer_loss(targets[name], losses.gram_matrix(features[name]), 4)
        assert per_layer[name].numpy() == pytest.approx(expected.numpy(), rel=1e-6)
    expected = 0.25 * per_layer["a"].numpy() + 0.75 * per_layer["b"].numpy()
    assert total.numpy() == pytest.approx(expected, rel=1e-6)


def test_rescaled_gram_matches_a_larger_image_with_the_same_statistics():
    small = RNG.normal(size=(1, 2, 3, 4)).astype(np.float32)
    tiled = np.tile(small, (1, 2, 2, 1))  # same statistics over 4× the positions
    rescaled = losses.rescale_gram(losses.gram_matrix(small), 6, 24)
    np.testing.assert_allclose(rescaled.numpy(), losses.gram_matrix(tiled).numpy(), rtol=1e-5)


def test_content_loss_by_hand_and_zero_for_identical_features():
    content = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    generated = content + 2.0
    # Σ(2²) over 24 entries / (4·24) = 1.
    assert losses.content_loss(content, generated).numpy() == pytest.approx(1.0)
    assert losses.content_loss(content, content).numpy() == 0.0


def test_grams_and_losses_are_float32_for_float16_features():
    # 64×64 positions of 300 sum to 3.7e8 in a Gram entry: inf in float16.
    features = tf.constant(np.full((1, 64, 64, 2), 300.0), tf.float16)
    gram = losses.gram_matrix(features)
    assert gram.dtype == tf.float32 and np.isfinite(gram.numpy()).all()
    assert gram.numpy()[0, 0] == pytest.approx(300.0 ** 2 * 64 * 64, rel=1e-3)
    value = losses.style_layer_loss(gram, gram * 0.5, 64 * 64)
    assert value.dtype == tf.float32 and np.isfinite(value.numpy())
    assert losses.content_loss(features, features * 0).dtype == tf.float32


def test_total_variation_by_hand():
    image = np.zeros((1, 2, 2, 1), np.float32)
    image[0, 0, 0, 0] = 1.0  # two unit differences, one down and one right, over 4 values
    assert losses.total_variation_loss(image).numpy() == pytest.approx(0.5)
    assert losses.total_variation_loss(np.ones((1, 5, 5, 3), np.float32)).numpy() == 0.0


def test_total_loss_weights():
    terms = [tf.constant(value) for value in (2.0, 3.0, 5.0)]
    assert float(losses.total_loss(*terms, 1.0, 10.0, 100.0)) == pytest.approx(532.0)


def test_preprocessing_is_caffe_and_round_trips():
    image = RNG.random((5, 7, 3)).astype(np.float32)
    caffe = preprocess(image)
    np.testing.assert_allclose(caffe[..., 0], image[..., 2] * 255 - 103.939, atol=1e-4)  # B first
    np.testing.assert_allclose(caffe[..., 2], image[..., 0] * 255 - 123.68, atol=1e-4)
    np.testing.assert_allclose(deprocess(caffe), image, atol=1e-6)
    lower, upper = pixel_bounds(caffe.shape)
    np.testing.assert_allclose(deprocess(lower), 0.0, atol=1e-6)
    np.testing.assert_allclose(deprocess(upper), 1.0, atol=1e-6)


def test_yiq_round_trip_and_chrominance_transfer():
    image = RNG.random((4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(color.yiq_to_rgb(color.rgb_to_yiq(image)), image, atol=1e-5)
    content = image * 0.2 + 0.4  # mild colours: the mix stays inside the RGB cube
    grey = np.repeat(RNG.random((4, 4, 1)).astype(np.float32) * 0.2 + 0.4, 3, axis=-1)
    mixed = color.with_content_chrominance(grey, content)
    np.testing.assert_allclose(color.rgb_to_yiq(mixed)[..., 0], color.rgb_to_yiq(grey)[..., 0],
                               atol=1e-5)
    np.testing.assert_allclose(color.rgb_to_yiq(mixed)[..., 1:], color.rgb_to_yiq(content)[..., 1:],
                               atol=1e-5)


def test_luminance_matching_uses_the_contents_mean_and_spread():
    style, content = RNG.random((8, 8, 3)) * 0.3, RNG.random((8, 8, 3)) * 0.5 + 0.25
    matched = color.match_luminance(style, content)
    assert np.allclose(matched[..., 0], matched[..., 1])  # grey
    content_y = color.rgb_to_yiq(content)[..., 0]
    assert matched[..., 0].mean() == pytest.approx(content_y.mean(), abs=1e-4)
    assert matched[..., 0].std() == pytest.approx(content_y.std(), abs=1e-4)


def test_histogram_matching_gives_the_contents_mean_and_covariance():
    style = RNG.random((32, 32, 3)).astype(np.float32) * [0.2, 0.5, 0.3] + 0.1
    content = RNG.random((32, 32, 3)).astype(np.float32) * [0.4, 0.2, 0.3] + 0.3
    matched = color.match_color_histogram(style, content).reshape(-1, 3)
    np.testing.assert_allclose(matched.mean(0), content.reshape(-1, 3).mean(0), atol=1e-4)
    np.testing.assert_allclose(np.cov(matched, rowvar=False),
                               np.cov(content.reshape(-1, 3), rowvar=False), atol=1e-4)


def test_swirl_painting_is_a_deterministic_colour_image():
    first, second = swirl_painting(64, seed=1), swirl_painting(64, seed=1)
    assert first.shape == (64, 64, 3) and first.dtype == np.float32
    assert 0.0 <= first.min() and first.max() <= 1.0 and first.std() > 0.1
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, swirl_painting(64, seed=2))


def test_layer_names_and_memory_estimate():
    assert len(CONV_LAYERS) == 16 and CONV_LAYERS[-1] == "block5_conv4"
    assert layer_index("block4_conv2") == 9 and poolings_before("block4_conv2") == 3
    with pytest.raises(UserError, match="relu4_2"):
        layer_index("relu4_2")
    small = estimate_memory_bytes(256, 256, "block5_conv1")
    large = estimate_memory_bytes(1024, 1024, "block5_conv1")
    assert 15.5 < (large - 1.08e9) / (small - 1.08e9) < 16.5  # grows with the pixel count
    shallow = estimate_memory_bytes(512, 512, "block2_conv1")
    assert shallow < estimate_memory_bytes(512, 512, "block5_conv1")
