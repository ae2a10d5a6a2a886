"""common.config and common.runs: the CLI made from a dataclass, run folders, seeds."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
import pytest

from common.config import RunSettings, build_parser, parse_settings, setting
from common.errors import UserError
from common.files import write_json
from common.runs import create_run, load_run_config, run_dir_for, set_seed


@dataclass
class Demo(RunSettings):
    size: int = setting(512, "long side in pixels", positive=True)
    optimizer: str = setting("lbfgs", "optimizer", choices=("lbfgs", "adam"))
    blend: list[float] = setting([1.0], "blend weights", min=0)
    rate: float = setting(1.0, "learning rate", positive=True)
    init: str | None = setting(None, "init image")
    preserve_color: bool = setting(False, "keep the content's colours")
    models: list[dict] = setting([{"model": "vae"}], "model specs as JSON objects")

    def validate(self) -> None:
        if sum(self.blend) == 0:
            raise UserError("--blend: weights are all zero")


def parse(*argv: str) -> Demo:
    return parse_settings(Demo, list(argv), "demo")


def test_defaults_and_typed_flags():
    assert parse() == Demo()
    s = parse("--size", "64", "--optimizer", "adam", "--blend", "0.7", "0.3",
              "--init", "a.png", "--preserve-color", "--seed", "3")
    assert (s.size, s.optimizer, s.blend, s.init, s.preserve_color, s.seed) == \
        (64, "adam", [0.7, 0.3], "a.png", True, 3)
    assert parse("--preserve-color", "--no-preserve-color").preserve_color is False


@pytest.mark.parametrize("argv, fragment", [
    (["--size", "0"], "--size: must be greater than 0"),
    (["--size", "-5"], "--size: must be greater than 0"),
    (["--size", "abc"], "--size: expected an integer"),
    (["--size", "2.5"], "--size: expected an integer"),
    (["--optimizer", "sgd"], "'sgd' is not one of lbfgs, adam"),
    (["--rate", "nan"], "--rate: must be a finite number"),
    (["--rate", "inf"], "--rate: must be a finite number"),
    (["--blend", "-1"], "--blend: must be at least 0"),
    (["--blend", "0", "0"], "weights are all zero"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
])
def test_invalid_values_are_rejected_before_work(argv, fragment):
    with pytest.raises(UserError) as info:
        parse(*argv)
    assert fragment in str(info.value)


def test_json_object_settings_from_a_file_or_the_command_line(tmp_path):
    path = tmp_path / "c.json"
    write_json(path, {"models": [{"model": "gan", "args": ["--k", "2"]}, {"model": "vae"}]})
    assert parse("--config", str(path)).models == [{"model": "gan", "args": ["--k", "2"]},
                                                   {"model": "vae"}]
    assert parse("--models", '{"model": "gan"}').models == [{"model": "gan"}]
    for argv, fragment in [(["--models", "{model: gan}"], "--models: expected a JSON object"),
                           (["--models", "[1]"], "--models: expected a JSON object")]:
        with pytest.raises(UserError, match=fragment):
            parse(*argv)
    write_json(path, {"models": ["gan"]})
    with pytest.raises(UserError, match="--models: expected a JSON object, got 'gan'"):
        parse("--config", str(path))


def test_config_file_loads_and_flags_override(tmp_path):
    path = tmp_path / "c.json"
    write_json(path, {"size": 128, "optimizer": "adam", "blend": [1, 3]})
    s = parse("--config", str(path), "--size", "256")
    assert (s.size, s.optimizer, s.blend) == (256, "adam", [1.0, 3.0])


@pytest.mark.parametrize("content, fragment", [
    ({"sise": 1}, "unknown setting(s) sise"),
    ({"size": -1}, "--size: must be greater than 0"),
    ({"size": "big"}, "--size: expected an integer"),
    ({"preserve_color": "yes"}, "expected true or false"),
    ([1, 2], "expected a JSON object"),
])
def test_bad_config_files(tmp_path, content, fragment):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(content))
    with pytest.raises(UserError) as info:
        parse("--config", str(path))
    assert fragment in str(info.value)


def test_config_file_that_is_not_json(tmp_path):
    (tmp_path / "c.json").write_text("{size: 3")
    with pytest.raises(UserError, match="not valid JSON"):
        parse("--config", str(tmp_path / "c.json"))
    with pytest.raises(UserError, match="no such config file"):
        parse("--config", str(tmp_path / "missing.json"))


def test_help_lists_every_flag_with_its_default():
    text = build_parser(Demo, "demo").format_help()
    for flag, default in [("--size", "512"), ("--optimizer", "lbfgs"), ("--blend", "[1.0]"),
                          ("--seed", "0"), ("--run-dir", "None"), ("--preserve-color", "False"),
                          ("--config", "")]:
        assert flag in text and f"(default: {default}" in text if default else flag in text


def test_run_folder_layout_and_config(tmp_path):
    settings = parse("--run-dir", str(tmp_path / "r1"), "--seed", "9")
    path = create_run("demo", settings)
    config = json.loads((path / "config.json").read_text())
    assert config["model"] == "demo" and config["settings"]["seed"] == 9
    assert {"python", "tensorflow", "keras", "numpy"} <= set(config["versions"])
    assert f", {os.cpu_count()} logical CPUs" in config["versions"]["cpu"]  # the machine its minutes ran on
    with pytest.raises(UserError, match="already holds a run"):
        create_run("demo", settings)
    assert create_run("demo", settings, resume=True) == path
    with pytest.raises(UserError, match="is a 'demo' run, not a 'vae' run"):
        load_run_config(path, "vae")
    with pytest.raises(UserError, match="no such run folder"):
        create_run("demo", parse("--run-dir", str(tmp_path / "none")), resume=True)


def test_default_run_folder_is_under_runs_model_name():
    assert run_dir_for("vae", parse("--name", "first")).as_posix() == "runs/vae/first"
    assert run_dir_for("vae", parse()).parent.as_posix() == "runs/vae"


def test_seed_makes_numpy_and_tensorflow_repeatable():
    import tensorflow as tf

    set_seed(4)
    first = (np.random.rand(3), tf.random.uniform([3]).numpy())
    set_seed(4)
    second = (np.random.rand(3), tf.random.uniform([3]).numpy())
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_json_writes_nan_as_null(tmp_path):
    write_json(tmp_path / "m.json", {"loss": float("nan"), "values": [1.0, float("inf")],
                                     "n": np.int64(3)})
    assert json.loads((tmp_path / "m.json").read_text()) == {"loss": None, "values": [1.0, None],
                                                             "n": 3}


def test_slerp_keeps_the_endpoints_and_the_great_circle():
    from common.latent import slerp

    a, b = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    path = slerp(a, b, np.linspace(0.0, 1.0, 5))
    np.testing.assert_allclose(path[[0, -1]], [a, b], atol=1e-12)
    # Halfway between orthogonal vectors: (sin(π/4)·a + sin(π/4)·b) / sin(π/2).
    np.testing.assert_allclose(path[2], np.sin(np.pi / 4) * (a + b), atol=1e-12)
    np.testing.assert_allclose(slerp(a, 3 * a, np.array([0.5])), [2 * a])  # parallel: a straight line


def test_first_line_of_an_error():
    from common.errors import first_line

    assert first_line(ValueError("bad value\nmore detail")) == "bad value"
    assert first_line(KeyError()) == "KeyError"


def test_label_by_index_or_by_a_recorded_class_name(tmp_path):
    from common.conditioning import label_index
    from common.errors import UserError

    (tmp_path / "metrics.json").write_text('{"classes": ["flags", "food_drink", "objects"]}')
    assert label_index(None, tmp_path) is None and label_index("2", tmp_path) == 2
    assert label_index("food_drink", tmp_path) == 1
    with pytest.raises(UserError, match="'food' is not a class of .*its classes: flags, food_drink, objects"):
        label_index("food", tmp_path)
    (tmp_path / "metrics.json").write_text('{"classes": []}')
    with pytest.raises(UserError, match="none recorded, so give an index"):
        label_index("seven", tmp_path)
