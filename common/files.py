"""Atomic file writes: a reader never sees a half-written output.

Everything the project writes (images, JSON, arrays, reports) goes through
`atomic_write`: the bytes go to a temporary file in the destination folder, which is
then renamed over the destination (`os.replace` is atomic on POSIX and Windows).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common.errors import UserError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside `path`; on success rename it to `path`.

    The folder is created if needed. On any error the temporary file is removed and
    `path` is left as it was. Problems with the folder raise `UserError`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(error, OSError) and error.filename is None:  # a failed write names no file
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null rather than produce invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write `data` as indented JSON, atomically. NumPy scalars become Python numbers."""
    def default(obj: Any) -> Any:
        if hasattr(obj, "item"):
            return obj.item()
        if hasattr(obj, "tolist"):
            return obj.tolist()
        if isinstance(obj, os.PathLike):
            return os.fspath(obj)
        raise TypeError(f"cannot serialise {type(obj).__name__}")

    text = json.dumps(_finite_or_none(json.loads(json.dumps(data, default=default))), indent=2)
    with atomic_write(path, "w") as handle:
        handle.write(text + "\n")


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Read a JSON file, turning every failure into a one-line `UserError`."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected a {what}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read {what}: {error}") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
