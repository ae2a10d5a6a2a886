"""Class labels for sampling class-conditional models (`gan.sample`, `vae.sample --label`)."""

from __future__ import annotations

import numpy as np

from common.errors import UserError


def cycled_labels(n: int, n_classes: int) -> np.ndarray:
    """0, 1, …, n_classes − 1, 0, 1, …: n int32 labels, every class equally often (±1)."""
    return (np.arange(n) % n_classes).astype(np.int32)


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
