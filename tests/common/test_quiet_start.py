"""TensorFlow starts without its C++ log lines, unless the user asks for them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from common import stderr_held_back

PROGRAM = "import common, tensorflow as tf; print(float(tf.reduce_sum(tf.ones(3))))"


def run_python(level: str | None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    return subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True,
                          timeout=120, check=True)


@pytest.mark.slow
def test_tensorflow_starts_silently_and_speaks_when_asked():
    quiet, asked = run_python(None), run_python("0")
    assert quiet.stdout == asked.stdout == "3.0\n"
    assert quiet.stderr == ""
    assert asked.stderr != ""  # TensorFlow always says something at start-up at level 0


def test_held_back_text_is_dropped_on_success_and_replayed_on_error(capfd):
    with stderr_held_back():
        os.write(2, b"start-up chatter\n")
    assert capfd.readouterr().err == ""
    with pytest.raises(ImportError), stderr_held_back():
        os.write(2, b"why it failed\n")
        raise ImportError("no such library")
    assert capfd.readouterr().err == "why it failed\n"
