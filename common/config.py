"""Settings dataclasses become command lines.

Each program declares its settings as a dataclass of plain values with defaults
(nanoGPT style). `parse_settings` turns it into an argparse CLI (`--help` lists every
flag with its default), loads `--config file.json` if given, lets flags override it and
validates everything (types, choices, ranges, NaN) before any work starts.

    @dataclass
    class Settings(RunSettings):
        size: int = setting(512, "long side of the output in pixels", min=1)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from common.errors import UserError
from common.files import read_json

S = TypeVar("S")


def setting(default: Any, help: str, *, choices: Sequence[Any] | None = None,
            min: float | None = None, max: float | None = None, positive: bool = False,
            flag: str | None = None) -> Any:
    """A dataclass field with the metadata `parse_settings` needs.

    `min`/`max` are inclusive bounds; `positive` means strictly greater than zero.
    Lists (`list[float]`) take one or more values after the flag. A `dict` (or a list of
    them) is a JSON object: from a `--config` file, or written as JSON after the flag.
    """
    meta = {"help": help, "choices": choices, "min": min, "max": max, "positive": positive,
            "flag": flag}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def progress_verbosity(quiet: bool) -> int:
    """Keras' `verbose` for progress output: 0 with --quiet, 1 (a live bar) on a terminal, 2
    (plain lines, no carriage returns or escape codes) into a file or a pipe."""
    return 0 if quiet else (1 if sys.stdout.isatty() else 2)


PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("default", "mirrored", "multiworker")  # --strategy; common.distribute makes each


def precision_setting() -> Any:
    """The `--precision` field every program has (see `common.precision`)."""
    return setting("float32", "compute dtype policy: mixed_* computes in 16 bits with float32 "
                              "weights (for GPUs; mixed_float16 adds loss scaling in training)",
                   choices=PRECISIONS)


@dataclass
class RunSettings:
    """Settings every program shares: where the run goes, how it is seeded, its precision."""

    run_dir: str | None = setting(None, "write the run exactly here instead of runs/<model>/<name>")
    name: str | None = setting(None, "run name under runs/<model>/; a timestamp if unset")
    seed: int = setting(0, "seed for Python, NumPy and TensorFlow", min=0)
    deterministic: bool = setting(False, "make TensorFlow ops deterministic (slower)")
    quiet: bool = setting(False, "no progress bar")
    precision: str = precision_setting()


@dataclass
class TrainingSettings(RunSettings):
    """Settings every trainer shares; each trainer's own dataclass extends it."""

    max_minutes: float | None = setting(None, "stop once the run has spent this many minutes in "
                                        "training steps (an equal-time budget; evaluation between "
                                        "epochs not counted; --epochs is then the upper limit; a "
                                        "resumed run counts the minutes it trained before, so "
                                        "raise it to train on)", positive=True)
    strategy: str = setting("default", "tf.distribute strategy: mirrored (the GPUs, else the "
                                       "logical CPUs of one machine) or multiworker (TF_CONFIG)",
                            choices=STRATEGIES)
    resume: bool = setting(False, "continue the run in --run-dir/--name from its newest "
                                  "checkpoint that loads (with the settings given now)")

    def validate(self) -> None:
        if self.resume and not (self.run_dir or self.name):
            raise UserError("--resume: say which run to continue with --run-dir or --name")


def _base_type(annotation: Any) -> tuple[type, bool, bool]:
    """(element type, is_list, is_optional) of a field annotation such as `list[int] | None`."""
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        annotation = args[0]
        origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        element = typing.get_args(annotation)[0]
        return typing.get_origin(element) or element, True, optional  # dict[str, Any] → dict
    return origin or annotation, False, optional


def _flag(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def _coerce(name: str, value: Any, kind: type) -> Any:
    """Convert a value from JSON or the command line to `kind`, or raise UserError."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{name}: expected true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise UserError(f"{name}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise UserError(f"{name}: expected an integer, got {value!r}") from None
    if kind is float:
        if isinstance(value, bool):
            raise UserError(f"{name}: expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise UserError(f"{name}: expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise UserError(f"{name}: must be a finite number, got {value!r}")
        return number
    if kind is dict:
        if isinstance(value, str):  # from the command line
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise UserError(f"{name}: expected a JSON object, got {value!r}") from None
        if not isinstance(value, dict):
            raise UserError(f"{name}: expected a JSON object, got {value!r}")
        return value
    if not isinstance(value, str):
        raise UserError(f"{name}: expected a string, got {value!r}")
    return value


def _check(field: dataclasses.Field, annotation: Any, value: Any) -> Any:
    kind, is_list, optional = _base_type(annotation)
    name = _flag(field)
    if value is None:
        if optional:
            return None
        raise UserError(f"{name}: a value is required")
    values = value if is_list else [value]
    if is_list and not isinstance(value, (list, tuple)):
        raise UserError(f"{name}: expected a list, got {value!r}")
    checked = []
    meta = field.metadata
    for item in values:
        item = _coerce(name, item, kind)
        if meta.get("choices") is not None and item not in meta["choices"]:
            raise UserError(f"{name}: {item!r} is not one of {', '.join(map(str, meta['choices']))}")
        if meta.get("positive") and item <= 0:
            raise UserError(f"{name}: must be greater than 0, got {item}")
        if meta.get("min") is not None and item < meta["min"]:
            raise UserError(f"{name}: must be at least {meta['min']}, got {item}")
        if meta.get("max") is not None and item > meta["max"]:
            raise UserError(f"{name}: must be at most {meta['max']}, got {item}")
        checked.append(item)
    return checked if is_list else checked[0]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        # One line, exit 2, like every other bad input (argparse's default prints usage too).
        raise UserError(f"{message} (see --help)")


def build_parser(cls: type, description: str, prog: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one flag per dataclass field, each help line ending in its default."""
    parser = _Parser(prog=prog, description=description)
    parser.add_argument("--config", metavar="FILE.json", default=None,
                        help="load settings from a JSON file; flags given here override it")
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        kind, is_list, _ = _base_type(hints[field.name])
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        kwargs: dict[str, Any] = {"dest": field.name, "default": argparse.SUPPRESS,
                                  "help": field.metadata.get("help", "") + f" (default: {default})"}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = field.name.upper() if not field.metadata.get("choices") else \
                "{" + ",".join(map(str, field.metadata["choices"])) + "}"
            if is_list:
                kwargs["nargs"] = "+"
        parser.add_argument(_flag(field), **kwargs)
    return parser


def parse_settings(cls: type[S], argv: Sequence[str] | None, description: str,
                   prog: str | None = None) -> S:
    """Defaults, then the class's default recipe (if it has `recipe_defaults`), then
    `--config` JSON, then flags; validated, or a `UserError`.

    `cls.recipe_defaults(values)` gets what the user gave (config and flags) and returns the
    settings of the recipe that goes under them (for example the colour recipe when the
    dataset is colour). After the per-field checks, the dataclass's own `validate()` (if
    any) checks relations between fields.
    """
    parser = build_parser(cls, description, prog)
    args = vars(parser.parse_args(sys.argv[1:] if argv is None else list(argv)))
    config_path = args.pop("config")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    if config_path:
        loaded = read_json(config_path, "config file")
        if not isinstance(loaded, dict):
            raise UserError(f"{config_path}: expected a JSON object of settings")
        unknown = sorted(set(loaded) - set(fields))
        if unknown:
            raise UserError(f"{config_path}: unknown setting(s) {', '.join(unknown)}")
        values.update(loaded)
    values.update(args)
    hints = typing.get_type_hints(cls)
    checked = {name: _check(fields[name], hints[name], value) for name, value in values.items()}
    if hasattr(cls, "recipe_defaults"):
        recipe = cls.recipe_defaults(checked)
        checked = {**{name: _check(fields[name], hints[name], value) for name, value in recipe.items()}, **checked}
    settings = cls(**checked)
    if hasattr(settings, "validate"):
        settings.validate()
    return settings


def settings_dict(settings: Any) -> dict[str, Any]:
    """The settings as a plain dict (for config.json, TensorBoard text and HParams)."""
    return dataclasses.asdict(settings)


def parse_command(argv: list[str] | None, prog: str,
                  commands: dict[str, tuple[type, str]]) -> tuple[str, Any]:
    """(command, its parsed settings) for `prog COMMAND [options]`; `commands` maps each
    command to its settings dataclass and description. No or an unknown command is a
    one-line usage `UserError`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in commands:
        raise UserError(f"usage: {prog} {'|'.join(commands)} [options] (see {prog} "
                        f"{next(iter(commands))} --help)")
    kind, description = commands[argv[0]]
    return argv[0], parse_settings(kind, argv[1:], description, prog=f"{prog} {argv[0]}")
