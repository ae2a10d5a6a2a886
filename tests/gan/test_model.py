"""The networks and Algorithm 1's schedule: shapes, counters, which step moves which weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.data import load_splits
from common.errors import UserError
from common.runs import set_seed
from gan.model import (
    GAN,
    MixtureNoise,
    build_discriminator,
    build_generator,
    dcgan_downsampling,
    dcgan_upsampling,
    from_unit_range,
    noise_size,
    set_output_bias_from_pixel_means,
    to_unit_range,
)
from gan.sample import output_activation


def make_gan(arch: str = "dcgan", loss: str = "nonsaturating", k: int = 1) -> GAN:
    model = GAN(build_generator(arch, 16), build_discriminator(arch), loss=loss, k=k)
    model.compile(keras.optimizers.Adam(1e-3, 0.5), keras.optimizers.Adam(1e-3, 0.5))
    return model


def real_batches(batch: int, k: int, count: int = 1, seed: int = 0) -> np.ndarray:
    """`count` iterations' worth of (batch, k, 28, 28, 1) images in [−1, 1]."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (count * batch, k, 28, 28, 1)).astype(np.float32)


def values(variables) -> list[np.ndarray]:
    return [np.array(v) for v in variables]


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_network_shapes_and_output_range(arch, activation):
    generator = build_generator(arch, 100, activation)
    discriminator = build_discriminator(arch)
    images = generator(tf.random.normal((5, 100)) * 10)
    assert images.shape == (5, 28, 28, 1) and images.dtype == tf.float32
    low = -1.0 if activation == "tanh" else 0.0
    assert low <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0
    assert discriminator(images).shape == (5, 1)


def test_paper_mlp_sizes():
    """Generator 100 → 1200 → 1200 → 784; discriminator maxout 240 × 5 pieces, twice."""
    generator = build_generator("mlp", 100)
    assert [w.shape for w in generator.trainable_weights if len(w.shape) == 2] == \
        [(100, 1200), (1200, 1200), (1200, 784)]
    discriminator = build_discriminator("mlp")
    assert [w.shape for w in discriminator.trainable_weights if len(w.shape) == 2] == \
        [(784, 1200), (240, 1200), (240, 1)]


def test_unit_range_round_trip():
    x = np.linspace(0, 1, 11, dtype=np.float32)
    for activation in ("tanh", "sigmoid", "linear"):
        np.testing.assert_allclose(to_unit_range(from_unit_range(x, activation), activation), x, atol=1e-7)
    np.testing.assert_allclose(from_unit_range(x, "tanh")[[0, -1]], [-1.0, 1.0])
    np.testing.assert_allclose(from_unit_range(x, "linear"), from_unit_range(x, "tanh"))
    # A linear output can leave [−1, 1]; what is shown and saved is clipped to the pixel range.
    np.testing.assert_allclose(to_unit_range(np.array([-1.5, 0.0, 1.2]), "linear"), [0.0, 0.5, 1.0])


@pytest.mark.slow
@pytest.mark.parametrize("k", [1, 3])
def test_counters_prove_k_discriminator_steps_per_generator_step(k):
    model = make_gan("mlp", k=k)
    steps = 4
    data = tf.data.Dataset.from_tensor_slices(real_batches(8, k, steps)).batch(8)
    history = model.fit(data, epochs=2, verbose=0, shuffle=False).history
    assert history["g_updates"] == [steps, 2 * steps]
    assert history["d_updates"] == [k * steps, 2 * k * steps]
    assert int(model.d_optimizer.iterations) == k * 2 * steps
    assert int(model.g_optimizer.iterations) == 2 * steps


def test_each_discriminator_step_gets_its_own_real_minibatch():
    model = make_gan("mlp", k=3)
    seen = []
    step = model.discriminator_step
    model.discriminator_step = lambda real, labels=None: seen.append(real.numpy()) or step(real, labels)
    batch = real_batches(8, 3)
    model.train_step(tf.constant(batch))
    assert len(seen) == 3
    for i, real in enumerate(seen):
        np.testing.assert_array_equal(real, batch[:, i])


@pytest.mark.parametrize("loss", ["nonsaturating", "minimax", "wgan-gp"])
def test_discriminator_step_moves_only_the_discriminator(loss):
    model = make_gan("dcgan", loss)
    generator_before = values(model.generator.trainable_weights)
    discriminator_before = values(model.discriminator.weights)
    logs = model.discriminator_step(tf.constant(real_batches(8, 1)[:, 0]))
    assert all(np.isfinite(float(v)) for v in logs.values())
    for before, after in zip(generator_before, values(model.generator.trainable_weights)):
        np.testing.assert_array_equal(before, after)
    changed = [not np.array_equal(b, a) for b, a in zip(discriminator_before, values(model.discriminator.weights))]
    # The critic's output bias cancels in E[C(G(z))] − E[C(x)] and is absent from ∇ₓC: no gradient.
    assert changed == [True] * (len(changed) - 1) + [loss != "wgan-gp"]
    assert int(model.d_optimizer.iterations) == 1 and int(model.g_optimizer.iterations) == 0


@pytest.mark.parametrize("loss", ["nonsaturating", "minimax", "wgan-gp"])
def test_generator_step_moves_only_the_generator(loss):
    model = make_gan("dcgan", loss)
    generator_before = values(model.generator.trainable_weights)
    discriminator_before = values(model.discriminator.weights)
    model.generator_step(8)
    for before, after in zip(discriminator_before, values(model.discriminator.weights)):
        np.testing.assert_array_equal(before, after)
    changed = [not np.array_equal(b, a) for b, a in zip(generator_before, values(model.generator.trainable_weights))]
    assert all(changed)
    assert int(model.d_optimizer.iterations) == 0 and int(model.g_optimizer.iterations) == 1


def test_wgan_gp_logs_critic_values_and_penalty():
    model = make_gan("dcgan", "wgan-gp", k=2)
    logs = model.train_step(tf.constant(real_batches(8, 2)))
    assert {"critic_real", "critic_fake", "gradient_penalty", "d_loss", "g_loss", "d_grad_norm",
            "g_grad_norm", "d_updates", "g_updates"} <= set(logs)
    np.testing.assert_allclose(float(logs["d_loss"]), float(logs["critic_fake"] - logs["critic_real"]
                                                            + 10.0 * logs["gradient_penalty"]), rtol=1e-4)


@pytest.mark.slow
def test_short_mnist_run_moves_discriminator_outputs_apart_and_back(data_dir):
    """Paper MLP on real digits: D first tells real from fake (D(x) ≫ D(G(z))), then the
    generator catches up and the two means meet again."""
    set_seed(0)
    images = from_unit_range(load_splits("mnist", data_dir).x_train[:4096], "tanh")
    data = tf.data.Dataset.from_tensor_slices(images).shuffle(4096, seed=0).batch(64).map(
        lambda x: x[:, None])
    model = GAN(build_generator("mlp"), build_discriminator("mlp"))
    model.compile(keras.optimizers.Adam(2e-4, 0.5), keras.optimizers.Adam(2e-4, 0.5))
    outputs = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: outputs.append(
        (float(logs["d_real"]), float(logs["d_fake"]))))
    model.fit(data, epochs=1, steps_per_epoch=60, verbose=0, shuffle=False, callbacks=[record])
    gap = np.array([real - fake for real, fake in outputs])
    windows = gap.reshape(-1, 10).mean(axis=1)  # six windows of ten steps
    early = windows[:3].max()
    assert early > 0.15, windows
    assert windows[np.argmax(windows[:3]) + 1:].min() < early / 2, windows


def test_dcgan_for_32_px_colour_has_the_radford_layout():
    """G: Dense → 4×4×4w, transposed convs 4w → 2w → w → 3 (4×4 kernels, BN = 4 numbers per
    channel); D: convs 3 → w → 2w → 4w, Dense(1); counted by hand for w = 8."""
    w, noise = 8, 100
    generator = build_generator("dcgan", noise, image_shape=(32, 32, 3), width=w)
    expected_g = (noise * 16 * 4 * w + 4 * 16 * 4 * w  # dense (no bias) + BN
                  + 16 * 4 * w * 2 * w + 4 * 2 * w  # 4w → 2w
                  + 16 * 2 * w * w + 4 * w  # 2w → w
                  + 16 * w * 3 + 3)  # w → 3 with bias
    assert generator.count_params() == expected_g
    assert generator.output_shape == (None, 32, 32, 3)
    discriminator = build_discriminator("dcgan", (32, 32, 3), w)
    expected_d = (16 * 3 * w + w) + (16 * w * 2 * w + 2 * w) + (16 * 2 * w * 4 * w + 4 * w) + 4 * 4 * 4 * w + 1
    assert discriminator.count_params() == expected_d
    assert build_generator("dcgan", 10, image_shape=(64, 64, 1), width=w).output_shape == (None, 64, 64, 1)


def test_nearest_upsampling_generator_resizes_then_convolves_and_saves(tmp_path):
    """Each doubling is UpSampling2D + a 3×3 conv: for w = 8 the transposed layout's 16-tap
    kernels become 9-tap ones, counted by hand; the sampler still finds the output layer."""
    w, noise = 8, 100
    generator = build_generator("dcgan", noise, "linear", (32, 32, 3), w, upsample="nearest")
    expected = (noise * 16 * 4 * w + 4 * 16 * 4 * w + 9 * 4 * w * 2 * w + 4 * 2 * w
                + 9 * 2 * w * w + 4 * w + 9 * w * 3 + 3)
    assert generator.count_params() == expected and generator.output_shape == (None, 32, 32, 3)
    kinds = {type(layer).__name__ for layer in generator.layers}
    assert "UpSampling2D" in kinds and "Conv2DTranspose" not in kinds
    # A constant 4×4 input stays constant inside after a resize (no uneven kernel overlap).
    features = keras.Input((4, 4, 2))
    resized = keras.Model(features, dcgan_upsampling(features, "nearest", 1, "glorot"))
    inner = resized(np.ones((1, 4, 4, 2), np.float32)).numpy()[0, 1:-1, 1:-1, 0]
    np.testing.assert_allclose(inner, inner[0, 0], rtol=1e-6)
    generator.save(tmp_path / "g.keras")
    assert output_activation(keras.models.load_model(tmp_path / "g.keras")) == "linear"
    with pytest.raises(UserError, match="unknown upsampling"):
        build_generator("dcgan", noise, "linear", (32, 32, 3), w, upsample="bilinear")


def halving_block(downsample: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    features = keras.Input((8, 8, 1))
    return keras.Model(features, dcgan_downsampling(features, downsample, 4, "glorot"))


def input_gradient(downsample: str) -> np.ndarray:
    """∂Σ output / ∂input of one halving block at a flat 8×8 input: what G would get back."""
    image = tf.ones((1, 8, 8, 1))
    with tf.GradientTape() as tape:
        tape.watch(image)
        total = tf.reduce_sum(halving_block(downsample)(image))
    return tape.gradient(total, image).numpy()[0, :, :, 0]


def test_average_downsampling_discriminator_passes_back_an_even_gradient_and_sees_stripes():
    """Each halving is a 3×3 conv, LeakyReLU, 2×2 average pool (parameters counted by hand
    for w = 8). A uniform upstream gradient comes back uniform inside the image, where the
    stride-2 4×4 convolution's comes back in a 2-pixel checkerboard; and 1-pixel stripes
    on a flat image change the block's output (a linear filter pooled before its activation
    would average them away)."""
    w = 8
    discriminator = build_discriminator("dcgan", (32, 32, 3), w, downsample="average")
    expected = (9 * 3 * w + w) + (9 * w * 2 * w + 2 * w) + (9 * 2 * w * 4 * w + 4 * w) + 4 * 4 * 4 * w + 1
    assert discriminator.count_params() == expected
    inner = input_gradient("average")[2:-2, 2:-2]
    np.testing.assert_allclose(inner, inner[0, 0], rtol=1e-5)
    strided = input_gradient("strided")[2:-2, 2:-2]
    assert not np.allclose(strided, strided[0, 0], rtol=1e-2)
    flat = np.full((1, 8, 8, 1), -0.5, np.float32)
    stripes = flat + 0.4 * (-1.0) ** np.arange(8, dtype=np.float32)[None, :, None, None]
    block = halving_block("average")
    difference = np.abs(block(stripes).numpy() - block(flat).numpy())[0, 1:-1, 1:-1]
    assert difference.max() > 1e-3
    with pytest.raises(UserError, match="unknown downsampling"):
        build_discriminator("dcgan", (32, 32, 3), w, downsample="max")


@pytest.mark.parametrize("network", ["generator", "discriminator"])
def test_dcgan_init_radford_draws_n_0_002_and_glorot_its_uniform_bound(network):
    """Radford: every kernel ~ N(0, 0.02), BN γ ~ N(1, 0.02) (G's); Glorot: kernel entries within
    ±√(6 / (fan_in + fan_out)) with the uniform's std bound/√3, γ = 1."""
    build = build_generator if network == "generator" else build_discriminator
    set_seed(0)
    radford, glorot = (build("dcgan", init=init) for init in ("radford", "glorot"))
    for layer_r, layer_g in zip(radford.layers, glorot.layers):
        if isinstance(layer_r, keras.layers.BatchNormalization):
            gamma_r, gamma_g = layer_r.gamma.numpy(), layer_g.gamma.numpy()
            assert abs(gamma_r.mean() - 1) < 0.01 and 0.01 < gamma_r.std() < 0.03
            np.testing.assert_array_equal(gamma_g, 1.0)
        if not hasattr(layer_r, "kernel"):
            continue
        kernel_r, kernel_g = layer_r.kernel.numpy(), layer_g.kernel.numpy()
        assert abs(kernel_r.std() - 0.02) < 0.002 and abs(kernel_r.mean()) < 0.002, layer_r.name
        receptive = int(np.prod(kernel_g.shape[:-2]))
        fan_in, fan_out = receptive * kernel_g.shape[-2], receptive * kernel_g.shape[-1]
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        assert np.abs(kernel_g).max() <= bound
        assert abs(kernel_g.std() - bound / np.sqrt(3)) < 0.1 * bound / np.sqrt(3), layer_g.name


def test_goodfellow_init_draws_the_papers_ranges_and_sets_the_output_biases():
    """The paper's pylearn2 code: G kernels U(±0.05), D kernels U(±0.005) (std irange/√3);
    G's output biases logit(mean pixel), the mean clipped to [1e-7, 1 − 1e-7]."""
    set_seed(0)
    generator = build_generator("mlp", 100, "sigmoid", init="goodfellow")
    discriminator = build_discriminator("mlp", init="goodfellow")
    for network, irange in ((generator, 0.05), (discriminator, 0.005)):
        kernels = [w.numpy() for w in network.weights if "kernel" in w.path]
        assert len(kernels) == 3
        for kernel in kernels:
            assert np.abs(kernel).max() <= irange
            # The sample std of n draws of U(±a) has standard error a/√(15n); allow 5 of them.
            assert abs(kernel.std() - irange / np.sqrt(3)) < 5 * irange / np.sqrt(15 * kernel.size)
    means = np.random.default_rng(0).uniform(0, 1, (28, 28, 1))
    means[0, :3, 0] = (0.0, 1.0, 0.5)
    set_output_bias_from_pixel_means(generator, means)
    bias = generator.get_layer("pixels").bias.numpy()
    np.testing.assert_allclose(bias[:3], [np.log(1e-7 / (1 - 1e-7)), np.log((1 - 1e-7) / 1e-7), 0.0], atol=1e-4)
    starting_means = 1 / (1 + np.exp(-bias.astype(np.float64)))  # σ(b): the output for a zero hidden state
    np.testing.assert_allclose(starting_means, np.clip(means.reshape(-1), 1e-7, 1 - 1e-7), rtol=1e-5)


@pytest.mark.parametrize("args, init, activation", [
    ([], "glorot", "tanh"),  # the digits: the documented MNIST settings
    (["--dataset", "shapes", "--image-size", "32"], "glorot", "linear"),  # docs/gan.md, the 2×2
    (["--init", "radford", "--output-activation", "sigmoid"], "radford", "sigmoid"),
])
def test_unset_options_follow_the_dataset_and_given_ones_win(args, init, activation):
    from common.config import parse_settings
    from gan.train import Settings

    settings = parse_settings(Settings, args, "gan.train")
    assert (settings.init, settings.output_activation) == (init, activation)


def test_mixture_noise_picks_the_component_from_the_first_coordinate_uniformly():
    from scipy.stats import norm

    layer = MixtureNoise(4)
    layer.build((None, 3))
    means = np.arange(8, dtype=np.float32).reshape(4, 2) * 10
    layer.means.assign(means)
    # z_1 at the middle of each quarter of Φ picks component 0, 1, 2, 3; z_2..3 are added.
    z = np.column_stack([norm.ppf((np.arange(4) + 0.5) / 4), np.ones(4), -np.ones(4)]).astype(np.float32)
    np.testing.assert_allclose(layer(z).numpy(), means + [1.0, -1.0], atol=1e-5)
    draws = np.random.default_rng(0).normal(size=(40000, 3)).astype(np.float32)
    picked = np.round((layer(draws).numpy() - draws[:, 1:])[:, 0] / 20).astype(int)
    np.testing.assert_allclose(np.bincount(picked, minlength=4) / 40000, 0.25, atol=0.01)


def test_mixture_noise_means_learn_only_where_a_component_was_drawn():
    from scipy.stats import norm

    layer = MixtureNoise(3)
    layer.build((None, 5))
    z = np.zeros((5, 5), np.float32)
    z[:, 0] = norm.ppf([0.1, 0.1, 0.5, 0.1, 0.5])  # components 0, 0, 1, 0, 1; never 2
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(z))
    gradient = tf.convert_to_tensor(tape.gradient(loss, layer.means)).numpy()  # gather: IndexedSlices
    np.testing.assert_allclose(gradient, [[3.0] * 4, [2.0] * 4, [0.0] * 4])


def test_generator_with_mixture_noise_keeps_its_input_and_saves(tmp_path):
    generator = build_generator("dcgan", 10, "linear", (8, 8, 3), 4, noise_components=6)
    assert noise_size(generator) == 10
    assert generator.get_layer("mixture_noise").means.shape == (6, 9)
    generator.save(tmp_path / "g.keras")
    restored = keras.models.load_model(tmp_path / "g.keras")
    z = np.random.default_rng(1).normal(size=(4, 10)).astype(np.float32)
    np.testing.assert_array_equal(restored(z).numpy(), generator(z).numpy())
