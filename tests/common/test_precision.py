"""`--precision` for programs that load saved models: the policy is applied, the weights kept."""

import keras
import numpy as np
import pytest

from common.precision import load_model, use_precision
from vae.model import build_vae


def small_network() -> keras.Model:
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.BatchNormalization()(hidden)))


@pytest.fixture
def saved(tmp_path):
    model = small_network()
    path = tmp_path / "small.keras"
    model.save(path)
    return model, path


def test_use_precision_sets_the_policy_and_gives_the_callers_back():
    with use_precision("mixed_bfloat16"):
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        assert keras.layers.Dense(2).compute_dtype == "bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"


def test_loading_in_another_precision_computes_in_it_with_the_same_weights(saved):
    model, path = saved
    loaded = load_model(path, "mixed_bfloat16")
    assert [layer.compute_dtype for layer in loaded.layers[1:]] == ["bfloat16"] * 3
    for before, after in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(before, after)  # float32 weights, untouched
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    expected = model(x).numpy()
    got = np.asarray(loaded(x), np.float32)
    assert got.dtype == np.float32 and not np.array_equal(got, expected)  # really 16-bit compute
    np.testing.assert_allclose(got, expected, atol=0.05 * np.abs(expected).max())


def test_loading_in_the_saved_precision_changes_nothing(saved):
    model, path = saved
    loaded = load_model(path, "float32")
    assert all(layer.compute_dtype == "float32" for layer in loaded.layers)
    x = np.ones((2, 6), np.float32)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)


def test_a_subclassed_model_with_nested_networks_is_rebuilt_too(tmp_path):
    vae = build_vae("mlp", 4, hidden_units=(16,))
    path = tmp_path / "vae.keras"
    vae.save(path)
    loaded = load_model(path, "mixed_float16")
    assert loaded.decoder.layers[-1].compute_dtype == "float16"
    z = np.zeros((1, 4), np.float32)
    np.testing.assert_allclose(np.asarray(loaded.decode(z), np.float32), vae.decode(z).numpy(),
                               atol=2e-3)
