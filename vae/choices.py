"""The names `vae.train`'s flags accept (--arch, --objective, --likelihood).

Without TensorFlow, so that `python -m vae.train --help` and a bad flag answer before it loads.
"""

ARCHITECTURES = ("mlp", "conv")
OBJECTIVES = ("elbo", "iwae")
LIKELIHOODS = ("bernoulli", "continuous-bernoulli", "logistic")
