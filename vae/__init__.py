"""Variational autoencoder (Kingma & Welling 2013) with an importance-weighted test likelihood."""

import common  # noqa: F401  (first: TensorFlow then starts without its C++ log lines)
