"""Tests of `gan`."""
