"""Shared fixtures: the offline assets (skipped with a reason when unset) and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def vgg19_weights() -> str:
    path = os.environ.get("VGG19_WEIGHTS")
    if not path or not Path(path).is_file():
        pytest.skip("VGG19_WEIGHTS is unset or missing: point it at vgg19_notop_q8.weights.h5")
    return path


@pytest.fixture(scope="session")
def data_dir() -> str:
    path = os.environ.get("DATA_DIR")
    if not path or not (Path(path) / "mnist.npz").is_file():
        pytest.skip("DATA_DIR is unset or holds no mnist.npz: point it at ../shared/assets")
    return path


@pytest.fixture(scope="session")
def asset_images(data_dir: str) -> Path:
    """The classic NST photos and paintings in $DATA_DIR/images."""
    path = Path(data_dir) / "images"
    if not (path / "tubingen.jpg").is_file():
        pytest.skip("$DATA_DIR/images/tubingen.jpg is missing")
    return path


def run_module(module: str, *args: str, env: dict | None = None, timeout: float = 600,
               cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """Run `python -m module args…` from the project root and capture its output."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env=environment, timeout=timeout, cwd=cwd or ROOT)


@pytest.fixture
def cli():
    """`cli("nst.run", "--size", "64")` → CompletedProcess with stdout/stderr/returncode."""
    return run_module


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit status 2, no traceback, one `error:` line containing each fragment."""
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
