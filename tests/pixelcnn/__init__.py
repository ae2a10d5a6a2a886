"""Tests of `pixelcnn`."""
