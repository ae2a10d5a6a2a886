"""A small CNN per dataset whose penultimate layer gives the features for FID and precision/recall.

Trained once by `python -m experiments.classifier --dataset mnist` (or by `ensure_classifier`,
which the comparison and `experiments.score` call, when none is cached) and cached as a `.keras`
file in `$CLASSIFIER_CACHE` (default `~/.cache/generative-models/classifiers/`), named by
dataset, a fingerprint of the data and `CODE_VERSION`, so a changed dataset copy or a
changed network never silently reuses an old classifier. Metrics computed with it are
comparable across this project's models, not with Inception-based FID / IS.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import keras
import numpy as np
import tensorflow as tf

from common.data import DATASETS, Splits, load_splits, make_dataset
from common.errors import UserError, first_line
from common.precision import load_model

# Bump when the network or its training changes: old cache files are then ignored.
CODE_VERSION = 1
DEFAULT_CACHE = Path("~/.cache/generative-models/classifiers")
N_CLASSES = 10
# How the cached classifier is trained: the defaults of `python -m experiments.classifier`,
# and what `ensure_classifier` builds when none is cached.
TRAINING_DEFAULTS = {"epochs": 8, "batch_size": 128, "learning_rate": 1e-3, "augment": True, "seed": 0}
# One epoch over 50,000 images on 2 otherwise idle CPU cores (docs/experiments.md): for the
# time estimate `ensure_classifier` prints.
SECONDS_PER_EPOCH = 25.0


def cache_dir() -> Path:
    """`$CLASSIFIER_CACHE`, else ~/.cache/generative-models/classifiers."""
    return Path(os.environ.get("CLASSIFIER_CACHE") or DEFAULT_CACHE).expanduser()


def dataset_fingerprint(splits: Splits) -> str:
    """sha256 over the bytes of the train and test arrays (images and labels)."""
    digest = hashlib.sha256()
    for array in (splits.x_train, splits.y_train, splits.x_test, splits.y_test):
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def classifier_path(dataset: str, fingerprint: str) -> Path:
    return cache_dir() / f"{dataset}-{fingerprint[:16]}-v{CODE_VERSION}.keras"


@keras.saving.register_keras_serializable(package="generative_models")
class DigitCNN(keras.Model):
    """conv-conv-pool-conv-conv-pool → dense (features) → dropout → dense (logits).

    2×conv(`width`) and 2×conv(2·`width`), 3×3 ReLU, max-pooling with dropout, then a
    `feature_size`-unit ReLU layer whose activations are the features. No batch norm, so
    features do not depend on moving statistics lagging the weights. The dataset name and
    fingerprint travel in the saved config so a cache file can be checked on load.
    """

    def __init__(self, dataset: str, fingerprint: str, width: int = 32, feature_size: int = 128,
                 dropout: float = 0.4, **kwargs):
        super().__init__(**kwargs)
        self.dataset, self.fingerprint = dataset, fingerprint
        self.width, self.feature_size, self.dropout_rate = width, feature_size, dropout
        blocks = []
        for filters in (width, width, None, 2 * width, 2 * width, None):
            if filters is None:
                blocks += [keras.layers.MaxPooling2D(), keras.layers.Dropout(dropout / 2)]
            else:
                blocks.append(keras.layers.Conv2D(filters, 3, activation="relu"))
        self.trunk = keras.Sequential(
            [*blocks, keras.layers.Flatten(), keras.layers.Dense(feature_size, activation="relu")],
            name="trunk")
        self.head_dropout = keras.layers.Dropout(dropout)
        self.head = keras.layers.Dense(N_CLASSES, name="logits")

    def build(self, input_shape):
        self.trunk.build(input_shape)
        self.head.build((None, self.feature_size))
        self.built = True

    def embed(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Penultimate-layer activations, (N, feature_size)."""
        return self.trunk(images, training=training)

    def call(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.head(self.head_dropout(self.embed(images, training), training=training))

    def get_config(self) -> dict:
        return {**super().get_config(), "dataset": self.dataset, "fingerprint": self.fingerprint,
                "width": self.width, "feature_size": self.feature_size,
                "dropout": self.dropout_rate}


class FeatureClassifier:
    """A trained `DigitCNN` seen as a feature extractor and a class-probability model.

    Accepts images (N, 28, 28) or (N, 28, 28, 1), float in [0, 1]; returns NumPy arrays.
    """

    def __init__(self, model: DigitCNN, data_dir: str | None = None):
        self.model = model
        self.dataset = model.dataset
        self.data_dir = data_dir  # where its dataset came from, for reference images
        spec = [tf.TensorSpec([None, 28, 28, 1], tf.float32)]
        self._features = tf.function(lambda x: model.embed(x, training=False), input_signature=spec)
        self._probabilities = tf.function(lambda x: tf.nn.softmax(model(x, training=False)),
                                          input_signature=spec)

    @staticmethod
    def _as_batch(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.float32)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.shape[1:] != (28, 28, 1) or len(images) == 0:
            raise ValueError(f"expected images (N > 0, 28, 28[, 1]), got shape {images.shape}")
        return images

    def _apply(self, function, images: np.ndarray, batch_size: int) -> np.ndarray:
        images = self._as_batch(images)
        return np.concatenate([function(images[i:i + batch_size]).numpy()
                               for i in range(0, len(images), batch_size)])

    def features(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Penultimate-layer activations, (N, feature_size) float32."""
        return self._apply(self._features, images, batch_size)

    def probabilities(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Softmax class probabilities, (N, 10) float32."""
        return self._apply(self._probabilities, images, batch_size)

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        return float(np.mean(self.probabilities(images).argmax(axis=1) == np.asarray(labels)))


@dataclass(frozen=True)
class TrainingResult:
    classifier: FeatureClassifier
    test_accuracy: float
    seconds: float


def train_classifier(dataset: str, splits: Splits, fingerprint: str | None = None,
                     epochs: int = 8, batch_size: int = 128, learning_rate: float = 1e-3,
                     width: int = 32, feature_size: int = 128, augment: bool = True,
                     seed: int = 0, verbose: int = 1) -> TrainingResult:
    """Train a `DigitCNN` on `splits.x_train` (Adam, cosine-decayed learning rate).

    Validation accuracy is shown per epoch; the test split is used once, at the end.
    """
    keras.utils.set_random_seed(seed)
    fingerprint = fingerprint or dataset_fingerprint(splits)
    model = DigitCNN(dataset, fingerprint, width=width, feature_size=feature_size)
    steps = -(-len(splits.x_train) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=epochs * steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    train = make_dataset(splits.x_train, splits.y_train, batch_size, shuffle=True, seed=seed)
    if augment:  # random shifts of up to 2 pixels: label-preserving for digits and clothes
        shift = keras.layers.RandomTranslation(2 / 28, 2 / 28, fill_mode="constant", seed=seed)
        train = train.map(lambda x, y: (shift(x, training=True), y),
                          num_parallel_calls=tf.data.AUTOTUNE)
    validation = make_dataset(splits.x_validation, splits.y_validation, batch_size=500) \
        if len(splits.x_validation) >= 500 else None
    start = time.perf_counter()
    # The dataset shuffles itself; fit's own shuffle only applies to arrays (and warns).
    model.fit(train, epochs=epochs, validation_data=validation, shuffle=False, verbose=verbose)
    seconds = time.perf_counter() - start
    classifier = FeatureClassifier(model)
    return TrainingResult(classifier, classifier.accuracy(splits.x_test, splits.y_test), seconds)


def save_classifier(classifier: FeatureClassifier) -> Path:
    """Write the classifier to its cache path atomically (temporary file, then rename)."""
    model = classifier.model
    path = classifier_path(model.dataset, model.fingerprint)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".keras")
        os.close(fd)
    except OSError as error:
        raise UserError(f"cannot write the classifier cache {path}: {error.strerror or error}") from None
    try:
        model.save(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is readable like any output
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _rebuild_hint(dataset: str) -> str:
    return f"run `python -m experiments.classifier --dataset {dataset}` to build it"


def load_cached_classifier(dataset: str, fingerprint: str, data_dir: str | None = None,
                           precision: str = "float32") -> FeatureClassifier:
    """The cached classifier for this dataset copy computing in `precision`, or a `UserError`
    saying how to build it."""
    path = classifier_path(dataset, fingerprint)
    if not path.is_file():
        raise UserError(f"no {dataset} classifier cached at {path}; {_rebuild_hint(dataset)}")
    try:
        model = load_model(path, precision, compile=False)
    except Exception as error:  # zip, HDF5, JSON and Keras errors all mean an unreadable file
        reason = first_line(error)[:200]
        raise UserError(f"{path}: corrupt classifier cache ({reason}); "
                        f"{_rebuild_hint(dataset)} --overwrite") from None
    if not isinstance(model, DigitCNN) or (model.dataset, model.fingerprint) != (dataset, fingerprint):
        found = getattr(model, "dataset", type(model).__name__)
        raise UserError(f"{path}: holds a classifier for {found!r} (other data), not this "
                        f"{dataset} copy; {_rebuild_hint(dataset)} --overwrite")
    return FeatureClassifier(model, data_dir)


def _fingerprint_of(dataset: str, data_dir: str | None) -> str:
    if dataset not in DATASETS:
        raise UserError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    return dataset_fingerprint(load_splits(dataset, data_dir))


def classifier_is_cached(dataset: str, data_dir: str | None = None) -> bool:
    """Whether a cache file exists for this dataset copy (it is not opened or checked)."""
    return classifier_path(dataset, _fingerprint_of(dataset, data_dir)).is_file()


def load_classifier(dataset: str, data_dir: str | None = None) -> FeatureClassifier:
    """Load the cached classifier of `dataset` (data from `data_dir` or `$DATA_DIR`).

    Raises `UserError` if it is not cached, corrupt, or made from other data.
    """
    return load_cached_classifier(dataset, _fingerprint_of(dataset, data_dir), data_dir)


def classifier_for_training(dataset: str, data_dir: str | None = None,
                            enabled: bool = True) -> FeatureClassifier | None:
    """The cached classifier that scores samples during training, or None (with a notice)
    when scoring is turned off (`--no-eval`) or no classifier is cached yet."""
    if not enabled:
        return None
    if not classifier_is_cached(dataset, data_dir):
        print(f"note: no {dataset} classifier cached, so no sample-quality scores; "
              f"build it with `python -m experiments.classifier --dataset {dataset}`", flush=True)
        return None
    return load_classifier(dataset, data_dir)


def training_report(dataset: str, result: TrainingResult, epochs: int, path: Path) -> str:
    """The line printed once a classifier is trained and cached."""
    return (f"{dataset} classifier: test accuracy {100 * result.test_accuracy:.2f}% after {epochs} "
            f"epochs in {result.seconds:.0f} s; saved to {path}")


def ensure_classifier(dataset: str, data_dir: str | None = None, stream: TextIO | None = None,
                      precision: str = "float32") -> FeatureClassifier:
    """The cached classifier of `dataset` computing in `precision`; when none is cached, train
    and cache it first (in float32, so the cached instrument does not depend on who built it).

    What is trained is what `python -m experiments.classifier --dataset <dataset>` makes
    (`train_classifier` with `TRAINING_DEFAULTS`), announced by one line with a time
    estimate and followed by one with its test accuracy, both to `stream` (default stdout).
    A corrupt cache file, or one made from other data, is not replaced: that stays a
    `UserError` (see `load_cached_classifier`).
    """
    if dataset not in DATASETS:
        raise UserError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    splits = load_splits(dataset, data_dir)
    fingerprint = dataset_fingerprint(splits)
    path = classifier_path(dataset, fingerprint)
    if not path.is_file():
        epochs = TRAINING_DEFAULTS["epochs"]
        estimate = SECONDS_PER_EPOCH * epochs * len(splits.x_train) / 50_000
        print(f"no {dataset} classifier cached: training one (about {estimate:.0f} s on 2 CPU cores, "
              f"{epochs} epochs) into {path}", file=stream or sys.stdout, flush=True)
        result = train_classifier(dataset, splits, fingerprint, **TRAINING_DEFAULTS, verbose=0)
        print(training_report(dataset, result, epochs, save_classifier(result.classifier)),
              file=stream or sys.stdout, flush=True)
    return load_cached_classifier(dataset, fingerprint, data_dir, precision)
