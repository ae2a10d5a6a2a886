"""The default style image: a swirling "brush stroke" painting made here, with NumPy.

Line integral convolution (Cabral & Leedom 1993) smears white noise along a flow field
of a few vortices, which gives stroke-like streaks; a blue-to-gold palette colours them
by the distance to the vortex centres. Nothing is downloaded or shipped.
"""

from __future__ import annotations

import numpy as np

# Night blue → cobalt → teal → pale yellow → gold.
PALETTE = np.array([[0.05, 0.08, 0.25], [0.10, 0.25, 0.60], [0.20, 0.50, 0.65],
                    [0.95, 0.90, 0.55], [0.95, 0.70, 0.15]], dtype=np.float32)


def _flow_field(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit flow vectors (dy, dx) and a 0–1 "glow" near the vortex centres."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    flow_y = 0.15 * np.sin(6.0 * x)
    flow_x = np.full_like(x, 0.6)
    glow = np.zeros_like(x)
    for _ in range(5):
        cy, cx = rng.uniform(0.15, 0.85, 2)
        radius = rng.uniform(0.08, 0.2)
        spin = rng.choice([-1.0, 1.0]) * rng.uniform(2.0, 4.0)
        weight = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * radius ** 2))
        flow_y += spin * weight * (x - cx) / radius
        flow_x -= spin * weight * (y - cy) / radius
        glow = np.maximum(glow, weight)
    norm = np.sqrt(flow_y ** 2 + flow_x ** 2) + 1e-6
    return flow_y / norm, flow_x / norm, glow


def swirl_painting(size: int = 512, seed: int = 0, stroke_width: int = 3,
                   stroke_length: int = 20) -> np.ndarray:
    """A (size, size, 3) float32 image in [0, 1] of swirling strokes."""
    rng = np.random.default_rng(seed)
    flow_y, flow_x, glow = _flow_field(size, rng)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    # Noise in stroke_width-pixel blocks: the streaks come out about that wide.
    blocks = rng.random((size // stroke_width + 1,) * 2, dtype=np.float32)
    noise = blocks[rows.astype(np.int32) // stroke_width, cols.astype(np.int32) // stroke_width]
    streaks = noise.copy()
    for direction in (1.0, -1.0):  # follow the streamline both ways from each pixel
        y, x = rows.copy(), cols.copy()
        for _ in range(stroke_length):
            iy = np.clip(y.astype(np.int32), 0, size - 1)
            ix = np.clip(x.astype(np.int32), 0, size - 1)
            y += direction * flow_y[iy, ix]
            x += direction * flow_x[iy, ix]
            streaks += noise[np.clip(y.astype(np.int32), 0, size - 1),
                             np.clip(x.astype(np.int32), 0, size - 1)]
    streaks /= 2 * stroke_length + 1
    streaks = (streaks - streaks.mean()) / (streaks.std() + 1e-6)  # contrast of the strokes
    tone = np.clip(0.25 + 0.75 * glow + 0.12 * streaks, 0.0, 1.0) * (len(PALETTE) - 1)
    low = np.floor(tone).astype(np.int32)
    high = np.minimum(low + 1, len(PALETTE) - 1)
    fraction = (tone - low)[..., None]
    colors = PALETTE[low] * (1 - fraction) + PALETTE[high] * fraction
    return np.clip(colors * (1.0 + 0.15 * streaks[..., None]), 0.0, 1.0).astype(np.float32)
