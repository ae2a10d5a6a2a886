"""nst.transform, nst.fast and nst.dream: the feed-forward network and DeepDream."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from common.images import load_image, resize_long_side, save_image
from nst.transform import TransformNet
from tests.helpers import assert_one_line_error

pytestmark = pytest.mark.slow  # trains models or runs whole programs


@pytest.fixture(scope="module")
def net() -> TransformNet:
    keras.utils.set_random_seed(0)
    return TransformNet(residual_blocks=1, width=8)


@pytest.mark.parametrize("shape", [(1, 32, 32, 3), (2, 37, 53, 3), (1, 6, 9, 3)])
def test_transform_net_is_size_preserving_and_in_range(net, shape):
    output = net(np.random.default_rng(0).random(shape, dtype=np.float32)).numpy()
    assert output.shape == shape
    assert 0.0 <= output.min() and output.max() <= 1.0


def test_transform_net_has_no_size_bound_weights(net):
    # Fully convolutional: no weight depends on the image size, so any size runs.
    assert all(len(w.shape) in (1, 4) for w in net.weights)  # conv kernels and biases/norm terms
    assert net(np.zeros((1, 100, 70, 3), np.float32)).shape == (1, 100, 70, 3)


def test_instance_norm_normalises_per_sample_and_channel():
    norm = keras.layers.GroupNormalization(groups=-1, epsilon=1e-5)
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(3, 6, 7, 4)) * rng.uniform(0.5, 20, size=(3, 1, 1, 4))
         + rng.uniform(-50, 50, size=(3, 1, 1, 4))).astype(np.float32)
    y = norm(x).numpy()
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=(1, 2)), 1.0, atol=1e-2)


def test_saved_network_reloads_with_identical_outputs(net, tmp_path):
    from nst.fast import load_transform_net

    x = np.random.default_rng(3).random((1, 20, 28, 3), dtype=np.float32)
    expected = net(x).numpy()  # builds the network when this test runs alone
    net.save(tmp_path / "net.keras")
    loaded = load_transform_net(str(tmp_path / "net.keras"))
    np.testing.assert_array_equal(loaded(x).numpy(), expected)
    half = load_transform_net(str(tmp_path / "net.keras"), "mixed_bfloat16")  # stylize --precision
    assert half.compute_dtype == "bfloat16"
    np.testing.assert_allclose(np.asarray(half(x), np.float32), expected, atol=0.05)


@pytest.fixture(scope="module")
def photos(asset_images, tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for name in ("tubingen", "golden_gate", "chicago"):
        save_image(folder / f"{name}.png", resize_long_side(load_image(asset_images / f"{name}.jpg"), 120))
    return folder


@pytest.fixture(scope="module")
def trained_run(photos, asset_images, vgg19_weights, tmp_path_factory):
    from nst.fast import TrainSettings, train

    run_dir = tmp_path_factory.mktemp("fast") / "run"
    settings = TrainSettings(run_dir=str(run_dir), style=str(asset_images / "starry_night.jpg"),
                             content_dir=str(photos), steps=40, log_every=10, image_size=64,
                             batch_size=2, style_size=128, lr=2e-3, quiet=True)
    train(settings)
    return run_dir


def test_short_training_lowers_the_perceptual_loss(trained_run):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    losses = metrics["history"]["train_loss"]
    assert len(losses) == 4 and metrics["steps"] == 40
    assert all(b < a for a, b in zip(losses, losses[1:])), losses  # falls chunk after chunk
    assert losses[-1] < 0.8 * losses[0], losses
    assert (trained_run / "model.keras").is_file()
    assert (trained_run / "checkpoints" / "checkpoint").is_file()


def test_stylize_a_folder_keeps_sizes(cli, trained_run, photos, tmp_path):
    result = cli("nst.fast", "stylize", "--model", str(trained_run / "model.keras"),
                 "--input", str(photos), "--output", str(tmp_path / "out"), "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "images/s" in result.stdout
    for name in ("tubingen", "golden_gate", "chicago"):
        assert load_image(tmp_path / "out" / f"{name}.png").shape == \
            load_image(photos / f"{name}.png").shape


def test_stylize_rejects_a_model_that_is_not_a_transformation_network(cli, tmp_path, photos):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    other.save(tmp_path / "other.keras")
    result = cli("nst.fast", "stylize", "--model", str(tmp_path / "other.keras"),
                 "--input", str(photos / "chicago.png"), "--output", str(tmp_path / "o.png"))
    assert_one_line_error(result, "not a fast style transfer network")
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("setup, fragment", [
    ("empty", "holds no images"),
    ("text", "not an image"),
    ("small", "smaller than the 64px crop"),
])
def test_train_bad_content_folders(cli, tmp_path, asset_images, setup, fragment):
    folder = tmp_path / "content"
    folder.mkdir()
    if setup == "text":
        (folder / "photo.jpg").write_text("not a photo")
    if setup == "small":
        save_image(folder / "tiny.png", np.zeros((30, 40, 3), np.float32))
    result = cli("nst.fast", "train", "--style", str(asset_images / "starry_night.jpg"),
                 "--content-dir", str(folder), "--image-size", "64",
                 "--run-dir", str(tmp_path / "run"))
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "run").exists()


def test_fast_without_a_command_is_a_usage_error(cli):
    assert_one_line_error(cli("nst.fast"), "usage: python -m nst.fast train|stylize")


def test_dream_raises_the_chosen_layer_activation(vgg19_weights, asset_images):
    from nst.dream import Dreamer, dream, octave_shapes
    from nst.model import feature_extractor, load_vgg19, preprocess

    layers = {"block3_conv1": 1.0}
    dreamer = Dreamer(feature_extractor(load_vgg19(vgg19_weights), list(layers)), layers,
                      step_size=1.5, jitter=8)
    image = resize_long_side(load_image(asset_images / "golden_gate.jpg"), 64)
    shapes = octave_shapes(*image.shape[:2], octaves=2, scale=1.4)
    assert shapes[-1] == image.shape[:2] and shapes[0][0] < shapes[1][0]
    result = dream(dreamer, image, shapes, steps=5, rng=np.random.default_rng(0))
    assert result.shape == image.shape and 0.0 <= result.min() and result.max() <= 1.0
    before = float(dreamer.objective(preprocess(image)[None]))
    after = float(dreamer.objective(preprocess(result)[None]))
    assert after > 1.3 * before, (before, after)


@pytest.mark.parametrize("args, fragment", [
    (["--layers", "block9_conv1"], "unknown layer 'block9_conv1'"),
    (["--input", "/no/such.jpg"], "no such file"),
    (["--size", "0"], "--size: must be greater than 0"),
    (["--size", "40", "--layers", "block5_conv1"], "too small"),
])
def test_dream_bad_input(cli, tmp_path, vgg19_weights, args, fragment):
    result = cli("nst.dream", *args, "--run-dir", str(tmp_path / "run"),
                 "--output", str(tmp_path / "out.png"))
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "out.png").exists()


def test_resume_continues_from_the_last_checkpoint(trained_run, photos, asset_images):
    from dataclasses import replace

    from nst.fast import TrainSettings, train

    config = json.loads((trained_run / "config.json").read_text())["settings"]
    settings = replace(TrainSettings(**config), steps=60, resume=True)
    train(settings)
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["steps"] == 60
    assert metrics["history"]["epoch"] == [1, 2, 3, 4, 5, 6]  # kept across the resume
    assert len(metrics["history"]["train_loss"]) == 6 and metrics["finished"]
    index = (trained_run / "checkpoints" / "checkpoint").read_text()
    assert '"ckpt-60"' in index  # numbered by step


def test_nan_stops_with_exit_1_and_keeps_the_last_good_checkpoint(trained_run, tmp_path, monkeypatch):
    import shutil
    from dataclasses import replace

    from common.errors import RunFailed
    from nst import losses
    from nst.fast import TrainSettings, train

    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    newest = sorted((copy / "checkpoints").glob("ckpt-*.index"))[-1].name
    monkeypatch.setattr(losses, "total_variation_loss", lambda images: float("nan") * tf_mean(images))
    config = json.loads((copy / "config.json").read_text())["settings"]
    settings = replace(TrainSettings(**config), run_dir=str(copy), steps=config["steps"] + 20, resume=True)
    with pytest.raises(RunFailed, match="non-finite") as error:
        train(settings)
    assert error.value.exit_code == 1
    assert sorted((copy / "checkpoints").glob("ckpt-*.index"))[-1].name == newest  # nothing newer
    assert not json.loads((copy / "metrics.json").read_text())["finished"]


def tf_mean(images):
    import tensorflow as tf

    return tf.reduce_mean(images)


def test_strength_and_preserve_color_blend_with_the_input():
    from nst import color
    from nst.feedforward import finish

    rng = np.random.default_rng(4)
    stylised, content = 0.4 + 0.2 * rng.random((2, 6, 5, 3), dtype=np.float32)  # in gamut
    np.testing.assert_allclose(finish(stylised, content, False, 1.0), stylised)
    np.testing.assert_allclose(finish(stylised, content, False, 0.0), content)
    np.testing.assert_allclose(finish(stylised, content, False, 0.25),
                               0.25 * stylised + 0.75 * content, rtol=1e-6)
    kept = finish(stylised, content, True, 1.0)
    np.testing.assert_allclose(color.rgb_to_yiq(kept)[..., 1:], color.rgb_to_yiq(content)[..., 1:],
                               atol=1e-5)
    np.testing.assert_allclose(color.rgb_to_yiq(kept)[..., 0], color.rgb_to_yiq(stylised)[..., 0],
                               atol=1e-5)


def test_exported_model_gives_the_keras_image(net, tmp_path, cli):
    import tensorflow as tf

    x = np.random.default_rng(5).random((1, 24, 36, 3), dtype=np.float32)
    expected = net(x).numpy()
    net.save(tmp_path / "net.keras")
    output = tmp_path / "exported"
    result = cli("nst.fast", "export", "--model", str(tmp_path / "net.keras"), "--output",
                 str(output))
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = tf.saved_model.load(str(output))  # kept: the function needs its variables
    got = loaded.serve(tf.constant(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)  # float32 throughout; kernels differ
    again = cli("nst.fast", "export", "--model", str(tmp_path / "net.keras"), "--output",
                str(output))
    assert_one_line_error(again, "already exists")


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_tflite_export_gives_the_keras_image_for_any_batch(net, tmp_path, cli):
    import tensorflow as tf

    x = np.random.default_rng(6).random((2, 24, 36, 3), dtype=np.float32)
    expected = net(x).numpy()
    net.save(tmp_path / "net.keras")
    output = tmp_path / "style.tflite"
    export = ("nst.fast", "export", "--model", str(tmp_path / "net.keras"), "--format", "tflite")
    result = cli(*export, "--size", "24", "36", "--output", str(output))
    assert result.returncode == 0, result.stderr[-3000:]
    interpreter = tf.lite.Interpreter(model_path=str(output))
    source = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(source["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert_one_line_error(cli(*export, "--output", str(tmp_path / "b.tflite")), "needs --size")
    assert_one_line_error(cli("nst.fast", "export", "--model", str(tmp_path / "net.keras"),
                              "--size", "24", "36", "--output", str(tmp_path / "c")),
                          "--size is for --format tflite")
    assert not (tmp_path / "b.tflite").exists() and not (tmp_path / "c").exists()
