"""experiments.bench.gpu, the prepared GPU check, at tiny settings on the CPU: every figure is
measured, positive and written out (what it measures is meaningless at this size)."""

from __future__ import annotations

import json
import math

import pytest

from experiments.bench.gpu import FAMILIES, main


@pytest.mark.slow
def test_the_gpu_check_measures_every_figure_at_tiny_settings(tmp_path, data_dir, vgg19_weights):
    results = main(["--nst-size", "32", "--nst-iterations", "2", "--steps", "1", "--adain-size", "32",
                    "--adain-batch", "1", "--data-dir", data_dir, "--out", str(tmp_path / "gpu.json")])
    assert json.loads((tmp_path / "gpu.json").read_text())["device"] == results["device"]
    assert results["device"].startswith("CPU") and results["mixed_precision"] == "mixed_bfloat16"
    rates = results["training_images_per_second"]
    assert set(rates) == set(FAMILIES)
    figures = [*(r[p] for r in rates.values() for p in ("float32", "mixed")),
               *results["style_transfer_seconds"].values(), results["adain_steps_per_second"]]
    assert len(figures) == 2 * len(FAMILIES) + 3 and all(math.isfinite(f) and f > 0 for f in figures)
