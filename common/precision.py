"""One `--precision` for every program: Keras' global dtype policy, and saved models under it.

`float32` computes and stores in 32 bits; `mixed_bfloat16` and `mixed_float16` compute in 16
bits with float32 weights (Micikevicius et al. 2018, "Mixed Precision Training"); they pay on
GPUs and TPUs, and are usually slower on CPUs. Trainers set the policy through
`common.training.TrainingRun`; programs that only run models use `use_precision` and
`load_model`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras


@contextlib.contextmanager
def use_precision(precision: str) -> Iterator[None]:
    """Build layers under `precision` inside the block; the caller's policy comes back after."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _with_policy(config: Any, precision: str) -> Any:
    """`config` with every serialized dtype policy replaced by `precision`."""
    if isinstance(config, list):
        return [_with_policy(item, precision) for item in config]
    if not isinstance(config, dict):
        return config
    if config.get("class_name") == "DTypePolicy":
        return {**config, "config": {**config["config"], "name": precision}}
    return {key: _with_policy(value, precision) for key, value in config.items()}


def load_model(path: str | Path, precision: str = "float32", **kwargs: Any) -> keras.Model:
    """The `.keras` model at `path`, computing in `precision`.

    A saved model fixes each layer's dtype policy to the one it was trained under, whatever
    the global policy is at load time; so for another precision the architecture is rebuilt
    from the saved config with the policy replaced, and the same weights are set into it.
    """
    model = keras.saving.load_model(path, **kwargs)
    if model.dtype_policy.name == precision:
        return model
    config = _with_policy(keras.saving.serialize_keras_object(model), precision)
    rebuilt = keras.saving.deserialize_keras_object(config)
    rebuilt.set_weights(model.get_weights())
    return rebuilt
