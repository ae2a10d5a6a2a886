"""The style transfer objective over overlapping tiles, for outputs whose activations do not fit.

Exact, not approximate: every term is a sum over positions, so it can be summed tile by
tile. Each tile is a "core" of the output grid plus a halo of at least VGG19's receptive
field radius (to the deepest layer used) on every side that is not the image border, and
core and halo are multiples of the network's total pooling stride, so the tile's pooling
grid is the full image's. Then every core position's activations equal the untiled ones
(zero padding is only ever met at the true border, as untiled), and only core positions
are counted, each once. Two passes per evaluation:
1. the Gram matrices of every tile's core, summed: the whole image's G at each layer;
2. per tile, the gradient of  β·Σ_l λ_l·⟨∂J_l/∂G_l, G_l(tile)⟩ + α·J_content(tile)  with
   respect to the tile's pixels (halo included), added into the image's gradient — the
   chain rule through G = Σ_tiles G_tile, so value and gradient equal the untiled ones up
   to float summation order. Total variation is computed on the whole image (it is cheap).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from nst import losses
from nst.layers import poolings_before
from nst.model import Targets, layer_masks, preprocess
from nst.tile_plan import Tiling


def _core(features: tf.Tensor, box: tf.Tensor, poolings: int) -> tf.Tensor:
    """The core positions of a (…, n_H, n_W[, n_C]) tile map at a layer after `poolings` poolings."""
    top, left, bottom, right = tf.unstack(box // (2 ** poolings))
    return features[:, top:bottom, left:right]


class TileNetwork:
    """The extractor's two per-tile passes as `tf.function`s (one trace for every tile size)."""

    def __init__(self, extractor: keras.Model, content_layer: str | None, style_layers):
        self.extractor, self.content_layer = extractor, content_layer
        self.style_layers = dict(style_layers)
        tile = tf.TensorSpec((1, None, None, 3), tf.float32)
        box = tf.TensorSpec((4,), tf.int32)
        masks = tf.TensorSpec((None, None, None), tf.float32)
        grams = {name: tf.TensorSpec((None, None, None), tf.float32) for name in self.style_layers}
        self.forward = tf.function(self._forward, input_signature=[tile, box, masks])
        self.backward = tf.function(self._backward, input_signature=[
            tile, box, masks, grams, tf.TensorSpec((1, None, None, None), tf.float32),
            tf.TensorSpec((), tf.float32), tf.TensorSpec((), tf.float32)])

    def _core_terms(self, tile, box, masks):
        features = self.extractor(tile, training=False)
        grams = {}
        pooled = layer_masks(masks, self.style_layers)
        for name in self.style_layers:
            p = poolings_before(name)
            core_mask = _core(pooled[name], box, p)
            grams[name] = losses.masked_gram_matrices(_core(features[name], box, p), core_mask)
        content = None
        if self.content_layer:
            content = tf.cast(_core(features[self.content_layer], box,
                                    poolings_before(self.content_layer)), tf.float32)
        return grams, content

    def _forward(self, tile, box, masks):
        """Per-region Grams over the core, and the core's content-layer activations."""
        grams, content = self._core_terms(tile, box, masks)
        return grams, (content if content is not None else tf.zeros((1, 0, 0, 0)))

    def _backward(self, tile, box, masks, gram_gradients, content_target, content_scale,
                  style_weight):
        """(α-free content sum over the core, d surrogate / d tile) — see the module doc."""
        with tf.GradientTape() as tape:
            tape.watch(tile)
            grams, content = self._core_terms(tile, box, masks)
            surrogate = tf.add_n([tf.constant(0.0)] + [
                style_weight * weight * tf.reduce_sum(gram_gradients[name] * grams[name])
                for name, weight in self.style_layers.items()])
            content_sum = tf.constant(0.0)
            if content is not None:
                content_sum = tf.reduce_sum(tf.square(content - content_target))
                surrogate += content_scale * content_sum
        return content_sum, tape.gradient(surrogate, tile)


def _masks_or_ones(targets_masks, shape) -> np.ndarray:
    """The region masks (S, H, W), or one mask of ones: the unmasked case is one region."""
    if targets_masks is not None:
        return np.asarray(targets_masks, np.float32)
    return np.ones((1, *shape[1:3]), np.float32)


def _full_positions(height: int, width: int, name: str) -> int:
    p = poolings_before(name)
    return (height // 2 ** p) * (width // 2 ** p)


class TiledObjective:
    """`StyleTransferObjective`'s interface (`shape`, `loss_and_gradient`) over tiles."""

    def __init__(self, network: TileNetwork, shape: tuple[int, int, int, int],
                 targets: Targets, content_weight: float, style_weight: float,
                 tv_weight: float, tiling: Tiling):
        self.network, self.shape, self.tiling = network, shape, tiling
        self.masks = _masks_or_ones(targets.masks, shape)
        # Unmasked targets (n_C, n_C) become one region (1, n_C, n_C).
        self.style_grams = {name: tf.reshape(gram, (-1, *gram.shape[-2:]))
                            for name, gram in targets.style_grams.items()}
        self.content = None if targets.content is None else np.asarray(targets.content)
        self.weights = (content_weight if self.content is not None else 0.0,
                        style_weight if self.style_grams else 0.0, tv_weight)
        self.tv = tf.function(_tv_and_gradient,
                              input_signature=[tf.TensorSpec(shape, tf.float32)])

    def _tiles(self, image: np.ndarray):
        for (top, left, bottom, right), core in self.tiling.tiles(*self.shape[1:3]):
            yield ((slice(top, bottom), slice(left, right)),
                   tf.constant(image[:, top:bottom, left:right]), tf.constant(core, tf.int32),
                   tf.constant(self.masks[:, top:bottom, left:right]),
                   (top + core[0], left + core[1], top + core[2], left + core[3]))

    def _content_target(self, core: tuple[int, int, int, int]) -> tf.Tensor:
        """The content target over a core given in image pixels."""
        if self.content is None:
            return tf.zeros((1, 0, 0, 0))
        top, left, bottom, right = (edge >> poolings_before(self.network.content_layer)
                                    for edge in core)
        return tf.constant(self.content[:, top:bottom, left:right])

    def loss_and_gradient(self, image):
        image = np.asarray(image, np.float32)
        height, width = self.shape[1:3]
        grams = {name: 0.0 for name in self.style_grams}
        for _, tile, core, masks, _ in self._tiles(image):
            for name, gram in self.network.forward(tile, core, masks)[0].items():
                grams[name] += gram
        terms, gram_gradients = {}, {}
        style = 0.0
        for name, weight in self.network.style_layers.items():
            positions = _full_positions(height, width, name)
            channels = float(grams[name].shape[-1])
            terms[f"style/{name}"] = losses.style_layer_loss(self.style_grams[name], grams[name],
                                                             positions)
            style += weight * terms[f"style/{name}"]
            # ∂/∂G of Σ(G_S − G)² / (4·n_C²·N²)
            gram_gradients[name] = (grams[name] - self.style_grams[name]) / (
                2.0 * channels ** 2 * float(positions) ** 2)
        content_count = 4.0 * (self.content.size if self.content is not None else 1)
        gradient = np.zeros_like(image)
        content = 0.0
        for window, tile, core, masks, image_core in self._tiles(image):
            part, tile_gradient = self.network.backward(
                tile, core, masks, gram_gradients, self._content_target(image_core),
                tf.constant(self.weights[0] / content_count), tf.constant(float(self.weights[1])))
            content += float(part) / content_count
            gradient[(slice(None), *window)] += tile_gradient.numpy()
        tv, tv_gradient = self.tv(tf.constant(image))
        gradient += self.weights[2] * tv_gradient.numpy()
        terms.update(content=tf.constant(content, tf.float32), style=tf.constant(style),
                     tv=tv)
        loss = losses.total_loss(terms["content"], terms["style"], tv, *self.weights)
        return loss, tf.constant(gradient), terms


def _tv_and_gradient(image):
    with tf.GradientTape() as tape:
        tape.watch(image)
        value = losses.total_variation_loss(image)
    return value, tape.gradient(value, image)


def tiled_targets(network: TileNetwork, tiling: Tiling, shape: tuple[int, int, int, int],
                  content: np.ndarray | None, styles: list[np.ndarray], blend: list[float],
                  masks: np.ndarray | None) -> Targets:
    """`nst.model.compute_targets`, tile by tile: the same targets without the whole
    image's activations in memory."""
    height, width = shape[1:3]
    content_features = None
    if content is not None and network.content_layer:
        content_features = _stitched_content(network, tiling, preprocess(content)[None])
    region_positions = None
    if masks is not None:
        region_positions = {name: tf.reduce_sum(tf.square(mask), axis=(1, 2)) for name, mask
                            in layer_masks(masks, network.style_layers).items()}
    grams: dict[str, tf.Tensor] = {}
    for index, style in enumerate(styles):
        style_grams = _summed_grams(network, tiling, preprocess(style)[None])
        for name, gram in style_grams.items():
            positions = _full_positions(*style.shape[:2], name)
            if masks is None:
                scaled = gram[0] * (blend[index] * _full_positions(height, width, name) / positions)
                grams[name] = grams.get(name, 0.0) + scaled
            else:
                grams.setdefault(name, []).append(gram[0] * (region_positions[name][index] /
                                                             positions))
    if masks is not None:
        grams = {name: tf.stack(stack) for name, stack in grams.items()}
        masks = tf.constant(masks, tf.float32)
    return Targets(content_features, grams, masks)


def _summed_grams(network: TileNetwork, tiling: Tiling, image: np.ndarray) -> dict[str, tf.Tensor]:
    ones = np.ones((1, *image.shape[1:3]), np.float32)
    total: dict[str, tf.Tensor] = {}
    for (top, left, bottom, right), core in tiling.tiles(*image.shape[1:3]):
        grams, _ = network.forward(tf.constant(image[:, top:bottom, left:right]),
                                   tf.constant(core, tf.int32),
                                   tf.constant(ones[:, top:bottom, left:right]))
        for name, gram in grams.items():
            total[name] = total.get(name, 0.0) + gram
    return total


def _stitched_content(network: TileNetwork, tiling: Tiling, image: np.ndarray) -> np.ndarray:
    """The content layer's activations over the whole image, assembled from tile cores."""
    p = poolings_before(network.content_layer)
    ones = np.ones((1, *image.shape[1:3]), np.float32)
    parts = {}
    for (top, left, bottom, right), core in tiling.tiles(*image.shape[1:3]):
        _, features = network.forward(tf.constant(image[:, top:bottom, left:right]),
                                      tf.constant(core, tf.int32),
                                      tf.constant(ones[:, top:bottom, left:right]))
        parts[((top + core[0]) >> p, (left + core[1]) >> p)] = features.numpy()
    rows = sorted({row for row, _ in parts})
    columns = sorted({column for _, column in parts})
    return np.concatenate([np.concatenate([parts[(row, column)] for column in columns], axis=2)
                           for row in rows], axis=1)
