"""Generative adversarial networks (Goodfellow et al. 2014) with the k-step schedule of Algorithm 1."""

import common  # noqa: F401  (first: TensorFlow then starts without its C++ log lines)
