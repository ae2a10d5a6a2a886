"""Variational autoencoder (Kingma & Welling 2013) with an importance-weighted test likelihood."""
