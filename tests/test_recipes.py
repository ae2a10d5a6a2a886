"""Every recipe file is a valid `--config` of its program: known settings only, values that
pass the program's own validation. recipes/<family>/<dataset>.json configures
`<family>.train`; recipes/nst/<program>_<name>.json configures `nst.<program>` (`nst.fast`: its `train`)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from common.config import parse_settings
from tests.helpers import ROOT

RECIPES = sorted((ROOT / "recipes").glob("*/*.json"))
INPUTS = {"nst.fast": ["--style", "painting.jpg", "--content-dir", "photos"]}  # given beside the recipe


def test_there_are_recipes_for_every_trainer_family():
    assert {path.parent.name for path in RECIPES} >= {"vae", "gan", "pixelcnn"}


def program_of(path: Path) -> str:
    family = path.parent.name
    return f"nst.{path.stem.split('_')[0]}" if family == "nst" else f"{family}.train"


@pytest.mark.parametrize("path", RECIPES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_a_recipe_loads_and_validates_as_its_programs_config(path: Path):
    program = program_of(path)
    module = importlib.import_module(program)
    settings_class = getattr(module, "Settings", None) or module.TrainSettings
    settings = parse_settings(settings_class, ["--config", str(path), *INPUTS.get(program, [])], program)
    for name, value in json.loads(path.read_text()).items():
        assert getattr(settings, name) == value, name  # nothing renamed or dropped on the way
