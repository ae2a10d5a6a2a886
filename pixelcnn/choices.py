"""The names `pixelcnn.train`'s flags accept (--arch, --likelihood).

Without TensorFlow, so that `python -m pixelcnn.train --help` and a bad flag answer before
it loads.
"""

ARCHITECTURES = ("gated", "plain")
LIKELIHOODS = ("bernoulli", "categorical")
