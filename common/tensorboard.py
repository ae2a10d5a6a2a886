"""One small TensorBoard writer for a run: scalars, image grids, text, histograms, HParams.

Train and eval summaries go to `<run>/tensorboard/train` and `<run>/tensorboard/eval`, so
TensorBoard overlays them; open with `tensorboard --logdir runs`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from common.plots import image_grid

SPLITS = ("train", "eval")


class TensorBoardLogger:
    """Summary writers for one run folder."""

    def __init__(self, run_dir: str | os.PathLike):
        self.log_dir = Path(run_dir) / "tensorboard"
        self.writers = {split: tf.summary.create_file_writer(str(self.log_dir / split))
                        for split in SPLITS}

    def scalars(self, values: Mapping[str, float], step: int, split: str = "train") -> None:
        with self.writers[split].as_default():
            for name, value in values.items():
                tf.summary.scalar(name, float(value), step=step)

    def images(self, name: str, images: np.ndarray, step: int, split: str = "train",
               columns: int | None = None) -> None:
        """Log a batch of images in [0, 1] as one grid image."""
        grid = image_grid(images, columns)
        with self.writers[split].as_default():
            tf.summary.image(name, np.clip(grid, 0.0, 1.0)[None], step=step)

    def image(self, name: str, image: np.ndarray, step: int, split: str = "train") -> None:
        """Log one (H, W) or (H, W, C) image in [0, 1]."""
        image = np.asarray(image, dtype=np.float32)
        if image.ndim == 2:
            image = image[..., None]
        with self.writers[split].as_default():
            tf.summary.image(name, np.clip(image, 0.0, 1.0)[None], step=step)

    def text(self, name: str, text: str, step: int = 0, split: str = "train") -> None:
        with self.writers[split].as_default():
            tf.summary.text(name, text, step=step)

    def config(self, settings: Mapping[str, Any]) -> None:
        """The run's settings as a Markdown code block in the Text tab."""
        body = json.dumps(dict(settings), indent=2, default=str)
        self.text("config", "\n".join("    " + line for line in body.splitlines()))

    def histogram(self, name: str, values: Any, step: int, split: str = "train") -> None:
        with self.writers[split].as_default():
            tf.summary.histogram(name, values, step=step)

    def hparams(self, settings: Mapping[str, Any], metrics: list[str]) -> None:
        """Record the run's hyperparameters for the HParams dashboard.

        Only scalar settings can be HParams; lists are written as strings.
        """
        values = {key: (value if isinstance(value, (bool, int, float, str)) else str(value))
                  for key, value in settings.items() if value is not None}
        with self.writers["train"].as_default():
            hp.hparams_config(hparams=[hp.HParam(key) for key in values],
                              metrics=[hp.Metric(name) for name in metrics])
            hp.hparams(values)

    def flush(self) -> None:
        for writer in self.writers.values():
            writer.flush()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


class EpochScalars(keras.callbacks.Callback):
    """Write Keras' epoch logs: `val_*` keys to the eval writer, the rest to train."""

    def __init__(self, logger: TensorBoardLogger):
        super().__init__()
        self.logger = logger

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        evaluation = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        learning_rate = getattr(getattr(self.model, "optimizer", None), "learning_rate", None)
        if learning_rate is not None:
            train["learning_rate"] = float(keras.ops.convert_to_numpy(learning_rate))
        self.logger.scalars(train, epoch + 1, "train")
        self.logger.scalars(evaluation, epoch + 1, "eval")
        self.logger.flush()
