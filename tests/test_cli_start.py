"""The trainers answer `--help` and a bad flag without importing TensorFlow or Keras (issue #27):
their settings and choices come from TF-free modules, the training code is imported only
once the settings are valid. Not a timing test: it checks what was imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, assert_one_line_error

TRAINERS = ("gan.train", "vae.train", "pixelcnn.train", "diffusion.train")

# Runs the module as `python -m` would, then reports which heavy modules it imported on the
# last line of stdout, and exits with the module's exit status.
PROBE = """
import json, runpy, sys
module, sys.argv = sys.argv[1], ["prog", *sys.argv[2:]]
code = None
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
except SystemExit as stop:
    code = stop.code
print(json.dumps(sorted(name for name in ("tensorflow", "keras") if name in sys.modules)))
sys.exit(code)
"""


def start(module: str, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """(the finished process, the heavy modules it imported)."""
    result = subprocess.run([sys.executable, "-c", PROBE, module, *args], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, timeout=120)
    return result, json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("module", TRAINERS)
def test_help_answers_without_tensorflow(module):
    result, imported = start(module, "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--epochs" in result.stdout
    assert imported == []


@pytest.mark.parametrize("module", TRAINERS)
def test_a_bad_flag_fails_without_tensorflow(module):
    result, imported = start(module, "--epochs", "-1")
    assert_one_line_error(result, "--epochs")
    assert imported == []
