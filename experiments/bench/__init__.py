"""Benchmarks, one module per family: `python -m experiments.bench.<name>` (docs/benchmarks.md)."""
