"""gan.train's default recipe: colour data get recipes/gan/colour.json under the user's
flags and config, the digits and `--recipe paper` Radford et al.'s plain defaults."""

from __future__ import annotations

import json

import pytest

from common.config import parse_settings
from common.data_settings import RECIPES, announce_recipe
from gan.train import Settings

COLOUR = json.loads((RECIPES / "gan" / "colour.json").read_text())
PLAIN = Settings()


def parse(*flags: str) -> Settings:
    return parse_settings(Settings, list(flags), "gan.train")


@pytest.mark.parametrize("dataset", ["shapes", "emoji", "cifar10", "folder:/some/icons"])
def test_colour_data_get_the_colour_recipe(dataset):
    settings = parse("--dataset", dataset)
    assert settings.recipe == "colour"
    for name, value in COLOUR.items():
        assert getattr(settings, name) == value, name
    assert COLOUR["upsample"] != PLAIN.upsample  # the recipe does change something


def test_digits_and_recipe_paper_keep_the_plain_defaults():
    for flags in (["--dataset", "mnist"], ["--dataset", "shapes", "--recipe", "paper"],
                  ["--dataset", "shapes", "--channels", "1"]):
        settings = parse(*flags)
        assert settings.recipe == "paper", flags
        assert [getattr(settings, name) for name in COLOUR] == [getattr(PLAIN, name) for name in COLOUR]
    assert parse("--dataset", "mnist", "--recipe", "colour").upsample == COLOUR["upsample"]


def test_flags_and_config_files_override_the_recipe(tmp_path):
    settings = parse("--dataset", "emoji", "--upsample", "transposed", "--ema", "0.99")
    assert (settings.upsample, settings.ema, settings.downsample) == ("transposed", 0.99, COLOUR["downsample"])
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"dataset": "shapes", "width": 48}))
    settings = parse("--config", str(config))
    assert (settings.width, settings.recipe, settings.upsample) == (48, "colour", COLOUR["upsample"])


def test_the_mlp_drops_the_recipes_convolution_settings():
    settings = parse("--dataset", "emoji", "--arch", "mlp", "--image-size", "28")
    assert (settings.upsample, settings.downsample, settings.width) == (PLAIN.upsample, PLAIN.downsample, PLAIN.width)
    assert settings.ema == COLOUR["ema"]


def test_the_start_line_names_the_recipe_file_and_the_way_back(capsys):
    announce_recipe(parse("--dataset", "emoji"), "gan", "Radford et al.'s DCGAN")
    assert capsys.readouterr().out == ("recipe: colour (recipes/gan/colour.json; flags override it); "
                                       "--recipe paper for Radford et al.'s DCGAN\n")
    for settings in (parse("--dataset", "mnist"), parse("--dataset", "emoji", "--quiet"), Settings()):
        announce_recipe(settings, "gan", "Radford et al.'s DCGAN")
        assert capsys.readouterr().out == ""
