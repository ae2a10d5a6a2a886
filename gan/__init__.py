"""Generative adversarial networks (Goodfellow et al. 2014) with the k-step schedule of Algorithm 1."""
