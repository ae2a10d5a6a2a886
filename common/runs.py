"""Run folders: `runs/<model>/<name-or-timestamp>/` with config.json and metrics.json.

A run folder holds everything one run produced: `config.json` (every setting, the seed,
the command line and library versions), TensorBoard events under `tensorboard/`,
`checkpoints/`, images and `metrics.json`. A program writing into one holds its lock
(`RunLock`, the file `.lock`) for as long as it writes, so two never write into one folder.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import platform
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from common.config import RunSettings, settings_dict
from common.errors import UserError
from common.files import read_json, write_json

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
LOCK_FILE = ".lock"


class RunLock:
    """An exclusive OS lock on a run folder, held while a program writes into it.

    `fcntl.flock` on `<folder>/.lock`: the kernel drops the lock when its process ends,
    however it ends, so a `kill -9` leaves no stale lock. The file holds the owner's pid
    for the refusal: a second program gets one `UserError` (exit 2) naming the folder and
    that pid, having written nothing.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None
        self._made: list[Path] = []  # folders `acquire` created, deepest first

    def acquire(self) -> RunLock:
        made = [p for p in [self.folder, *self.folder.parents] if not p.exists()]
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            while self._fd is None:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    os.close(fd)
                    raise UserError(f"{self.folder} is in use by another process (pid {owner}); wait "
                                    "for it to end, or pick another --run-dir/--name") from None
                # The holder before us may have removed the file as it let go: lock the file
                # that is there now, not the one we opened.
                if self.path.exists() and os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    self._fd = fd
                else:
                    os.close(fd)
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as error:
            raise UserError(f"cannot lock {self.folder}: {error.strerror or error}") from None
        self._made = made
        return self

    def release(self) -> None:
        """Let go, and remove the folders `acquire` made that stayed empty (a run refused
        before it wrote anything leaves no trace)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None
        for folder in self._made:
            try:
                folder.rmdir()
            except OSError:
                break

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc_info: Any) -> None:
        self.release()


def cpu_description() -> str:
    """The processor as /proc/cpuinfo names it, its logical CPUs and its widest vector units
    (training minutes buy different step counts on different machines)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    units = [unit for flag, unit in (("avx512f", "AVX-512"), ("amx_tile", "AMX")) if flag in flags]
    return ", ".join([name, f"{os.cpu_count()} logical CPUs", *units])


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on, and the CPU it ran on."""
    import keras
    import scipy
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "cpu": cpu_description()}


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


@contextlib.contextmanager
def locked_run(model: str, settings: RunSettings) -> Iterator[Path]:
    """The run folder of a one-shot program (style transfer, DeepDream), locked while the
    block runs, with config.json written (`create_run`)."""
    with RunLock(run_dir_for(model, settings)) as lock:
        yield create_run(model, settings, run_dir=lock.folder)


def lock_if_writing_into(run_dir: str | os.PathLike, *outputs: str | os.PathLike,
                         always: bool = False) -> contextlib.AbstractContextManager:
    """The run folder's lock for a program reading a run (a sampler) that writes into it:
    when one of `outputs` lies inside it, or `always`; else nothing to hold, since reading
    a run that is still training is allowed."""
    inside = any(Path(out).resolve().is_relative_to(Path(run_dir).resolve()) for out in outputs)
    return RunLock(run_dir) if always or inside else contextlib.nullcontext()


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



def check_resumed_settings(settings: Any, run_dir: str | os.PathLike, model: str, names: tuple[str, ...]) -> None:
    """`--resume` keeps the settings that give a run's weights their meaning (`names`: its
    process, likelihood, network, data): another value of one is refused with one line."""
    old = load_run_config(run_dir, model)["settings"]
    for name in names:
        if old.get(name) != getattr(settings, name):
            raise UserError(f"--resume: {run_dir} was trained with --{name.replace('_', '-')} {old.get(name)}, "
                            f"not {getattr(settings, name)}; start a new run for another")

def write_metrics(path: str | os.PathLike, metrics: dict[str, Any]) -> None:
    """Write (atomically) the run's metrics.json."""
    write_json(Path(path) / METRICS_FILE, metrics)
