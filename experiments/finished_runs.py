"""Finished training runs as the experiments read them: metrics.json in the version-2 schema.

The run-output schema (version 2) gives every family the same keys: `schema`, `finished`,
`epochs`, `epochs_trained`, `steps`, `steps_per_epoch`, `time_budget_reached`,
`train_seconds`, `parameters` (every trained weight), `sampler_parameters` (the network
that makes samples) and `history` (`epoch`, `train_*`, `test_*`, `sample_*` lists).
`load_finished_run` is the one way the experiments open a run; a run in another schema
(the pre-2 runs had no `schema` key) is refused with one line naming its version.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from common.errors import UserError
from common.files import read_json
from common.runs import CONFIG_FILE, METRICS_FILE, load_run_config

SCHEMA = 2
COMMON_KEYS = ("schema", "finished", "epochs", "epochs_trained", "steps", "steps_per_epoch",
               "time_budget_reached", "train_seconds", "parameters", "sampler_parameters", "history")
SEED_FOLDER = re.compile(r"seed_(\d+)")
SEED_SUFFIX = re.compile(r"(?:^|[_-])seed_?\d+$")
# Settings that may differ between the runs of one model (its seeds).
PER_RUN_SETTINGS = ("seed", "run_dir", "name", "quiet", "resume", "data_dir")


def read_metrics(path: Path, family: str) -> dict[str, Any]:
    """metrics.json of the run folder `path`, which must be in schema 2 (else one line naming
    the version it is in)."""
    where = path / METRICS_FILE
    metrics = read_json(where, "metrics file")
    if not isinstance(metrics, dict):
        raise UserError(f"{where}: not a metrics file (a JSON object)")
    schema = metrics.get("schema", 1)
    if schema != SCHEMA:
        raise UserError(f"{where}: schema {schema!r}, and this version reads schema {SCHEMA} only; "
                        f"train the run again with `python -m {family}.train`")
    missing = [key for key in COMMON_KEYS if key not in metrics]
    if missing:
        raise UserError(f"{where}: says schema {SCHEMA} but lacks {', '.join(missing)}")
    return metrics


def load_finished_run(path: str | os.PathLike,
                      families: Sequence[str] | None = None) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(family, config, metrics in schema 2) of a finished run folder, else a one-line `UserError`.

    `families`, when given, are the families accepted. A run is finished when its
    metrics say so: all its --epochs trained, or its --max-minutes budget spent.
    """
    path = Path(path)
    config = load_run_config(path)
    family = config.get("model")
    if families is not None and family not in families:
        raise UserError(f"{path}: is a {family!r} run, not a {' or '.join(families)} run")
    if not (path / METRICS_FILE).is_file():
        raise UserError(f"{path}: not a finished run (no {METRICS_FILE})")
    metrics = read_metrics(path, family)
    if not metrics["finished"]:
        raise UserError(f"{path}: not a finished {family} run (training stopped before "
                        f"epoch {config['settings'].get('epochs')})")
    return family, config, metrics


# --- runs grouped by model, one run per seed ----------------------------------------

def group_name(path: Path) -> str:
    """The model a --runs folder is a seed of: its name less a trailing `seed_<k>` / `_seed<k>`,
    or, for a folder named only `seed_<k>`, its parent folder's name."""
    path = path.resolve()
    return SEED_SUFFIX.sub("", path.name) or path.parent.name


def run_folders(path: Path) -> list[Path]:
    """A --runs entry as run folders: itself, or the `seed_<k>` run folders it holds."""
    if (path / CONFIG_FILE).exists() or not path.is_dir():
        return [path]
    seeds = [child for child in path.iterdir() if child.is_dir() and SEED_FOLDER.fullmatch(child.name)]
    return sorted(seeds, key=lambda child: int(child.name[5:])) or [path]


def trainer_defaults(family: str) -> dict[str, Any]:
    """{setting: value when its flag is not given} of `<family>.train.Settings`; {} for a
    family without a trainer module here."""
    try:
        fields = dataclasses.fields(importlib.import_module(f"{family}.train").Settings)
    except ModuleNotFoundError as error:  # no trainer: nst's one-shot programs
        if error.name not in (family, f"{family}.train"):
            raise
        return {}
    return {field.name: field.default if field.default_factory is dataclasses.MISSING
            else field.default_factory() for field in fields}


def run_settings(config: dict[str, Any]) -> dict[str, Any]:
    """A run's settings as config.json recorded them, with the settings added to its trainer
    since then at their defaults: a new switch defaults to the behaviour before it existed."""
    return {**trainer_defaults(config.get("model")), **config["settings"]}


def check_group(name: str, members: list[tuple[Path, dict]], may_differ: Sequence[str] = PER_RUN_SETTINGS,
                ) -> None:
    """Runs grouped as one model must be one model: same family and settings (but for
    `may_differ`; a setting a run predates counts as its default), different seeds."""
    first_path, first = members[0]
    first_settings = run_settings(first)
    seen: dict[Any, Path] = {}
    for path, config in members:
        settings = run_settings(config)
        keys = (set(first_settings) | set(settings)) - set(may_differ)
        differ = sorted(key for key in keys if first_settings.get(key) != settings.get(key))
        if config.get("model") != first.get("model") or differ:
            raise UserError(f"--runs: {first_path} and {path} are grouped as {name!r} by their folder "
                            f"names but differ in {', '.join(differ[:5]) or 'model'}"
                            f"{', …' if len(differ) > 5 else ''}; rename one of them")
        seed = config["settings"].get("seed")
        if seed in seen:
            raise UserError(f"--runs: {seen[seed]} and {path} are both runs of {name!r} with seed "
                            f"{seed}; the runs of one model need different seeds")
        seen[seed] = path


def grouped_runs(paths: Iterable[Path], load: Callable[[Path], tuple[str, dict, dict]] = load_finished_run,
                 may_differ: Sequence[str] = PER_RUN_SETTINGS,
                 ) -> dict[str, list[tuple[Path, dict[str, Any], dict[str, Any]]]]:
    """{model name: [(run folder, config, schema-2 metrics)] sorted by seed} of finished runs.

    Each of `paths` is a run folder or a folder of `seed_<k>` run folders (`run_folders`);
    runs whose names differ only by a seed suffix are one model (`group_name`), and must
    have the same settings but for `may_differ`, and different seeds (`check_group`). `load` opens one run
    (default `load_finished_run`), raising a one-line `UserError` for what it refuses.
    """
    groups: dict[str, list[tuple[Path, dict, dict]]] = {}
    for path in (folder for given in paths for folder in run_folders(Path(given))):
        _, config, metrics = load(path)
        groups.setdefault(group_name(path), []).append((path, config, metrics))
    for name, members in groups.items():
        check_group(name, [(path, config) for path, config, _ in members], may_differ)
    return {name: sorted(members, key=lambda member: member[1]["settings"]["seed"])
            for name, members in groups.items()}
