"""PixelCNN: an exact likelihood, one pixel at a time (van den Oord et al. 2016)."""
