"""Shared mechanics of the model families: images, data, run folders, training, evaluation.

Importing `common` (every family package does, first) keeps TensorFlow's C++ start-up lines
(missing CUDA drivers, CPU features, oneDNN) away from the user: they are printed while
`tensorflow` is imported, before any logging setting reaches them, and read like failures on
a CPU-only machine. A user who sets TF_CPP_MIN_LOG_LEVEL below 3 gets TensorFlow's logging
as is (`TF_CPP_MIN_LOG_LEVEL=0 python -m gan.train` shows everything).
"""

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
import tempfile


@contextlib.contextmanager
def stderr_held_back():
    """File descriptor 2 points at a temporary file meanwhile; its text is replayed on error."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.buffer.write(held.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class QuietLoader(importlib.abc.Loader):
    """Runs another loader's `exec_module` with stderr held back."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        with stderr_held_back():
            self.loader.exec_module(module)


class QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as usual, once, and loads it through a `QuietLoader`."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = QuietLoader(spec.loader)
        return spec


# 3: after the import, TensorFlow's ERROR lines too (cuInit on a machine without CUDA).
if os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3") == "3" and "tensorflow" not in sys.modules:
    sys.meta_path.insert(0, QuietTensorFlowFinder())
