"""experiments.scripts.gan_probes: G fitted by regression draws its targets; a fresh D is trained
against a frozen G; bad input is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from experiments.scripts import gan_probes
from gan.model import build_generator


def test_regression_brings_the_generator_to_its_targets():
    targets = np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)).astype(np.float32)
    noise = np.random.default_rng(1).normal(size=(4, 100)).astype(np.float32)
    generator = build_generator("dcgan", 100, "linear", (8, 8, 3), width=8)
    before = float(np.mean((generator(noise, training=True).numpy() - targets) ** 2))
    after = gan_probes.fit_generator(generator, targets, noise, steps=300, seed=0)
    assert after < 0.2 * before


def test_draw_writes_outputs_beside_targets(tmp_path, capsys):
    out = tmp_path / "draw.png"
    gan_probes.main(["draw", "--image-size", "8", "--width", "4", "--images", "40", "--steps", "1",
                     "--out", str(out)])
    # 32 pairs in 16 columns: 4 rows of 8-pixel images with 2-pixel borders.
    assert Image.open(out).size == (16 * 10 + 2, 4 * 10 + 2)
    assert "beside their targets" in capsys.readouterr().out


def test_separate_trains_a_fresh_discriminator_against_a_saved_generator(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"model": "gan", "settings": {}}))
    build_generator("dcgan", 100, "linear", (8, 8, 3), width=4).save(tmp_path / "generator.keras")
    gan_probes.main(["separate", "--run", str(tmp_path), "--raw", "--image-size", "8", "--width", "4",
                     "--steps", "100"])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("step 100: D right on") and line.endswith("of G's samples")


@pytest.mark.parametrize("argv, fragment", [
    (["separate"], "needs --run"),
    (["separate", "--run", "missing"], "no such run folder"),
    (["draw", "--steps", "0"], "must be greater than 0"),
    (["draw", "--out", "draw.gif"], "--out draw.gif"),
])
def test_bad_input_is_a_user_error(argv, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=fragment):
        gan_probes.main(argv)


def test_a_damaged_generator_file_is_a_user_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model": "gan", "settings": {}}))
    (tmp_path / "generator.keras").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="cannot load the generator"):
        gan_probes.main(["separate", "--run", str(tmp_path), "--raw"])
