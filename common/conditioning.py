"""Class labels for sampling class-conditional models (`gan.sample`, `vae.sample`,
`pixelcnn.sample` with `--label`, an index or a class name the run recorded)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.files import read_json


def cycled_labels(n: int, n_classes: int) -> np.ndarray:
    """0, 1, …, n_classes − 1, 0, 1, …: n int32 labels, every class equally often (±1)."""
    return (np.arange(n) % n_classes).astype(np.int32)


def class_columns(n: int, n_classes: int) -> int:
    """Grid columns for n images labelled by `cycled_labels`: a multiple of n_classes (each
    column one class) near √n, so that 3 classes make a squarish grid rather than 3 long
    columns; √n (rounded up) for unlabelled images or a single class."""
    square = math.ceil(math.sqrt(n))
    return n_classes * max(1, round(square / n_classes)) if n_classes > 1 else square


def class_names(run: str | os.PathLike) -> list[str]:
    """The class names a run recorded (metrics.json `classes`: a folder's sub-folders, CIFAR's
    classes); [] when it recorded none (MNIST's classes are its digits)."""
    metrics = Path(run) / "metrics.json"
    return list(read_json(metrics, "metrics file").get("classes", [])) if metrics.is_file() else []


def label_index(label: str | None, run: str | os.PathLike) -> int | None:
    """--label as a class index: an index as given, or the index of a class name the run
    recorded; an unknown name is a `UserError` that lists the classes."""
    if label is None or label.isdigit():
        return None if label is None else int(label)
    names = class_names(run)
    if label not in names:
        known = ", ".join(names) if names else "none recorded, so give an index"
        raise UserError(f"--label: {label!r} is not a class of {run}; its classes: {known}")
    return names.index(label)


def requested_labels(label: int | None, n: int, n_classes: int, run: str) -> np.ndarray | None:
    """The class of each of n samples: `label` (--label), else the classes in turn; None for
    an unconditional model (n_classes = 0). A --label the run cannot honour is a `UserError`."""
    if label is not None and not n_classes:
        raise UserError(f"--label: {run} is not a class-conditional run (train it with --conditional)")
    if label is not None and not 0 <= label < n_classes:
        raise UserError(f"--label: must be below {n_classes} (the run's classes), got {label}")
    if not n_classes:
        return None
    return np.full(n, label, np.int32) if label is not None else cycled_labels(n, n_classes)


def class_count(labels: np.ndarray) -> int:
    """The number of classes of a labelled training set, for --conditional (else a UserError)."""
    if len(labels) == 0 or labels.min() < 0:
        raise UserError("--conditional: the dataset has unlabelled images (labels come from "
                        "MNIST-style arrays or a folder with one subfolder per class)")
    return int(labels.max()) + 1
