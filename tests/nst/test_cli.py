"""`python -m nst.run` end to end: real runs at tiny sizes, bad input, --help."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.images import load_image
from tests.helpers import assert_one_line_error

pytestmark = pytest.mark.slow  # trains models or runs whole programs


def run_nst(cli, tmp_path: Path, *args: str, weights: str | None = None):
    env = {"VGG19_WEIGHTS": weights} if weights else {}
    return cli("nst.run", "--run-dir", str(tmp_path / "run"), "--quiet", *args, env=env)


def test_help_lists_the_flags(cli):
    result = cli("nst.run", "--help")
    assert result.returncode == 0, result.stderr
    for flag in ("--content", "--style", "--style-blend", "--style-layers", "--optimizer",
                 "--init", "--scales", "--preserve-color", "--pooling", "--vgg-weights", "--force",
                 "--tol", "--style-mask", "--max-memory"):
        assert flag in result.stdout


def test_style_loss_falls_by_a_large_factor(cli, tmp_path, vgg19_weights, asset_images):
    output = tmp_path / "out" / "styled.jpg"
    result = run_nst(cli, tmp_path, "--content", str(asset_images / "tubingen.jpg"),
                     "--style", str(asset_images / "starry_night.jpg"), "--size", "64",
                     "--iterations", "20", "--save-every", "10", "--output", str(output),
                     weights=vgg19_weights)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["iterations"] == 20
    assert metrics["final_style"] < metrics["initial_style"] / 20, metrics
    assert metrics["final_loss"] < metrics["initial_loss"] / 5, metrics
    assert load_image(output).shape == (48, 64, 3)
    run = tmp_path / "run"
    assert (run / "config.json").is_file() and (run / "output.png").is_file()
    assert sorted(p.name for p in (run / "images").iterdir()) == ["iteration_00010.jpg",
                                                                  "iteration_00020.jpg"]
    assert list((run / "tensorboard" / "train").glob("events.out.tfevents.*"))


def test_default_run_needs_no_files(cli, tmp_path, vgg19_weights):
    """No content or style given: matplotlib's sample photo and the generated swirl."""
    result = run_nst(cli, tmp_path, "--size", "48", "--iterations", "2", weights=vgg19_weights)
    assert result.returncode == 0, result.stderr[-3000:]
    assert load_image(tmp_path / "run" / "output.png").shape[0] == 48  # grace_hopper is portrait


def test_awkward_images_and_every_mode_together(cli, tmp_path, vgg19_weights):
    """EXIF-rotated JPEG content, 16-bit grey and RGBA styles, blend, colour, scales, Adam."""
    content = tmp_path / "rotated.jpg"
    pixels = np.zeros((40, 64, 3), np.uint8)
    pixels[:, :32] = 200
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    Image.fromarray(pixels).save(content, exif=exif)
    grey16 = tmp_path / "grey16.png"
    Image.fromarray((np.linspace(0, 65535, 48 * 48).reshape(48, 48)).astype(np.uint16)).save(grey16)
    rgba = tmp_path / "rgba.png"
    noise = np.random.default_rng(0).integers(0, 255, (48, 48, 4), np.uint8)
    Image.fromarray(noise, "RGBA").save(rgba)
    result = run_nst(cli, tmp_path, "--content", str(content), "--style", str(grey16), str(rgba),
                     "--style-blend", "0.7", "0.3", "--preserve-color", "--scales", "2",
                     "--optimizer", "adam", "--size", "64", "--iterations", "3", "2",
                     "--pooling", "avg", weights=vgg19_weights)
    assert result.returncode == 0, result.stderr[-3000:]
    assert load_image(tmp_path / "run" / "output.png").shape == (64, 40, 3)  # upright
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["iterations"] == 5  # 3 at 32 px, then 2 at 64 px
    assert len(metrics["loss_curve"]) == 5 and metrics["iterations_per_scale"] == [3, 2]


def test_non_finite_loss_stops_and_keeps_the_last_finite_image(cli, tmp_path, vgg19_weights,
                                                              asset_images):
    output = tmp_path / "out.png"
    result = run_nst(cli, tmp_path, "--content", str(asset_images / "tubingen.jpg"),
                     "--style", str(asset_images / "wave.jpg"), "--size", "32",
                     "--style-weight", "1e38", "--output", str(output), weights=vgg19_weights)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "loss became inf" in lines[0] and str(output) in lines[0]
    assert load_image(output).shape == (24, 32, 3)


def test_two_styles_in_two_regions_over_tiles(cli, tmp_path, vgg19_weights, asset_images):
    """A label mask, --preserve-color, two scales and a budget that forces tiles: it runs."""
    content = load_image(asset_images / "tubingen.jpg")
    labels = np.zeros(content.shape[:2], np.uint8)
    labels[: content.shape[0] // 2] = 255  # top half: the second (brightest) style
    Image.fromarray(labels).save(tmp_path / "labels.png")
    result = run_nst(cli, tmp_path, "--content", str(asset_images / "tubingen.jpg"),
                     "--style", str(asset_images / "starry_night.jpg"),
                     str(asset_images / "wave.jpg"), "--style-mask", str(tmp_path / "labels.png"),
                     "--preserve-color", "--scales", "2", "--size", "96", "--iterations", "4",
                     "--max-memory", "6M", "--style-layers", "block1_conv1", "block2_conv1",
                     "--content-layer", "block2_conv2", weights=vgg19_weights)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["final_style"] < metrics["initial_style"]
    assert load_image(tmp_path / "run" / "output.png").shape == (72, 96, 3)


def test_unusable_weights_file(cli, tmp_path, asset_images):
    weights = tmp_path / "vgg19.weights.h5"
    weights.write_bytes(b"\x89HDF\r\n" + b"\0" * 1000)
    result = run_nst(cli, tmp_path, "--size", "32", "--vgg-weights", str(weights),
                     "--output", str(tmp_path / "out.png"))
    assert_one_line_error(result, str(weights), "VGG19")
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    files = {"folder": folder / "a_folder", "text": folder / "notes.jpg",
             "empty": folder / "empty.png", "truncated": folder / "truncated.jpg",
             "a_file": folder / "a_file", "good": folder / "good.png",
             "wide_mask": folder / "wide_mask.png", "three_labels": folder / "three_labels.png"}
    files["folder"].mkdir()
    files["text"].write_text("this is not an image\n")
    files["empty"].write_bytes(b"")
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    Image.fromarray(noise).save(files["good"])
    Image.fromarray(noise).save(files["truncated"], quality=90)
    files["truncated"].write_bytes(files["truncated"].read_bytes()[:2000])
    files["a_file"].write_text("x")
    Image.fromarray(np.full((32, 64), 255, np.uint8)).save(files["wide_mask"])
    labels = np.zeros((64, 64), np.uint8)
    labels[:, 20:40], labels[:, 40:] = 128, 255
    Image.fromarray(labels).save(files["three_labels"])
    return files


BAD_INPUTS = [
    (["--content", "{missing}"], ["no such file"]),
    (["--content", "{folder}"], ["is a directory"]),
    (["--content", "{text}"], ["notes.jpg", "not an image"]),
    (["--content", "{empty}"], ["empty"]),
    (["--content", "{truncated}"], ["truncated.jpg", "truncated"]),
    (["--style", "{truncated}"], ["truncated.jpg"]),
    (["--init", "{missing}"], ["no such file"]),
    (["--size", "0"], ["--size", "greater than 0"]),
    (["--size=-64"], ["--size", "greater than 0"]),
    (["--size", "100000"], ["GiB", "--force"]),
    (["--content-layer", "relu4_2"], ["unknown layer", "relu4_2"]),
    (["--style-layers", "block1_conv1:0.5", "block9_conv1:0.5"], ["unknown layer", "block9_conv1"]),
    (["--style-layers", "block1_conv1:0", "block2_conv1:0"], ["all zero"]),
    (["--style", "{good}", "{good}", "--style-blend", "1"], ["--style-blend", "2 style"]),
    (["--style-blend", "0"], ["--style-blend"]),
    (["--content-weight", "0", "--style-weight", "0", "--tv-weight", "0"], ["all zero"]),
    (["--output", "{a_file}/out.png"], ["cannot write"]),
    (["--output", "{folder}/out.gif"], ["unsupported format"]),
    (["--content", "none", "--style", "none"], ["nothing to optimise"]),
    (["--optimizer", "sgd"], ["--optimizer", "sgd"]),
    (["--tol=-0.01"], ["--tol", "at least 0"]),
    (["--scales", "2", "--iterations", "9", "5", "2"], ["--iterations", "3 numbers for 2 scale"]),
    (["--content", "{good}", "--style", "{good}", "--style-mask", "{wide_mask}"],
     ["--style-mask", "wide_mask.png", "aspect ratio"]),
    (["--content", "{good}", "--style", "{good}", "{good}", "--style-mask", "{good}", "{good}",
      "{good}"], ["--style-mask", "3 mask(s) for 2 style"]),
    (["--content", "{good}", "--style", "{good}", "{good}", "--style-mask", "{three_labels}"],
     ["three_labels.png", "exactly 2 distinct colours"]),
    (["--style", "{good}", "--style-mask", "{good}", "--style-blend", "1"],
     ["--style-mask", "--style-blend"]),
    (["--max-memory", "lots"], ["--max-memory", "1G"]),
    (["--max-memory", "10M"], ["--max-memory", "one tile needs"]),
]


@pytest.mark.parametrize("args, fragments", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_writes_nothing(cli, tmp_path, bad_files, args, fragments):
    names = {**{name: str(path) for name, path in bad_files.items()},
             "missing": str(tmp_path / "missing.jpg")}
    args = [arg.format(**names) for arg in args]
    output = tmp_path / "result.png"
    if "--output" not in args:
        args += ["--output", str(output)]
    result = run_nst(cli, tmp_path, *args)
    assert_one_line_error(result, *fragments)
    assert not output.exists() and not (tmp_path / "run").exists()
