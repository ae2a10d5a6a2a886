"""--tol, region masks and the tiled objective, on tiny problems (random-weight VGG19 cuts)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from nst import optimize


class Rosenbrock:
    """A tiny stand-in objective with the interface the optimisers use (slow, curved valley)."""

    shape = (1, 1, 2, 3)

    def loss_and_gradient(self, image):
        with tf.GradientTape() as tape:
            tape.watch(image)
            x = tf.reshape(image, (-1, 2)) / 50.0
            loss = tf.reduce_sum(100.0 * tf.square(x[:, 1] - x[:, 0] ** 2)
                                 + tf.square(1.0 - x[:, 0]))
        return loss, tape.gradient(loss, image), {"content": loss}


def run_optimizer(name: str, tol: float, window: int = 3) -> tuple[list[float], dict]:
    stop = optimize.ConvergenceStop(tol, window)
    losses: list[float] = []

    def on_iteration(iteration, image, loss, terms):
        losses.append(loss)
        stop(loss)

    start = np.full(Rosenbrock.shape, -60.0, np.float32)
    if name == "lbfgs":
        _, info = optimize.lbfgs(Rosenbrock(), start, 300, on_iteration)
    else:
        _, info = optimize.adam(Rosenbrock(), start, 300, 0.5, on_iteration)
    return losses, info


def test_convergence_stop_on_a_geometric_loss():
    """Over 10 iterations 0.99^i falls by 1 − 0.99^10 ≈ 9.6 %: tol 0.1 stops, 0.05 never."""
    stop, never = optimize.ConvergenceStop(0.1, 10), optimize.ConvergenceStop(0.05, 10)
    for i in range(10 + 1):
        never(0.99 ** i)
        if i < 10:
            stop(0.99 ** i)
    with pytest.raises(StopIteration):
        stop(0.99 ** 10)
    for i in range(11, 200):
        never(0.99 ** i)
    assert optimize.ConvergenceStop(0.0, 1)(1.0) is None  # tol 0: never stops


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lbfgs", "adam"])
def test_tol_ends_the_optimizers_early(name):
    full, _ = run_optimizer(name, 0.0)
    stopped, info = run_optimizer(name, 0.05, window=2)
    assert 2 < len(stopped) < len(full)
    before, last = stopped[-3], stopped[-1]
    assert (before - last) / abs(before) < 0.05  # the criterion held where it stopped …
    assert all((a - b) / abs(a) >= 0.05 for a, b in zip(stopped[:-3], stopped[2:-1]))  # only there
    if name == "adam":
        assert info["status"] == "converged" and info["iterations"] == len(stopped)


CONTENT_LAYER, LAYERS = "block2_conv2", {"block1_conv1": 0.4, "block2_conv1": 0.6}


@pytest.fixture(scope="module")
def random_extractor():
    """VGG19's layers to block2_conv2 with random weights: the objective's arithmetic, fast."""
    import keras

    from nst.model import feature_extractor

    keras.utils.set_random_seed(0)
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    return feature_extractor(vgg, [CONTENT_LAYER, *LAYERS])


def images(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((height, width, 3), dtype=np.float32)


def test_masked_gram_equals_numpy_on_the_masked_positions():
    from nst import losses

    rng = np.random.default_rng(1)
    features = rng.normal(size=(1, 5, 7, 4)).astype(np.float32)
    binary = (rng.random((5, 7)) > 0.5).astype(np.float32)
    soft = rng.random((5, 7)).astype(np.float32)
    grams = losses.masked_gram_matrices(features, np.stack([binary, soft])).numpy()
    inside = features[0][binary > 0]  # (positions in the region, channels)
    np.testing.assert_allclose(grams[0], inside.T @ inside, rtol=1e-5, atol=1e-5)
    weighted = features[0] * soft[..., None]
    np.testing.assert_allclose(grams[1], np.einsum("hwi,hwj->ij", weighted, weighted),
                               rtol=1e-5, atol=1e-5)
    ones = losses.masked_gram_matrices(features, np.ones((1, 5, 7), np.float32))[0]
    np.testing.assert_allclose(ones, losses.gram_matrix(features), rtol=1e-6)


def test_layer_masks_pool_like_the_network():
    from nst.model import layer_masks

    mask = np.arange(5 * 7, dtype=np.float32).reshape(1, 5, 7)
    pooled = layer_masks(mask, ["block1_conv1", "block2_conv1", "block3_conv1"])
    np.testing.assert_array_equal(pooled["block1_conv1"], mask)
    np.testing.assert_allclose(pooled["block2_conv1"][0],
                               mask[0, :4, :6].reshape(2, 2, 3, 2).mean(axis=(1, 3)))
    assert pooled["block3_conv1"].shape == (1, 1, 1)


@pytest.mark.slow
def test_all_ones_mask_gives_the_unmasked_objective(random_extractor):
    from nst.model import StyleTransferObjective, compute_targets, preprocess

    content, style, shape = images(20, 24), images(16, 16, 1), (1, 20, 24, 3)
    plain = compute_targets(random_extractor, shape, content, CONTENT_LAYER, [style], [1.0],
                            LAYERS)
    masked = compute_targets(random_extractor, shape, content, CONTENT_LAYER, [style], [1.0],
                             LAYERS, masks=np.ones((1, 20, 24), np.float32))
    values = [StyleTransferObjective(random_extractor, shape, CONTENT_LAYER, LAYERS, targets,
                                     1.0, 1e-3, 1.0).loss_and_gradient(
        preprocess(images(20, 24, 2))[None])[0] for targets in (plain, masked)]
    np.testing.assert_allclose(values[0], values[1], rtol=1e-5)


def test_tiling_geometry():
    from nst.tile_plan import Tiling, receptive_radius

    assert receptive_radius("block1_conv1") == 1 and receptive_radius("block2_conv2") == 7
    tiling = Tiling.for_layer("block2_conv2", 7)
    assert (tiling.core, tiling.halo, tiling.align) == (8, 8, 2)
    tiles = tiling.tiles(13, 20)
    covered = np.zeros((13, 20), int)
    for (top, left, _, _), (ctop, cleft, cbottom, cright) in tiles:
        covered[top + ctop:top + cbottom, left + cleft:left + cright] += 1
        assert (top % 2, left % 2, ctop % 2, cleft % 2) == (0, 0, 0, 0)
    assert (covered == 1).all()  # every position in exactly one core


@pytest.mark.slow
@pytest.mark.parametrize("regions", [0, 2])
def test_tiled_value_and_gradient_match_untiled(random_extractor, regions):
    """37×50 px in 8-px cores (20 tiles): the same loss, terms and gradient, to 1e-4."""
    from nst.model import StyleTransferObjective, compute_targets, preprocess
    from nst.tile_plan import Tiling
    from nst.tiles import TiledObjective, TileNetwork, tiled_targets

    shape = (1, 37, 50, 3)
    content, styles = images(37, 50), [images(21, 30, 1), images(24, 24, 3)][:max(regions, 1)]
    masks = None
    if regions:
        left = np.zeros((37, 50), np.float32)
        left[:, :23] = 1.0
        masks = np.stack([left, 1.0 - left])
    blend = [1.0 / len(styles)] * len(styles)
    weights = (1.0, 1e-3, 0.5)
    targets = compute_targets(random_extractor, shape, content, CONTENT_LAYER, styles, blend,
                              LAYERS, masks)
    untiled = StyleTransferObjective(random_extractor, shape, CONTENT_LAYER, LAYERS, targets,
                                     *weights)
    tiling = Tiling.for_layer(CONTENT_LAYER, 8)
    network = TileNetwork(random_extractor, CONTENT_LAYER, LAYERS)
    tiled_target = tiled_targets(network, tiling, shape, content, styles, blend, masks)
    np.testing.assert_allclose(tiled_target.content, targets.content, rtol=1e-4, atol=1e-4)
    tiled = TiledObjective(network, shape, tiled_target, *weights, tiling)
    image = preprocess(images(37, 50, 2))[None]
    loss, gradient, terms = untiled.loss_and_gradient(tf.constant(image))
    tiled_loss, tiled_gradient, tiled_terms = tiled.loss_and_gradient(image)
    np.testing.assert_allclose(tiled_loss, loss, rtol=1e-4)
    for name in terms:
        np.testing.assert_allclose(tiled_terms[name], terms[name], rtol=1e-4, err_msg=name)
    scale = np.abs(gradient.numpy()).max()
    np.testing.assert_allclose(tiled_gradient.numpy() / scale, gradient.numpy() / scale,
                               atol=1e-4)
