"""Experiments across packages: the feature classifier and the comparison of generative models."""
