"""Run folders: `runs/<model>/<name-or-timestamp>/` with config.json and metrics.json.

A run folder holds everything one run produced: `config.json` (every setting, the seed,
the command line and library versions), TensorBoard events under `tensorboard/`,
`checkpoints/`, images and `metrics.json`.
"""

from __future__ import annotations

import datetime
import os
import platform
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

from common.config import RunSettings, settings_dict
from common.errors import UserError
from common.files import read_json, write_json

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on."""
    import keras
    import scipy
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__, "scipy": scipy.__version__}


def set_seed(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and TensorFlow; optionally make TF ops deterministic."""
    import keras
    import tensorflow as tf

    random.seed(seed)
    keras.utils.set_random_seed(seed)  # also seeds NumPy and TensorFlow
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def run_dir_for(model: str, settings: RunSettings, root: str | os.PathLike = "runs") -> Path:
    """The folder a run writes to: `--run-dir` exactly, else runs/<model>/<name or timestamp>."""
    if settings.run_dir:
        return Path(settings.run_dir)
    name = settings.name or datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / model / name


def create_run(model: str, settings: RunSettings, resume: bool = False,
               run_dir: str | os.PathLike | None = None) -> Path:
    """Create (or, with `resume`, reopen) the run folder and write config.json.

    A new run refuses a folder that already holds a run, so nothing is overwritten by
    accident; `resume` requires one, made by the same program. `run_dir` overrides the
    folder the settings name.
    """
    path = Path(run_dir) if run_dir is not None else run_dir_for(model, settings)
    config_path = path / CONFIG_FILE
    if resume:
        load_run_config(path, model)
    elif config_path.exists():
        raise UserError(f"{path} already holds a run; use --resume to continue it or pick "
                        "another --run-dir/--name")
    write_json(config_path, {"model": model, "settings": settings_dict(settings),
                             "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
                             "versions": library_versions(),
                             "started": datetime.datetime.now().isoformat(timespec="seconds")})
    return path


def load_run_config(path: str | os.PathLike, model: str | None = None) -> dict[str, Any]:
    """config.json of a finished or interrupted run, checked to belong to `model`."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: no such run folder")
    config = read_json(path / CONFIG_FILE, "run config (config.json)")
    if not isinstance(config, dict) or "settings" not in config:
        raise UserError(f"{path}/{CONFIG_FILE}: not a run config")
    if model is not None and config.get("model") != model:
        raise UserError(f"{path}: is a {config.get('model')!r} run, not a {model!r} run")
    return config


def write_metrics(path: str | os.PathLike, metrics: dict[str, Any]) -> None:
    """Write (atomically) the run's metrics.json."""
    write_json(Path(path) / METRICS_FILE, metrics)
