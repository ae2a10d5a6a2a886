"""VGG19 feature extractor, caffe preprocessing and the style transfer objective.

The network is `keras.applications.VGG19(include_top=False)` with ImageNet weights, frozen
and cut after the deepest layer a loss uses, so nothing past it is ever computed. The
objective is one `tf.function` with a fixed input shape that returns the loss, its
gradient with respect to the image and every loss term; both optimisers call it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from common.errors import UserError
from nst import losses
from nst.layers import CONV_LAYERS, layer_index, poolings_before

# ImageNet mean pixel in BGR order: keras.applications.vgg19.preprocess_input ("caffe" mode).
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)


def preprocess(image: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] (…, H, W, 3) → VGG19's caffe input: BGR, 0–255, minus the mean pixel."""
    return keras.applications.vgg19.preprocess_input(np.asarray(image, np.float32) * 255.0)


def deprocess(image: np.ndarray) -> np.ndarray:
    """The exact inverse of `preprocess` (no clipping): caffe BGR → RGB in [0, 1]."""
    image = np.asarray(image, np.float32)
    return ((image + CAFFE_MEAN_BGR)[..., ::-1] / 255.0).astype(np.float32)


def pixel_bounds(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper caffe values per element so the de-processed image stays in [0, 255]."""
    lower = np.broadcast_to(-CAFFE_MEAN_BGR, shape).astype(np.float32)
    return lower, lower + 255.0


def load_vgg19(weights: str) -> keras.Model:
    """The full conv part of VGG19 with `weights` ("imagenet" or a .weights.h5 path).

    Every way the weights can be wrong (missing, unreadable, not HDF5, other shapes, no
    network for the download) becomes a one-line `UserError`.
    """
    if weights != "imagenet":
        path = Path(weights)
        if not path.is_file():
            raise UserError(f"{weights}: no such VGG19 weights file "
                            "(set --vgg-weights or VGG19_WEIGHTS)")
        if not os.access(path, os.R_OK):
            raise UserError(f"{weights}: VGG19 weights file is not readable")
    try:
        with warnings.catch_warnings():
            # Keras only warns about parts of a file it skips; those layers would stay random.
            warnings.simplefilter("error", UserWarning)
            return keras.applications.VGG19(include_top=False, weights=weights,
                                            input_shape=(None, None, 3))
    except Exception as error:  # Keras raises ValueError, OSError, KeyError… per failure
        detail = " ".join(str(error).split())[:200] or type(error).__name__
        if weights == "imagenet":
            raise UserError("cannot get the ImageNet VGG19 weights (no network?); point "
                            f"--vgg-weights or VGG19_WEIGHTS at a local file ({detail})") from None
        raise UserError(f"{weights}: not usable VGG19 no-top weights ({detail})") from None


def feature_extractor(vgg: keras.Model, outputs: list[str], pooling: str = "max") -> keras.Model:
    """A frozen model image → {layer: activations}, ending at the deepest layer in `outputs`.

    With `pooling="avg"` the same conv layers (same weights) are chained with
    AveragePooling2D in place of max pooling, as Gatys et al. recommend.
    """
    deepest = max(layer_index(name) for name in outputs)
    inputs = keras.Input((None, None, 3), name="image")
    x = inputs
    features = {}
    for layer in vgg.layers[1:]:
        if pooling == "avg" and isinstance(layer, keras.layers.MaxPooling2D):
            layer = keras.layers.AveragePooling2D(2, 2, name=layer.name.replace("pool", "avgpool"))
        x = layer(x)
        if layer.name in outputs:
            features[layer.name] = x
        if layer.name == CONV_LAYERS[deepest]:
            break
    model = keras.Model(inputs, features, name=f"vgg19_to_{CONV_LAYERS[deepest]}")
    model.trainable = False
    return model


@dataclass
class Targets:
    """What the generated image is pulled towards: computed once per scale."""

    content: tf.Tensor | None          # activations at the content layer, or None
    style_grams: dict[str, tf.Tensor]  # blended Gram per style layer, at the output's size;
    # with region masks a stack (S, n_C, n_C): style s's Gram rescaled to its region's positions
    masks: tf.Tensor | None = None     # (S, H, W) region masks at the output's size, or None


def layer_masks(masks: tf.Tensor, layers) -> dict[str, tf.Tensor]:
    """(S, H, W) input-resolution masks → {layer: (S, n_H, n_W)} at each layer's resolution.

    Downsampled the way VGG19 downsamples its activations: one 2×2 stride-2 average
    pooling ('valid', so odd sizes floor like the network's pooling) per pooling layer
    before the layer (its 3×3 'same' convolutions keep the size). Averaging rather than
    max keeps a soft border where a region boundary falls inside a pooling window.
    """
    pooled = [tf.cast(masks, tf.float32)[..., None]]
    result = {}
    for name in sorted(layers, key=poolings_before):
        while len(pooled) <= poolings_before(name):
            pooled.append(tf.nn.avg_pool2d(pooled[-1], 2, 2, "VALID"))
        result[name] = pooled[poolings_before(name)][..., 0]
    return result


class StyleTransferObjective:
    """J(image) = α·J_content + β·J_style + γ·TV for a caffe image of one fixed shape.

    `loss_and_gradient(image)` is one `tf.function` (traced once for the shape given here)
    that returns (loss, d loss / d image, {term: value}); terms are "content", "style",
    "style/<layer>" (unweighted J_style[l]) and "tv".
    """

    def __init__(self, extractor: keras.Model, shape: tuple[int, int, int, int],
                 content_layer: str | None, style_layers: dict[str, float], targets: Targets,
                 content_weight: float, style_weight: float, tv_weight: float,
                 jit_compile: bool = False):
        self.extractor = extractor
        self.shape = shape
        self.content_layer = content_layer if targets.content is not None else None
        self.style_layers = style_layers if targets.style_grams else {}
        self.targets = targets
        self.weights = (content_weight if self.content_layer else 0.0,
                        style_weight if self.style_layers else 0.0, tv_weight)
        self.loss_and_gradient = tf.function(
            self._loss_and_gradient, jit_compile=jit_compile,
            input_signature=[tf.TensorSpec(shape, tf.float32, name="image")])

    def _terms(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        features = self.extractor(image, training=False)
        zero = tf.constant(0.0, tf.float32)
        terms = {"content": zero, "style": zero}
        if self.content_layer:
            terms["content"] = losses.content_loss(self.targets.content,
                                                   features[self.content_layer])
        if self.style_layers:
            masks = None if self.targets.masks is None else \
                layer_masks(self.targets.masks, self.style_layers)
            terms["style"], per_layer = losses.style_loss(self.targets.style_grams, features,
                                                          self.style_layers, masks)
            terms.update({f"style/{name}": value for name, value in per_layer.items()})
        terms["tv"] = losses.total_variation_loss(image)
        return terms

    def _loss_and_gradient(self, image: tf.Tensor):
        with tf.GradientTape() as tape:
            tape.watch(image)
            terms = self._terms(image)
            loss = losses.total_loss(terms["content"], terms["style"], terms["tv"], *self.weights)
        return loss, tape.gradient(loss, image), terms


def compute_targets(extractor: keras.Model, shape: tuple[int, int, int, int],
                    content: np.ndarray | None, content_layer: str | None,
                    styles: list[np.ndarray], blend: list[float],
                    style_layers: dict[str, float], masks: np.ndarray | None = None) -> Targets:
    """Content activations and blended style Grams, once, in caffe space.

    Grams of each style image are rescaled to the output's number of positions per layer
    (`losses.rescale_gram`) and mixed with the blend weights: minimising Σ_s w_s‖G_s − G‖²
    has the same gradient as ‖Σ_s w_s·G_s − G‖², so one blended target suffices. With
    `masks` (S, H, W) at the output's size there is no blend: style s's Gram is rescaled to
    its region's (mask-weighted) positions and the targets are stacked (S, n_C, n_C).
    """
    if masks is not None:
        return _masked_targets(extractor, content, content_layer, styles, style_layers, masks)
    content_features = _content_features(extractor, content, content_layer)
    output_positions = _positions_per_layer(extractor, shape)
    grams: dict[str, tf.Tensor] = {}
    for style, weight in zip(styles, blend):
        features = extractor(preprocess(style)[None], training=False)
        for name in style_layers:
            positions = int(features[name].shape[1]) * int(features[name].shape[2])
            gram = losses.rescale_gram(losses.gram_matrix(features[name]), positions,
                                       output_positions[name])
            grams[name] = grams.get(name, 0.0) + weight * gram
    return Targets(content_features, grams)


def _content_features(extractor: keras.Model, content: np.ndarray | None,
                      content_layer: str | None) -> tf.Tensor | None:
    if content is None or not content_layer:
        return None
    return tf.cast(extractor(preprocess(content)[None], training=False)[content_layer], tf.float32)


def _masked_targets(extractor: keras.Model, content: np.ndarray | None,
                    content_layer: str | None, styles: list[np.ndarray],
                    style_layers: dict[str, float], masks: np.ndarray) -> Targets:
    """`compute_targets` with one region mask per style image (see there)."""
    content_features = _content_features(extractor, content, content_layer)
    region_positions = {name: tf.reduce_sum(tf.square(mask), axis=(1, 2))
                        for name, mask in layer_masks(masks, style_layers).items()}
    stacks: dict[str, list[tf.Tensor]] = {name: [] for name in style_layers}
    for index, style in enumerate(styles):
        features = extractor(preprocess(style)[None], training=False)
        for name in style_layers:
            positions = int(features[name].shape[1]) * int(features[name].shape[2])
            stacks[name].append(losses.gram_matrix(features[name])
                                * (region_positions[name][index] / positions))
    return Targets(content_features, {name: tf.stack(grams) for name, grams in stacks.items()},
                   tf.constant(masks, tf.float32))


def _positions_per_layer(extractor: keras.Model,
                         shape: tuple[int, int, int, int]) -> dict[str, int]:
    outputs = extractor.compute_output_spec(keras.KerasTensor(shape))
    return {name: int(spec.shape[1]) * int(spec.shape[2]) for name, spec in outputs.items()}
