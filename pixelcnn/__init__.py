"""PixelCNN: an exact likelihood, one pixel at a time (van den Oord et al. 2016)."""

import common  # noqa: F401  (first: TensorFlow then starts without its C++ log lines)
