"""Every comparison config in experiments/configs/ is a valid `experiments.compare --config`,
and each model's flags are valid settings of its trainer under the comparison's budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import parse_settings
from common.errors import UserError
from experiments.compare import plan_runs
from experiments.spec import Settings
from tests.helpers import ROOT

CONFIGS = sorted((ROOT / "experiments" / "configs").glob("*.json"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_a_config_and_its_models_flags_parse(path: Path, tmp_path):
    settings = parse_settings(Settings, ["--config", str(path), "--out", str(tmp_path / "out")],
                              "experiments.compare")
    for runs in plan_runs(settings).values():  # every model's flags parsed by its trainer
        for _, run_segments in runs:
            for minutes, trained in run_segments:
                assert (trained.dataset, trained.epochs) == (settings.dataset, settings.epochs)
                assert trained.image_size == settings.image_size and trained.max_minutes == minutes
            assert [minutes for minutes, _ in run_segments] == [*(settings.points or []), settings.minutes]


def test_only_keeps_the_models_named_or_of_the_families_named(tmp_path):
    args = ["--config", str(ROOT / "experiments" / "configs" / "mnist_families.json"), "--out", str(tmp_path)]
    settings = parse_settings(Settings, [*args, "--only", "pixelcnn", "GAN (50 clusters, EMA)"], "compare")
    assert [spec["model"] for spec in settings.models] == ["gan", "pixelcnn"]  # in the config's order
    assert list(plan_runs(settings)) == ["GAN (50 clusters, EMA)", "PixelCNN (gated, 6 layers)"]
    with pytest.raises(UserError, match=r"--only: no model is named 'GAN'; the models: 'VAE .*\(vae\)"):
        parse_settings(Settings, [*args, "--only", "GAN"], "compare")
