"""Every recipe file (recipes/<family>/<dataset>.json) is a valid `--config` of its family's
trainer: known settings only, values that pass the trainer's own validation."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from common.config import parse_settings
from tests.helpers import ROOT

RECIPES = sorted((ROOT / "recipes").glob("*/*.json"))


def test_there_are_recipes_for_every_trainer_family():
    assert {path.parent.name for path in RECIPES} >= {"vae", "gan", "pixelcnn"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_a_recipe_loads_and_validates_as_its_trainers_config(path: Path):
    family = path.parent.name
    settings = parse_settings(importlib.import_module(f"{family}.train").Settings, ["--config", str(path)],
                              f"{family}.train")
    for name, value in json.loads(path.read_text()).items():
        assert getattr(settings, name) == value, name  # nothing renamed or dropped on the way
