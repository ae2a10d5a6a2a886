"""Tests of `vae`."""
