"""Helpers the tests share: the project root, running a program, the one-line error check,
a tiny classifier trainer, and small files in real formats (CIFAR-10 batches, image
folders, run folders) that tests write themselves."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from common import colour_datasets

ROOT = Path(__file__).resolve().parents[1]


def run_module(module: str, *args: str, env: dict | None = None, timeout: float = 600,
               cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """Run `python -m module args…` from the project root and capture its output."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env=environment, timeout=timeout, cwd=cwd or ROOT)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit status 2, no traceback, one `error:` line containing each fragment."""
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def tiny_trainer(calls: list | None = None):
    """A stand-in for `common.evaluation.classifier.train_classifier` (same signature) that trains a
    1-epoch, 4-filter classifier on a 2,000-image slice, filed under the full data's
    fingerprint; the options it was called with are appended to `calls`. The real function
    is looked up now, so the stand-in can replace it by monkeypatching."""
    from common.data import Splits
    from common.evaluation.classifier import dataset_fingerprint, train_classifier

    def train(dataset: str, splits, fingerprint: str | None = None, **options):
        if calls is not None:
            calls.append(options)
        small = Splits(splits.x_train[:2000], splits.y_train[:2000], splits.x_validation[:500],
                       splits.y_validation[:500], splits.x_test[:500], splits.y_test[:500])
        return train_classifier(dataset, small, fingerprint or dataset_fingerprint(splits), epochs=1,
                                width=4, feature_size=16, augment=False, verbose=0)

    return train


TINY_COUNTS = {"train": 5 * 6, "test": 6}


def cifar_batch(seed: int, count: int) -> dict:
    """A batch in the real layout: b'data' uint8 (N, 3072) of R, G, B planes, b'labels'."""
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"tiny", b"labels": [int(v) for v in rng.integers(0, 10, count)],
            b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8)}


def write_cifar(root, as_archive: bool = False):
    """Tiny CIFAR-10 files (6 images per batch) under root/cifar-10-batches-py, or a tar.gz."""
    folder = root / colour_datasets.CIFAR_FOLDER
    folder.mkdir(parents=True)
    batches = {name: cifar_batch(i, TINY_COUNTS["test"])
               for i, name in enumerate((*colour_datasets.CIFAR_TRAIN, "test_batch"))}
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [name.encode() for name in colour_datasets.CIFAR_CLASSES]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    if as_archive:
        with tarfile.open(root / colour_datasets.CIFAR_ARCHIVE, "w:gz") as tar:
            tar.add(folder, arcname=colour_datasets.CIFAR_FOLDER)
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    return batches


def write_folder(root):
    """cats/ and dogs/ with a colour JPEG, a grey PNG, an RGBA PNG, a corrupt file, a non-image."""
    rng = np.random.default_rng(0)
    (root / "cats").mkdir(parents=True)
    (root / "dogs" / "deeper").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(root / "cats" / f"c{i}.jpg")
    Image.fromarray(np.full((30, 20), 200, np.uint8), mode="L").save(root / "dogs" / "grey.png")
    rgba = np.zeros((24, 24, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 128
    Image.fromarray(rgba, mode="RGBA").save(root / "dogs" / "deeper" / "rgba.png")
    (root / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (root / "dogs" / "notes.txt").write_text("not an image")


def write_run(folder: Path, family: str, settings: dict, metrics: object | None) -> Path:
    """A run folder with config.json and (unless None) metrics.json."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model": family, "settings": settings}))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder
