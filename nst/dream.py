"""DeepDream: `python -m nst.dream --input photo.jpg --output dream.jpg`.

Mordvintsev, Olah & Tyka, "Inceptionism: Going Deeper into Neural Networks" (2015):
gradient *ascent* on the image to amplify the mean activation of chosen layers,
J(x) = Σ_l w_l · mean(a_l(x)). The standard refinements are all here: the image is
processed over several octaves from small to full size (the small ones shape large
structures); each step rolls the image by a random offset (jitter, so the pattern does
not lock onto the pixel grid); the gradient is normalised by its mean magnitude, so the
step size is in pixel units whatever the layer; pixels are kept in the valid range.
It uses the same VGG19 extractor as `nst.run`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.config import RunSettings, parse_settings, setting, settings_dict
from common.errors import UserError, run_cli
from common.images import load_image, resize, resize_long_side, save_image
from common.runs import locked_run, set_seed, write_metrics
from nst.layers import CONV_LAYERS, layer_index, parse_layer_weights, poolings_before, vgg19_weights
from nst.run import check_writable, default_content


@dataclass
class Settings(RunSettings):
    input: str | None = setting(None, "image to dream on (default: matplotlib's grace_hopper.jpg)")
    output: str | None = setting(None, "also write the result here (.png/.jpg); the run folder "
                                 "always gets output.png")
    size: int = setting(512, "long side of the output in pixels", positive=True)
    layers: list[str] = setting(["block4_conv3:1", "block5_conv1:0.5"],
                                "layers to amplify as name:weight")
    steps: int = setting(20, "gradient ascent steps per octave", positive=True)
    step_size: float = setting(1.5, "step in pixel units (0-255) per normalised gradient",
                               positive=True)
    octaves: int = setting(4, "number of octaves (image scales)", positive=True)
    octave_scale: float = setting(1.4, "size ratio between successive octaves", min=1.0)
    jitter: int = setting(32, "largest random roll in pixels before each step", min=0)
    vgg_weights: str | None = setting(None, "VGG19 no-top weights file (default: $VGG19_WEIGHTS, "
                                      "else Keras' 'imagenet' download)")

    def validate(self) -> None:
        self.layer_weights()
        if self.output is not None:
            check_writable(self.output)

    def layer_weights(self) -> dict[str, float]:
        """--layers as {name: weight}; a name alone weighs 1."""
        return parse_layer_weights(self.layers, "--layers", normalise=False)


def octave_shapes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """Image sizes from the smallest octave up to (height, width)."""
    return [(max(1, round(height / scale ** k)), max(1, round(width / scale ** k)))
            for k in reversed(range(octaves))]


class Dreamer:
    """One normalised gradient-ascent step on J(x) = Σ_l w_l·mean(a_l(x)), as a tf.function.

    The input signature leaves height and width free, so each octave reuses one trace.
    """

    def __init__(self, extractor, layer_weights: dict[str, float], step_size: float, jitter: int):
        import tensorflow as tf

        from nst.model import pixel_bounds

        self.extractor = extractor
        self.layer_weights = layer_weights
        lower, upper = pixel_bounds((3,))
        self.lower, self.upper = tf.constant(lower), tf.constant(upper)
        self.step_size, self.jitter = step_size, jitter
        self.step = tf.function(self._step, input_signature=[
            tf.TensorSpec((1, None, None, 3), tf.float32), tf.TensorSpec((2,), tf.int32)])
        self.objective = tf.function(self._objective, input_signature=[
            tf.TensorSpec((1, None, None, 3), tf.float32)])

    def _objective(self, image):
        import tensorflow as tf

        features = self.extractor(image, training=False)
        return tf.add_n([weight * tf.reduce_mean(tf.cast(features[name], tf.float32))
                         for name, weight in self.layer_weights.items()])

    def _step(self, image, shift):
        import tensorflow as tf

        rolled = tf.roll(image, shift=shift, axis=[1, 2])
        with tf.GradientTape() as tape:
            tape.watch(rolled)
            value = self._objective(rolled)
        gradient = tape.gradient(value, rolled)
        gradient /= tf.reduce_mean(tf.abs(gradient)) + 1e-8
        rolled = tf.clip_by_value(rolled + self.step_size * gradient, self.lower, self.upper)
        return tf.roll(rolled, shift=-shift, axis=[1, 2]), value


def dream(dreamer: Dreamer, image: np.ndarray, shapes: list[tuple[int, int]], steps: int,
          rng: np.random.Generator, on_octave=None) -> np.ndarray:
    """Run `steps` ascent steps at each octave shape in turn; RGB [0, 1] in and out.

    Between octaves the dreamed details are carried up: the next octave starts from the
    original at that size plus the upsampled difference the previous octaves added.
    """
    from nst.model import deprocess, preprocess

    detail = np.zeros((*shapes[0], 3), np.float32)
    result = image
    for octave, (height, width) in enumerate(shapes):
        base = resize(image, height, width)
        detail = resize_signed(detail, height, width)
        current = preprocess(np.clip(base + detail, 0.0, 1.0))[None]
        for _ in range(steps):
            shift = rng.integers(-dreamer.jitter, dreamer.jitter + 1, size=2).astype(np.int32)
            current, _ = dreamer.step(current, shift)
        result = np.clip(deprocess(current.numpy()[0]), 0.0, 1.0)
        detail = result - base
        if on_octave is not None:
            on_octave(octave, result)
    return result


def resize_signed(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """`resize` for signed data (the detail layer may be negative)."""
    low, high = float(image.min(initial=0.0)), float(image.max(initial=0.0))
    if high - low < 1e-12:
        return np.full((height, width, image.shape[2]), low, np.float32)
    return resize((image - low) / (high - low), height, width) * (high - low) + low


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(Settings, argv, __doc__.split("\n\n")[0], prog="python -m nst.dream")
    layer_weights = settings.layer_weights()
    picture = default_content() if settings.input is None else load_image(settings.input)
    picture = resize_long_side(picture, settings.size)
    shapes = octave_shapes(*picture.shape[:2], settings.octaves, settings.octave_scale)
    deepest = CONV_LAYERS[max(layer_index(name) for name in layer_weights)]
    if min(shapes[0]) < 2 ** poolings_before(deepest):
        raise UserError(f"--size {settings.size} with {settings.octaves} octaves is too small "
                        f"for {deepest}: fewer octaves or a larger size")
    weights = vgg19_weights(settings.vgg_weights)

    import keras

    from nst.model import feature_extractor, load_vgg19

    set_seed(settings.seed, settings.deterministic)
    keras.mixed_precision.set_global_policy(settings.precision)
    extractor = feature_extractor(load_vgg19(weights), list(layer_weights))
    with locked_run("dream", settings) as run_dir:
        dream_into(settings, run_dir, extractor, picture, shapes, layer_weights)


def dream_into(settings: Settings, run_dir: Path, extractor: Any, picture: np.ndarray,
               shapes: list[tuple[int, int]], layer_weights: dict[str, float]) -> None:
    """Dream on `picture` octave by octave, writing the outputs, TensorBoard images and
    metrics into the run folder."""
    from common.tensorboard import TensorBoardLogger
    from nst.model import preprocess

    logger = TensorBoardLogger(run_dir)
    logger.config(settings_dict(settings))
    logger.image("input", picture, 0)
    dreamer = Dreamer(extractor, layer_weights, settings.step_size, settings.jitter)

    def on_octave(octave: int, image: np.ndarray) -> None:
        logger.image("octaves", image, octave + 1)
        if not settings.quiet:
            print(f"octave {octave + 1}/{len(shapes)} at {image.shape[1]}x{image.shape[0]} done",
                  flush=True)

    started = time.perf_counter()
    result = dream(dreamer, picture, shapes, settings.steps, np.random.default_rng(settings.seed),
                   on_octave)
    seconds = time.perf_counter() - started
    before = float(dreamer.objective(preprocess(picture)[None]))
    after = float(dreamer.objective(preprocess(result)[None]))
    outputs = [run_dir / "output.png"] + ([Path(settings.output)] if settings.output else [])
    for path in outputs:
        save_image(path, result)
    logger.close()
    write_metrics(run_dir, {"objective_before": before, "objective_after": after,
                            "seconds": seconds, "octaves": [list(s) for s in shapes],
                            "outputs": [str(path) for path in outputs]})
    if not settings.quiet:
        print(f"wrote {', '.join(map(str, outputs))}: objective {before:.3g} → {after:.3g} "
              f"in {seconds:.1f} s; run folder {run_dir}")


if __name__ == "__main__":
    run_cli(main)
