"""Experiments across packages: the feature classifier and the comparison of generative models."""

import common  # noqa: F401  (first: TensorFlow then starts without its C++ log lines)
