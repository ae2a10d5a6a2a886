"""Denoising diffusion (Ho et al. 2020), DDIM-sampled (Song et al. 2021): `python -m diffusion.train`."""

import common  # noqa: F401  (first: TensorFlow then starts without its C++ log lines)
