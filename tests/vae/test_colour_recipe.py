"""vae.train's default recipe: colour data get recipes/vae/colour.json under the user's
flags, the digits and `--recipe paper` the plain defaults."""

from __future__ import annotations

import json

from common.config import parse_settings
from common.data_settings import RECIPES
from vae.train import Settings

COLOUR = json.loads((RECIPES / "vae" / "colour.json").read_text())


def parse(*flags: str) -> Settings:
    return parse_settings(Settings, list(flags), "vae.train")


def test_colour_data_get_the_recipe_and_flags_override_it():
    settings = parse("--dataset", "emoji", "--nll-every", "3")
    assert settings.recipe == "colour" and settings.nll_every == 3
    assert {name: getattr(settings, name) for name in COLOUR if name != "nll_every"} == \
        {name: value for name, value in COLOUR.items() if name != "nll_every"}


def test_digits_and_recipe_paper_keep_the_plain_defaults():
    plain = Settings()
    for flags in (["--dataset", "mnist"], ["--dataset", "shapes", "--recipe", "paper"]):
        settings = parse(*flags)
        assert settings.recipe == "paper" and (settings.epochs, settings.nll_every) == (plain.epochs, plain.nll_every)
    assert (parse("--dataset", "mnist").arch, parse("--dataset", "shapes", "--recipe", "paper").arch) == ("mlp", "conv")
