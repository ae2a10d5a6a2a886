"""Finished training runs as the experiments read them: metrics.json in the version-2 schema.

The run-output schema (version 2) gives every family the same keys: `schema`, `finished`,
`epochs`, `epochs_trained`, `steps`, `steps_per_epoch`, `time_budget_reached`,
`train_seconds`, `parameters` (every trained weight), `sampler_parameters` (the network
that makes samples) and `history` (`epoch`, `train_*`, `test_*`, `sample_*` lists).
Runs written before it (schema 1: no `schema` key) are converted on load by
`upgrade_metrics`; `load_finished_run` is the one way the experiments open a run.
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
# The sample-quality scores (common.evaluation.SampleQuality) a schema-1 GAN history holds
# unprefixed; schema 2 calls them sample_<name>.
SAMPLE_SCORES = ("fid", "classifier_score", "classes_covered", "class_kl_to_uniform")
SEED_FOLDER = re.compile(r"seed_(\d+)")
SEED_SUFFIX = re.compile(r"(?:^|[_-])seed_?\d+$")
# Settings that may differ between the runs of one model (its seeds).
PER_RUN_SETTINGS = ("seed", "run_dir", "name", "quiet", "resume", "data_dir")


def epochs_trained(epochs: int, steps: int, steps_per_epoch: int | None,
                   time_budget_reached: bool) -> float:
    """Passes over the data: `epochs`, or steps / steps_per_epoch when a time budget
    stopped the last epoch early."""
    if time_budget_reached and steps and steps_per_epoch:
        return steps / steps_per_epoch
    return float(epochs)


class Unconvertible(Exception):
    """Why a schema-1 metrics file cannot be converted (a missing key, a bad config)."""


def require(metrics: dict[str, Any], keys: Sequence[str]) -> None:
    """Raise `Unconvertible` naming the first of `keys` that `metrics` lacks."""
    missing = [key for key in keys if key not in metrics]
    if missing:
        raise Unconvertible(f"no {missing[0]!r}")


def upgrade_vae(metrics: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Schema-1 VAE metrics → schema 2: add what the old file implied.

    The old file was written only at the end, with the test NLL, so `finished` is
    "test_nll is there"; the decoder's parameter count is not in it and is counted on
    the architecture its settings describe.
    """
    from vae.model import build_decoder

    require(metrics, ("epochs", "steps", "steps_per_epoch", "train_seconds", "parameters", "history"))
    try:
        decoder = build_decoder(settings["arch"], settings["latent_dim"], settings["hidden_units"])
    except (KeyError, TypeError, ValueError) as error:
        raise Unconvertible(f"its config.json describes no decoder: {error!r}") from None
    budget = bool(metrics.get("time_budget_reached", False))
    return {**metrics, "schema": SCHEMA, "finished": "test_nll" in metrics,
            "epochs_trained": epochs_trained(metrics["epochs"], metrics["steps"],
                                             metrics["steps_per_epoch"], budget),
            "time_budget_reached": budget, "sampler_parameters": decoder.count_params()}


def gan_history(history: dict[str, list]) -> dict[str, list]:
    """A schema-1 GAN history → schema 2: an `epoch` list, `sample_` before the sample
    scores, `epoch_seconds` as it was and `train_` before every other (training mean) key."""
    count = len(history.get("g_updates", []))
    renamed = {(f"sample_{key}" if key in SAMPLE_SCORES else
                key if key == "epoch_seconds" else f"train_{key}"): values
               for key, values in history.items()}
    return {"epoch": list(range(1, count + 1)), **renamed}


def gan_sample_quality(history: dict[str, list], samples: int | None) -> dict[str, Any] | None:
    """The final `sample_quality` (as a VAE writes it) when the last epoch was scored."""
    scored = [index for index, value in enumerate(history.get("sample_fid", [])) if value is not None]
    if not scored or scored[-1] != len(history["epoch"]) - 1:
        return None
    rows = [{"epoch": history["epoch"][i], **{key: history[f"sample_{key}"][i] for key in SAMPLE_SCORES}}
            for i in scored]
    return {**{key: value for key, value in rows[-1].items() if key != "epoch"}, "samples": samples,
            "history": rows}


def upgrade_gan(metrics: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Schema-1 GAN metrics → schema 2.

    The old `steps` was the step-history dict (now `step_history`); the step counts are
    the last epoch's `g_updates`/`d_updates`; the old `parameters` counted the generator
    only (now `sampler_parameters`; `parameters` adds the discriminator); the file was
    written every epoch, so `finished` compares `epochs` with the --epochs asked for.
    """
    require(metrics, ("epochs", "steps", "steps_per_epoch", "train_seconds", "parameters",
                      "discriminator_parameters", "history"))
    history = gan_history(metrics["history"])
    steps = int((history.get("train_g_updates") or [0])[-1])
    budget = bool(metrics.get("time_budget_reached", False))
    upgraded = {key: value for key, value in metrics.items()
                if key not in ("steps", "history", "parameters", "discriminator_parameters")}
    upgraded.update(
        schema=SCHEMA, finished=metrics["epochs"] == settings.get("epochs") or budget,
        epochs_trained=epochs_trained(metrics["epochs"], steps, metrics["steps_per_epoch"], budget),
        steps=steps, discriminator_steps=int((history.get("train_d_updates") or [0])[-1]),
        time_budget_reached=budget, sampler_parameters=metrics["parameters"],
        parameters=metrics["parameters"] + metrics["discriminator_parameters"],
        history=history, step_history=metrics["steps"])
    quality = gan_sample_quality(history, settings.get("eval_samples"))
    if quality is not None:
        upgraded["sample_quality"] = quality
    return upgraded


UPGRADES: dict[str, Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]] = {
    "vae": upgrade_vae, "gan": upgrade_gan}


def upgrade_metrics(family: str, metrics: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Schema-1 metrics of a `family` run trained with `settings` (config.json's) → schema 2.

    Metrics already in schema 2 come back unchanged. What cannot be converted (an unknown
    family, a missing key) is a one-line `UserError` that says how to get a schema-2 file.
    """
    if metrics.get("schema", 1) == SCHEMA:
        return metrics
    how = f"train the run again with `python -m {family}.train`, which writes schema {SCHEMA}"
    if family not in UPGRADES:
        raise UserError(f"written by an older version (schema 1) and no converter knows {family!r} "
                        f"runs; {how}")
    try:
        return UPGRADES[family](metrics, settings)
    except Unconvertible as error:
        reason = str(error)
    except (KeyError, TypeError, ValueError, IndexError) as error:  # keys there, values not as written
        reason = f"unexpected contents: {error!r}"
    raise UserError(f"written by an older version (schema 1) that cannot be converted ({reason}); "
                    f"{how}")


def read_metrics(path: Path, family: str, settings: dict[str, Any]) -> dict[str, Any]:
    """metrics.json of the run folder `path`, in schema 2 whatever version wrote it."""
    where = path / METRICS_FILE
    metrics = read_json(where, "metrics file")
    if not isinstance(metrics, dict):
        raise UserError(f"{where}: not a metrics file (a JSON object)")
    schema = metrics.get("schema", 1)
    if schema not in (1, SCHEMA):
        raise UserError(f"{where}: schema {schema!r} is not one this version reads (1 or {SCHEMA}); "
                        "update this project")
    try:
        metrics = upgrade_metrics(family, metrics, settings)
    except UserError as error:
        raise UserError(f"{where}: {error}") from None
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
    metrics = read_metrics(path, family, config["settings"])
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
    if family not in UPGRADES:
        return {}
    fields = dataclasses.fields(importlib.import_module(f"{family}.train").Settings)
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
