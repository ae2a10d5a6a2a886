"""Tests of `common.evaluation`."""
