"""Where the tiles of `nst.tiles` go, in plain Python (so the command line can check
--max-memory before TensorFlow loads): the receptive-field halo, pooling-aligned cores and
the largest core whose tile fits a memory budget."""

from __future__ import annotations

import math
from dataclasses import dataclass

from common.errors import UserError
from nst.layers import CONV_LAYERS, activation_bytes, layer_index, poolings_before


def receptive_radius(deepest: str) -> int:
    """Input pixels on each side that a position of `deepest` can depend on (conservative)."""
    radius, stride = 0, 1
    for name in CONV_LAYERS[:layer_index(deepest) + 1]:
        if name.endswith("conv1") and not name.startswith("block1"):
            radius += stride  # a 2×2 pooling window reaches one (previous) stride further
            stride *= 2
        radius += stride  # a 3×3 convolution reaches one stride further
    return radius


@dataclass(frozen=True)
class Tiling:
    """Square cores of `core` pixels with a `halo`; both multiples of `align`."""

    core: int
    halo: int
    align: int

    @classmethod
    def for_layer(cls, deepest: str, core: int) -> Tiling:
        align = 2 ** poolings_before(deepest)
        halo = math.ceil(receptive_radius(deepest) / align) * align
        return cls(math.ceil(core / align) * align, halo, align)

    def tiles(self, height: int, width: int) -> list[tuple[tuple[int, int, int, int],
                                                           tuple[int, int, int, int]]]:
        """Per tile: (top, left, bottom, right) of the tile with its halo, in the image, and
        of its core, relative to the tile."""
        result = []
        for top in range(0, height, self.core):
            for left in range(0, width, self.core):
                bottom, right = min(top + self.core, height), min(left + self.core, width)
                outer = (max(top - self.halo, 0), max(left - self.halo, 0),
                         min(bottom + self.halo, height), min(right + self.halo, width))
                result.append((outer, (top - outer[0], left - outer[1],
                                       bottom - outer[0], right - outer[1])))
        return result


def choose_tiling(height: int, width: int, deepest: str, budget: int) -> Tiling | None:
    """The largest tiling whose one tile's activations fit `budget` bytes; None if the whole
    image fits. A budget below the smallest tile is a `UserError`."""
    if activation_bytes(height, width, deepest) <= budget:
        return None
    smallest = Tiling.for_layer(deepest, 1)
    side = smallest.align + 2 * smallest.halo
    if activation_bytes(side, side, deepest) > budget:
        raise UserError(f"--max-memory {budget / 2**20:.0f} MiB is below what one tile needs "
                        f"({activation_bytes(side, side, deepest) / 2**20:.0f} MiB for a "
                        f"{side}x{side} tile to {deepest})")
    core = smallest.align
    while activation_bytes(core + smallest.align + 2 * smallest.halo,
                           core + smallest.align + 2 * smallest.halo, deepest) <= budget:
        core += smallest.align
    return Tiling.for_layer(deepest, core)
