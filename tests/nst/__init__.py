"""Tests of `nst`."""
