"""Shared mechanics for the nst, vae and gan packages: images, data, run folders, logging."""

import os

# TensorFlow's C++ start-up chatter (CPU feature notes, missing CUDA) hides real output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
