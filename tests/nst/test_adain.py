"""nst.adain: AdaIN, its losses, the decoder, the stylisation controls and the program."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from common.errors import UserError
from common.images import load_image, resize_long_side, save_image
from nst import losses
from nst.adain_net import AdaIN, AdaINStyleTransfer, build_decoder
from nst.model import feature_extractor
from tests.helpers import assert_one_line_error, run_module


def features(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = rng.uniform(1.0, 5.0, size=(shape[0], 1, 1, shape[-1]))
    shift = rng.uniform(-3.0, 3.0, size=(shape[0], 1, 1, shape[-1]))
    return (rng.normal(size=shape) * scale + shift).astype(np.float32)


def normalised(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=(1, 2), keepdims=True)) / x.std(axis=(1, 2), keepdims=True)


def test_adain_gives_the_style_statistics_and_keeps_the_content_pattern():
    content, style = features(0, (2, 5, 6, 8)), features(1, (2, 7, 4, 8))
    output = AdaIN()(content, style).numpy()
    np.testing.assert_allclose(output.mean(axis=(1, 2)), style.mean(axis=(1, 2)), atol=1e-4)
    np.testing.assert_allclose(output.std(axis=(1, 2)), style.std(axis=(1, 2)), atol=1e-4)
    np.testing.assert_allclose(normalised(output), normalised(content), atol=1e-4)


def test_adain_losses_against_numpy():
    style = [features(2, (2, 8, 8, 4)), features(3, (2, 4, 4, 6))]
    generated = [features(4, (2, 8, 8, 4)), features(5, (2, 4, 4, 6))]
    expected = sum(np.mean((g.mean(axis=(1, 2)) - s.mean(axis=(1, 2))) ** 2)
                   + np.mean((np.sqrt(g.var(axis=(1, 2)) + 1e-5) - np.sqrt(s.var(axis=(1, 2)) + 1e-5)) ** 2)
                   for s, g in zip(style, generated))
    np.testing.assert_allclose(float(losses.adain_style_loss(style, generated)), expected, rtol=1e-5)
    assert float(losses.adain_style_loss(style, style)) == 0.0
    np.testing.assert_allclose(float(losses.adain_content_loss(style[0], generated[0])),
                               np.mean((style[0] - generated[0]) ** 2), rtol=1e-5)


def test_masked_adain_gives_each_region_its_own_style():
    from nst.adain import masked_adain

    content = features(6, (1, 6, 8, 3))
    white = np.zeros((1, 6, 8, 1), np.float32)
    white[:, :, :3] = 1.0
    style = features(7, (1, 5, 5, 3))
    stats = losses.channel_mean_std(style)
    output = masked_adain(content, [white, 1.0 - white], [stats, None]).numpy()
    region = output[:, :, :3]
    np.testing.assert_allclose(region.mean(axis=(1, 2)), style.mean(axis=(1, 2)), atol=1e-4)
    np.testing.assert_allclose(region.std(axis=(1, 2)), style.std(axis=(1, 2)), atol=1e-4)
    np.testing.assert_array_equal(output[:, :, 3:], content[:, :, 3:])  # no style: unchanged


@pytest.fixture(scope="module")
def vgg() -> keras.Model:
    keras.utils.set_random_seed(0)  # random weights: the shapes and plumbing are what count
    return keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))


@pytest.fixture(scope="module")
def net(vgg) -> AdaINStyleTransfer:
    from nst.adain_net import ENCODER_LAYERS

    return AdaINStyleTransfer(feature_extractor(vgg, list(ENCODER_LAYERS)), build_decoder())


def test_decoder_mirrors_the_encoder(vgg, net):
    encoder_convs = [(layer.kernel.shape[2], layer.kernel.shape[3]) for layer in net.encoder.layers
                     if isinstance(layer, keras.layers.Conv2D)]
    decoder_convs = [(layer.kernel.shape[2], layer.kernel.shape[3]) for layer in net.decoder.layers
                     if isinstance(layer, keras.layers.Conv2D)]
    assert decoder_convs == [(out, inp) for inp, out in reversed(encoder_convs)]
    image = np.zeros((1, 48, 40, 3), np.float32)
    relu = net.encode(image)
    assert [tuple(f.shape[1:3]) for f in relu] == [(48, 40), (24, 20), (12, 10), (6, 5)]
    # Each upsampling lands on the size of the encoder layer it mirrors.
    sizes = []
    x = relu[-1]
    for layer in net.decoder.layers:
        x = layer(x)
        if isinstance(layer, keras.layers.UpSampling2D):
            sizes.append(tuple(x.shape[1:3]))
    assert sizes == [(12, 10), (24, 20), (48, 40)]
    assert tuple(x.shape) == (1, 48, 40, 3)
    assert not net.encoder.trainable and len(net.trainable_variables) == 18


def test_alpha_zero_reconstructs_the_content_and_weights_select_styles(net):
    from nst.adain import style_statistics, stylize_batch

    rng = np.random.default_rng(8)
    contents = rng.random((2, 32, 24, 3), dtype=np.float32)
    styles = [rng.random((40, 40, 3), dtype=np.float32), rng.random((24, 32, 3), dtype=np.float32)]
    stats = style_statistics(net, styles)
    reconstruction = np.clip(net.decode(net.encode(contents)[-1]).numpy(), 0, 1)
    np.testing.assert_allclose(stylize_batch(net, contents, stats, [0.5, 0.5], 0.0, None),
                               reconstruction, atol=1e-5)
    single = np.clip(net((contents, np.stack([styles[0][:32, :24]] * 2))).numpy(), 0, 1)
    only_first = stylize_batch(net, contents, style_statistics(net, [styles[0][:32, :24]]), [1.0],
                               1.0, None)
    np.testing.assert_allclose(only_first, single, atol=1e-4)
    np.testing.assert_allclose(stylize_batch(net, contents, stats, [1.0, 0.0], 1.0, None),
                               stylize_batch(net, contents, stats[:1], [1.0], 1.0, None), atol=1e-5)
    odd = rng.random((1, 27, 21, 3), dtype=np.float32)  # padded to 32×24 inside, cropped back
    assert stylize_batch(net, odd, stats, [0.5, 0.5], 1.0, None).shape == (1, 27, 21, 3)


@pytest.mark.slow  # writes and reads a 28 MB model
def test_saved_model_reloads_with_identical_outputs(net, tmp_path):
    from nst.adain import load_adain

    net.save(tmp_path / "adain.keras")
    loaded = load_adain(str(tmp_path / "adain.keras"))
    pair = (np.random.default_rng(9).random((1, 24, 16, 3), dtype=np.float32),
            np.random.default_rng(10).random((1, 16, 16, 3), dtype=np.float32))
    np.testing.assert_array_equal(loaded(pair).numpy(), net(pair).numpy())
    assert not loaded.encoder.trainable


@pytest.mark.parametrize("args, fragment", [
    ([], "stylize needs --model"),
    (["--style", "a.png", "b.png", "--weights", "1"], "1 weight(s) for 2 style(s)"),
    (["--style", "a.png", "b.png", "--weights", "0", "0"], "all zero"),
    (["--style", "a.png", "b.png", "c.png", "--mask", "m.png"], "--mask takes one or two"),
    (["--alpha", "1.5"], "at most 1.0"),
    (["--alpha", "nan"], "finite"),
])
def test_stylize_settings_refuse_bad_combinations(args, fragment):
    from common.config import parse_settings
    from nst.adain import StylizeSettings

    base = [] if not args else ["--model", "m.keras", "--content", "c.png", "--output", "o.png"]
    if args and "--style" not in args:
        base += ["--style", "s.png"]
    with pytest.raises(UserError, match=None) as error:
        parse_settings(StylizeSettings, base + args, "")
    assert fragment in str(error.value)


def test_train_settings_refuse_crops_that_are_not_a_multiple_of_8():
    from common.config import parse_settings
    from nst.adain import TrainSettings

    with pytest.raises(UserError) as error:
        parse_settings(TrainSettings, ["--content-dir", "c", "--style-dir", "s", "--image-size",
                                       "100"], "")
    assert "multiple of 8" in str(error.value)


# ---- the program end to end: the real VGG19 weights, tiny images ----

@pytest.fixture(scope="module")
def folders(asset_images, tmp_path_factory):
    root = tmp_path_factory.mktemp("adain_data")
    for folder, names in (("content", ("golden_gate", "chicago")), ("style", ("starry_night", "wave")),
                          ("unseen", ("woman-with-hat-matisse",))):
        for name in names:
            save_image(root / folder / f"{name}.png",
                       resize_long_side(load_image(asset_images / f"{name}.jpg"), 64))
    return root


@pytest.fixture(scope="module")
def trained_run(folders, vgg19_weights, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("adain") / "run"
    common = ["train", "--content-dir", str(folders / "content"), "--style-dir",
              str(folders / "style"), "--unseen-styles", str(folders / "unseen" /
                                                            "woman-with-hat-matisse.png"),
              "--image-size", "32", "--batch-size", "2", "--log-every", "1", "--quiet",
              "--run-dir", str(run_dir)]
    first = run_module("nst.adain", *common, "--steps", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = run_module("nst.adain", *common, "--steps", "2", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout
    return run_dir


@pytest.mark.slow
def test_two_step_training_with_resume(trained_run):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["finished"] and metrics["steps"] == 2 and metrics["epochs"] == 2
    assert len(metrics["history"]["train_loss"]) == 2
    assert all(np.isfinite(metrics["history"]["train_style"]))
    assert metrics["parameters"] == 3505219  # the decoder only; the encoder is frozen
    assert (trained_run / "model.keras").is_file()
    assert any((trained_run / "tensorboard").rglob("events.out.tfevents.*"))


@pytest.mark.slow
def test_stylize_a_folder_with_every_control(cli, trained_run, folders, tmp_path):
    mask = np.zeros((40, 40, 3), np.float32)
    mask[:, :20] = 1.0
    save_image(tmp_path / "mask.png", mask)
    result = cli("nst.adain", "stylize", "--model", str(trained_run / "model.keras"),
                 "--content", str(folders / "content"), "--style",
                 str(folders / "unseen" / "woman-with-hat-matisse.png"),
                 str(folders / "style" / "wave.png"), "--mask", str(tmp_path / "mask.png"),
                 "--alpha", "0.7", "--preserve-color", "--output", str(tmp_path / "out"), "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "images/s" in result.stdout
    for name in ("golden_gate", "chicago"):
        assert load_image(tmp_path / "out" / f"{name}.png").shape == \
            load_image(folders / "content" / f"{name}.png").shape


@pytest.mark.slow
@pytest.mark.parametrize("case, fragment", [
    ("missing_model", "no such model file"),
    ("not_adain", "not an AdaIN style transfer model"),
    ("bad_style", "not an image"),
    ("bad_mask", "no such file"),
    ("folder_to_file", "several inputs need a folder"),
    ("tiny_content", "too small for AdaIN"),
])
def test_stylize_bad_input_writes_nothing(cli, trained_run, folders, tmp_path, case, fragment):
    model, content = str(trained_run / "model.keras"), str(folders / "content" / "chicago.png")
    style, output = str(folders / "style" / "wave.png"), str(tmp_path / "out.png")
    extra = []
    if case == "missing_model":
        model = str(tmp_path / "none.keras")
    if case == "not_adain":
        keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]).save(tmp_path / "other.keras")
        model = str(tmp_path / "other.keras")
    if case == "bad_style":
        (tmp_path / "style.png").write_text("not an image")
        style = str(tmp_path / "style.png")
    if case == "bad_mask":
        extra = ["--mask", str(tmp_path / "no_mask.png")]
    if case == "folder_to_file":
        content = str(folders / "content")
    if case == "tiny_content":
        save_image(tmp_path / "tiny.png", np.zeros((12, 40, 3), np.float32))
        content = str(tmp_path / "tiny.png")
    result = cli("nst.adain", "stylize", "--model", model, "--content", content, "--style", style,
                 "--output", output, *extra)
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "out.png").exists()


@pytest.mark.slow
def test_train_refuses_an_unseen_style_from_the_style_folder(cli, folders, tmp_path):
    result = cli("nst.adain", "train", "--content-dir", str(folders / "content"), "--style-dir",
                 str(folders / "style"), "--unseen-styles", str(folders / "style" / "wave.png"),
                 "--run-dir", str(tmp_path / "run"))
    assert_one_line_error(result, "is in --style-dir")
    assert not (tmp_path / "run").exists()
