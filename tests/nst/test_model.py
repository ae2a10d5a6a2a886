"""The VGG19 extractor, the objective's tf.function and both optimisers, with the real weights."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from common.errors import UserError
from nst import losses, optimize
from nst.model import (
    StyleTransferObjective,
    compute_targets,
    deprocess,
    feature_extractor,
    load_vgg19,
    pixel_bounds,
    preprocess,
)

STYLE_LAYERS = {"block1_conv1": 0.5, "block2_conv1": 0.5}
RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def vgg(vgg19_weights: str) -> keras.Model:
    return load_vgg19(vgg19_weights)


@pytest.fixture(scope="module")
def small_problem(vgg):
    """A 24×32 transfer with a smooth content image and a striped style image."""
    extractor = feature_extractor(vgg, ["block2_conv2", *STYLE_LAYERS])
    y, x = np.mgrid[0:24, 0:32] / 32.0
    content = np.stack([y, x, 0.5 + 0 * x], axis=-1).astype(np.float32)
    style = np.stack([(np.sin(x * 40) > 0)] * 3, axis=-1).astype(np.float32)
    shape = (1, 24, 32, 3)
    targets = compute_targets(extractor, shape, content, "block2_conv2", [style], [1.0],
                              STYLE_LAYERS)
    objective = StyleTransferObjective(extractor, shape, "block2_conv2", STYLE_LAYERS, targets,
                                       content_weight=1.0, style_weight=1e-3, tv_weight=1.0)
    return objective, content


def test_extractor_ends_at_the_deepest_used_layer(vgg):
    extractor = feature_extractor(vgg, ["block4_conv2", "block1_conv1", "block3_conv1"])
    names = [layer.name for layer in extractor.layers]
    assert names[-1] == "block4_conv2"
    assert not any(name.startswith("block5") or name in ("block4_conv3", "block4_conv4")
                   for name in names)
    assert set(extractor.output) == {"block4_conv2", "block1_conv1", "block3_conv1"}
    assert not extractor.trainable and not extractor.trainable_weights


def test_average_pooling_uses_the_same_conv_weights(vgg):
    extractor = feature_extractor(vgg, ["block3_conv1"], pooling="avg")
    kinds = {type(layer).__name__ for layer in extractor.layers}
    assert "AveragePooling2D" in kinds and "MaxPooling2D" not in kinds
    np.testing.assert_array_equal(extractor.get_layer("block2_conv1").kernel.numpy(),
                                  vgg.get_layer("block2_conv1").kernel.numpy())
    image = preprocess(RNG.random((1, 16, 16, 3)))
    by_hand = vgg.get_layer("block2_conv1")(keras.layers.AveragePooling2D(2)(
        vgg.get_layer("block1_conv2")(vgg.get_layer("block1_conv1")(image))))
    averaged = feature_extractor(vgg, ["block2_conv1"], "avg")(image)["block2_conv1"]
    np.testing.assert_allclose(averaged, by_hand, rtol=1e-4, atol=1e-3)


def test_missing_corrupt_and_wrong_shape_weights_are_user_errors(tmp_path: Path):
    with pytest.raises(UserError, match="no such VGG19 weights file"):
        load_vgg19(str(tmp_path / "absent.weights.h5"))
    corrupt = tmp_path / "corrupt.weights.h5"
    corrupt.write_bytes(b"not an HDF5 file" * 100)
    with pytest.raises(UserError, match="not usable VGG19"):
        load_vgg19(str(corrupt))
    other = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3)])
    wrong = tmp_path / "wrong.weights.h5"
    other.save_weights(wrong)
    with pytest.raises(UserError, match="not usable VGG19"):
        load_vgg19(str(wrong))


def test_objective_matches_the_losses_and_traces_once(small_problem):
    objective, content = small_problem
    image = preprocess(RNG.random((1, 24, 32, 3)))
    for _ in range(3):
        loss, gradient, terms = objective.loss_and_gradient(image)
    assert objective.loss_and_gradient.experimental_get_tracing_count() == 1
    assert gradient.shape == image.shape and np.isfinite(gradient.numpy()).all()
    features = objective.extractor(image)
    content_features = objective.extractor(preprocess(content)[None])["block2_conv2"]
    assert float(terms["content"]) == pytest.approx(
        float(losses.content_loss(content_features, features["block2_conv2"])), rel=1e-4)
    expected = float(terms["content"]) + 1e-3 * float(terms["style"]) + float(terms["tv"])
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(terms["style"]) == pytest.approx(
        0.5 * float(terms["style/block1_conv1"]) + 0.5 * float(terms["style/block2_conv1"]),
        rel=1e-5)


def test_gradient_matches_a_finite_difference(small_problem):
    objective, _ = small_problem
    image = preprocess(np.random.default_rng(2).random((1, 24, 32, 3)))
    _, gradient, _ = objective.loss_and_gradient(image)
    # Mostly along the gradient, so the change stands out of float32 rounding of a ~3e7 loss.
    direction = gradient.numpy() / np.abs(gradient.numpy()).max()
    direction += 0.3 * np.random.default_rng(1).normal(size=image.shape).astype(np.float32)
    step = 1.0
    plus = float(objective.loss_and_gradient(image + step * direction)[0])
    minus = float(objective.loss_and_gradient(image - step * direction)[0])
    numeric = (plus - minus) / (2 * step)
    assert numeric == pytest.approx(float(np.sum(gradient.numpy() * direction)), rel=1e-2)


def test_blended_style_targets_are_the_weighted_grams(vgg):
    extractor = feature_extractor(vgg, ["block1_conv1"])
    first, second = RNG.random((16, 16, 3)), RNG.random((32, 32, 3))
    targets = compute_targets(extractor, (1, 16, 16, 3), None, None, [first, second], [0.7, 0.3],
                              {"block1_conv1": 1.0})
    gram_first = losses.gram_matrix(extractor(preprocess(first)[None])["block1_conv1"])
    gram_second = losses.gram_matrix(extractor(preprocess(second)[None])["block1_conv1"])
    expected = 0.7 * gram_first + 0.3 * gram_second / 4.0  # second has 4× the positions
    np.testing.assert_allclose(targets.style_grams["block1_conv1"], expected, rtol=1e-4)
    assert targets.content is None


@pytest.mark.parametrize("name", optimize.OPTIMIZERS)
def test_optimisers_lower_the_loss_and_stay_inside_the_pixel_box(small_problem, name):
    objective, _ = small_problem
    initial = preprocess(RNG.random((1, 24, 32, 3)))
    seen = []

    def record(iteration, image, loss, terms):
        seen.append((iteration, loss))
        lower, upper = pixel_bounds(image.shape)
        assert np.all(image >= lower - 1e-3) and np.all(image <= upper + 1e-3)

    if name == "lbfgs":
        result, info = optimize.lbfgs(objective, initial, 8, record)
    else:
        result, info = optimize.adam(objective, initial, 8, 20.0, record)
    assert [iteration for iteration, _ in seen] == list(range(1, len(seen) + 1))
    assert seen[-1][1] < 0.5 * float(objective.loss_and_gradient(initial)[0])
    pixels = deprocess(result)
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    # The box is active: some pixels sit on its faces (black or white).
    assert np.mean((pixels < 1e-4) | (pixels > 1 - 1e-4)) > 0.001
