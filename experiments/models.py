"""The compared models: a finished run and its family's sampler, behind one protocol.

Each family (`vae`, `gan`, the value of config.json's "model") has an adapter,
`<family>.sample.load_sampler(run_dir, precision) -> Sampler`, so the comparison samples, draws and
plots every model the same way and never asks which family it is.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from common.errors import UserError
from experiments.finished_runs import load_finished_run
from experiments.spec import MODELS


@runtime_checkable
class Sampler(Protocol):
    """What a family's adapter returns.

    `sample(n, seed)`: n images (n, H, W, C) float32 in [0, 1], the same for the same seed.
    `interpolations(rows)`: rows walks of 10 images each, (rows·10, H, W, C), along the
    path `info["interpolation"]` names.
    `curves(metrics)`: the family's training curves from schema-2 metrics, as
    (title, x label, {label: (x values, y values)}).
    `info`: what the loaded network says about itself: "family", "sampler_parameters",
    "latent_dim", "interpolation" (a caption).
    """

    info: dict[str, Any]

    def sample(self, n: int, seed: int) -> np.ndarray: ...

    def interpolations(self, rows: int) -> np.ndarray: ...

    def curves(self, metrics: dict[str, Any]) -> tuple[str, str, dict[str, tuple[list, list]]]: ...


@dataclass
class Model:
    """A finished run as the comparison sees it."""

    name: str                   # the row's name in the report
    family: str                 # config.json's "model": the package whose adapter samples it
    run_dir: Path
    config: dict[str, Any]      # config.json
    metrics: dict[str, Any]     # metrics.json in schema 2 (experiments.finished_runs)
    sampler: Sampler | None     # None where the comparison reads the run's kept scores instead


def adapter(family: str, where: str) -> Callable[..., Sampler]:
    """`<family>.sample.load_sampler`, or a `UserError` naming `where` when there is none."""
    try:
        module = importlib.import_module(f"{family}.sample")
    except ModuleNotFoundError as error:
        if error.name not in (family, f"{family}.sample"):  # a missing dependency of the adapter
            raise
        module = None
    if not callable(getattr(module, "load_sampler", None)):
        raise UserError(f"{where}: {family!r} runs have no sampler ({family}.sample.load_sampler)")
    return module.load_sampler


def check_sampler_options(family: str, options: dict[str, Any], where: str) -> None:
    """Refuse sampler `options` that `<family>.sample.load_sampler` does not take (a model
    spec's "sampler", e.g. {"prior": "gmm"} for the VAE), before anything trains."""
    taken = list(inspect.signature(adapter(family, where)).parameters)[2:]  # after run_dir, precision
    unknown = sorted(set(options) - set(taken))
    if unknown:
        raise UserError(f"{where}: \"sampler\": {family} samplers take {', '.join(taken) or 'no option'}, "
                        f"not {', '.join(unknown)}")


def load_sampler(family: str, run_dir: Path, precision: str = "float32",
                 options: dict[str, Any] | None = None) -> Sampler:
    """The `family` adapter's sampler for `run_dir` (`<family>.sample.load_sampler`),
    computing in `precision`, with the adapter's keyword `options`."""
    sampler = adapter(family, str(run_dir))(run_dir, precision, **(options or {}))
    if not isinstance(sampler, Sampler):
        raise TypeError(f"{family}.sample.load_sampler returned a {type(sampler).__name__}, "
                        "not a Sampler")
    return sampler


def comparable_run(path: Path) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(family, config, schema-2 metrics) of a finished run of a family the comparison knows."""
    return load_finished_run(path, MODELS)


def load_model(name: str, run_dir: Path, precision: str = "float32",
               options: dict[str, Any] | None = None) -> Model:
    """The finished run in `run_dir`, with its sampler computing in `precision` (and taking
    the adapter's `options`), named `name`."""
    family, config, metrics = comparable_run(run_dir)
    return Model(name, family, run_dir, config, metrics, load_sampler(family, run_dir, precision, options))


def kept_model(name: str, run_dir: Path) -> Model:
    """The finished run in `run_dir` without its network: what a --points comparison
    reports from the scores kept in the run, so a study kept without weights reports too."""
    family, config, metrics = comparable_run(run_dir)
    return Model(name, family, run_dir, config, metrics, None)
