"""What the conv networks of `vae/` and `gan/` share: how many stride-2 stages an image takes."""

from __future__ import annotations

from common.errors import UserError

MNIST_SHAPE = (28, 28, 1)


def conv_levels(image_shape: tuple[int, int, int], arch: str) -> int:
    """Stride-2 stages of the conv networks for (H, W, C): at least 2, then more while both
    sides stay even and at least 4 after halving (28 → 2 stages from 7×7, 32 → 3 from 4×4,
    64 → 4 from 4×4, 12 → 2 from 3×3).

    The mlp networks take 28×28 only; H, W must be multiples of 4 and C 1 or 3, else a
    one-line `UserError`.
    """
    height, width, channels = image_shape
    if channels not in (1, 3):
        raise UserError(f"images have {channels} channels; the networks take 1 (grey) or 3 (RGB)")
    if arch == "mlp":
        if (height, width) != (28, 28):
            raise UserError(f"--arch mlp takes 28×28 images only, not {height}×{width}; use a "
                            "conv architecture")
        return 0
    if height % 4 or width % 4:
        raise UserError(f"{height}×{width} images: height and width must be multiples of 4")
    levels = 0
    while height % 2 == 0 and width % 2 == 0 and (levels < 2 or min(height, width) // 2 >= 4):
        height, width, levels = height // 2, width // 2, levels + 1
    return levels
