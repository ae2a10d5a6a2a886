"""VGG19's conv layer names and activation sizes: plain Python, so the command line can
check layer names and memory before TensorFlow is even imported."""

from __future__ import annotations

import math
import os

from common.errors import UserError

# The 16 conv layers of VGG19 in order; a 2×2 pooling layer ends each block.
CONV_LAYERS = tuple(f"block{block}_conv{conv}"
                    for block, convs in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
                    for conv in range(1, convs + 1))


def layer_index(name: str) -> int:
    """Position of a conv layer in CONV_LAYERS; an unknown name is a `UserError`."""
    if name not in CONV_LAYERS:
        raise UserError(f"unknown layer {name!r}; VGG19 has {', '.join(CONV_LAYERS)}")
    return CONV_LAYERS.index(name)


def parse_layer_weights(items: list[str], flag: str, normalise: bool = True) -> dict[str, float]:
    """`name:weight` items (a name alone weighs 1) → {name: weight}, summing to 1 if `normalise`.

    Unknown layers, malformed or negative weights and all-zero weights are `UserError`s.
    """
    weights: dict[str, float] = {}
    for item in items:
        name, _, weight = item.partition(":")
        layer_index(name)
        try:
            weights[name] = float(weight) if weight else 1.0
        except ValueError:
            raise UserError(f"{flag}: {item!r} is not name:weight") from None
        if weights[name] < 0 or not math.isfinite(weights[name]):
            raise UserError(f"{flag}: weight of {name} must be a non-negative number")
    total = sum(weights.values())
    if total == 0:
        raise UserError(f"{flag}: the layer weights are all zero")
    return {name: weight / total if normalise else weight for name, weight in weights.items()}


def poolings_before(name: str) -> int:
    """How many 2×2 poolings the input goes through before reaching layer `name`."""
    return int(name[len("block")]) - 1


def activation_bytes(height: int, width: int, deepest_layer: str) -> int:
    """Rough peak memory of one loss-and-gradient pass's activations at (height, width).

    Sums the activation sizes of every layer up to `deepest_layer` and counts each about
    four times over (forward output kept for the backward pass, its gradient, ReLU mask
    and the convolution workspace).
    """
    total = 0
    h, w = height, width
    for name in CONV_LAYERS[:layer_index(deepest_layer) + 1]:
        block, conv = int(name[5]), int(name[-1])
        channels = 64 * 2 ** min(block - 1, 3)
        if conv == 1 and block > 1:  # after a 2×2 pooling layer
            h, w = max(h // 2, 1), max(w // 2, 1)
            total += h * w * channels // 2
        total += h * w * channels
    return int(total * 4 * 4)


# The 80 MB of VGG19 weights and about 1 GB of TensorFlow itself.
FIXED_OVERHEAD_BYTES = int(80e6 + 1e9)


def estimate_memory_bytes(height: int, width: int, deepest_layer: str) -> int:
    """Rough peak memory of one untiled loss-and-gradient pass at (height, width), in bytes:
    the activations plus the fixed overhead."""
    return activation_bytes(height, width, deepest_layer) + FIXED_OVERHEAD_BYTES


def vgg19_weights(path: str | None = None) -> str:
    """The VGG19 weights to load: `path` (--vgg-weights), else $VGG19_WEIGHTS, else Keras'
    'imagenet' download."""
    return path or os.environ.get("VGG19_WEIGHTS") or "imagenet"
