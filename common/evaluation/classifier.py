"""A small CNN per dataset whose penultimate layer gives the features for FID and precision/recall.

Trained once by `python -m experiments.classifier --dataset mnist` (or by `get_classifier`,
which the comparison and `experiments.score` call, when none is cached) and cached as a `.keras`
file in `$CLASSIFIER_CACHE` (default `~/.cache/generative-models/classifiers/`), named by
dataset, a fingerprint of the data and `CODE_VERSION`, so a changed dataset copy or a
changed network never silently reuses an old classifier. Metrics computed with it are
comparable across this project's models, not with Inception-based FID / IS.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import keras
import numpy as np
import tensorflow as tf

from common.data import Splits, load_splits, make_dataset
from common.data_settings import FOLDER_PREFIX, check_dataset
from common.errors import UserError, first_line
from common.precision import load_model

# Bump when the network or its training changes: old cache files are then ignored.
CODE_VERSION = 1
DEFAULT_CACHE = Path("~/.cache/generative-models/classifiers")
N_CLASSES = 10
# How the cached classifier is trained: the defaults of `python -m experiments.classifier`,
# and what `get_classifier` builds when none is cached.
TRAINING_DEFAULTS = {"epochs": 8, "batch_size": 128, "learning_rate": 1e-3, "augment": True, "seed": 0}
# One epoch over 50,000 images on 2 otherwise idle CPU cores (docs/experiments.md): for the
# time estimate `get_classifier` prints.
SECONDS_PER_EPOCH = 25.0
# Batch-norm moving averages of the ResNet: Keras' 0.99 is still ~20 % off after the 160
# steps of 2 epochs on 10,000 images, which left test accuracy at chance (31.5 % on shapes
# with 98 % on the training batches); 0.9 settles within ~50 steps.
BN_MOMENTUM = 0.9
# SmallResNet on 32 px colour against DigitCNN on 28 px digits, per image: a rough figure
# (2 epochs on 10,000 shapes took 279 s at load average 15, against 25 s per 50,000 digits idle).
RESNET_SLOWDOWN = 10.0


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
    """The cache file: the dataset's name (a folder's by its last part) and fingerprint."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset.rstrip("/").replace(":", "-", 1).split("/")[-1]
                  if not dataset.startswith(FOLDER_PREFIX) else
                  "folder-" + Path(dataset[len(FOLDER_PREFIX):].rstrip("/")).name)
    return cache_dir() / f"{name}-{fingerprint[:16]}-v{CODE_VERSION}.keras"


class FeatureNetwork(keras.Model):
    """A classifier whose penultimate layer gives the features: a trunk (each subclass's
    `make_trunk`) ending in a `feature_size`-unit ReLU layer, then dropout and the class
    logits. The dataset name and fingerprint travel in the saved config so a cache file can
    be checked on load."""

    def __init__(self, dataset: str, fingerprint: str, width: int = 32, feature_size: int = 128,
                 dropout: float = 0.4, classes: int = N_CLASSES, image_options: dict | None = None,
                 image_shape: tuple[int, int, int] = (28, 28, 1), **kwargs):
        super().__init__(**kwargs)
        self.dataset, self.fingerprint = dataset, fingerprint
        self.width, self.feature_size, self.dropout_rate = width, feature_size, dropout
        self.classes, self.image_options = classes, dict(image_options or {})
        self.image_shape = tuple(image_shape)
        self.trunk = self.make_trunk()
        self.head_dropout = keras.layers.Dropout(dropout)
        self.head = keras.layers.Dense(classes, name="logits")

    def make_trunk(self) -> keras.Sequential:
        raise NotImplementedError

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
                "dropout": self.dropout_rate, "classes": self.classes,
                "image_options": self.image_options, "image_shape": list(self.image_shape)}


@keras.saving.register_keras_serializable(package="generative_models")
class DigitCNN(FeatureNetwork):
    """The digits' network: conv-conv-pool-conv-conv-pool → the feature layer.

    2×conv(`width`) and 2×conv(2·`width`), 3×3 ReLU, max-pooling with dropout. No batch norm,
    so features do not depend on moving statistics lagging the weights.
    """

    def make_trunk(self) -> keras.Sequential:
        blocks = []
        for filters in (self.width, self.width, None, 2 * self.width, 2 * self.width, None):
            if filters is None:
                blocks += [keras.layers.MaxPooling2D(), keras.layers.Dropout(self.dropout_rate / 2)]
            else:
                blocks.append(keras.layers.Conv2D(filters, 3, activation="relu"))
        return keras.Sequential(
            [*blocks, keras.layers.Flatten(), keras.layers.Dense(self.feature_size, activation="relu")],
            name="trunk")


@keras.saving.register_keras_serializable(package="generative_models")
class ResidualBlock(keras.layers.Layer):
    """He et al. 2016's basic block: two 3×3 conv-BN layers and an identity (or 1×1
    stride-`stride` projection) shortcut, ReLU after the sum."""

    def __init__(self, filters: int, stride: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.stride = filters, stride
        self.conv1 = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)
        self.bn1 = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)
        self.conv2 = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.bn2 = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)
        self.project = None if stride == 1 else keras.layers.Conv2D(filters, 1, strides=stride,
                                                                    use_bias=False)

    def call(self, x, training: bool = False):
        y = tf.nn.relu(self.bn1(self.conv1(x), training=training))
        y = self.bn2(self.conv2(y), training=training)
        return tf.nn.relu(y + (x if self.project is None else self.project(x)))

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters, "stride": self.stride}


@keras.saving.register_keras_serializable(package="generative_models")
class SmallResNet(FeatureNetwork):
    """A small ResNet for colour images (32×32 and up): He et al. 2016's CIFAR ResNet with
    two basic blocks per stage instead of three (a ResNet-14) — a 3×3 stem of `width`
    filters, three stages (width, 2·width, 4·width; the last two halve the size), global
    average pooling, then the `feature_size`-unit ReLU feature layer."""

    def make_trunk(self) -> keras.Sequential:
        layers = [keras.layers.Conv2D(self.width, 3, padding="same", use_bias=False),
                  keras.layers.BatchNormalization(momentum=BN_MOMENTUM), keras.layers.ReLU()]
        for stage in range(3):
            layers += [ResidualBlock(self.width * 2 ** stage, stride=1 if stage == 0 else 2),
                       ResidualBlock(self.width * 2 ** stage)]
        layers += [keras.layers.GlobalAveragePooling2D(),
                   keras.layers.Dense(self.feature_size, activation="relu")]
        return keras.Sequential(layers, name="trunk")


class FeatureClassifier:
    """A trained `DigitCNN` / `SmallResNet` seen as a feature extractor and a
    class-probability model.

    Accepts images of the network's input shape (N, H, W, C), or (N, H, W) for grey, float
    in [0, 1]; returns NumPy arrays.
    """

    def __init__(self, model: FeatureNetwork, data_dir: str | None = None):
        self.model = model
        self.dataset = model.dataset
        self.data_dir = data_dir  # where its dataset came from, for reference images
        self.image_options = model.image_options  # image_size / channels its dataset was loaded with
        self.image_shape = model.image_shape
        spec = [tf.TensorSpec([None, *self.image_shape], tf.float32)]
        self._features = tf.function(lambda x: model.embed(x, training=False), input_signature=spec)
        self._probabilities = tf.function(lambda x: tf.nn.softmax(model(x, training=False)),
                                          input_signature=spec)

    def _as_batch(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.float32)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.shape[1:] != self.image_shape or len(images) == 0:
            expected = ", ".join(map(str, self.image_shape))
            raise ValueError(f"expected images (N > 0, {expected}), got shape {images.shape}")
        return images

    def _apply(self, function, images: np.ndarray, batch_size: int) -> np.ndarray:
        images = self._as_batch(images)
        return np.concatenate([function(images[i:i + batch_size]).numpy()
                               for i in range(0, len(images), batch_size)])

    def features(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Penultimate-layer activations, (N, feature_size) float32."""
        return self._apply(self._features, images, batch_size)

    def probabilities(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Softmax class probabilities, (N, classes) float32."""
        return self._apply(self._probabilities, images, batch_size)

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        return float(np.mean(self.probabilities(images).argmax(axis=1) == np.asarray(labels)))

    @functools.cached_property
    def weights_digest(self) -> str:
        """A digest of the network's weights (computed once: they do not change after loading):
        scores are comparable only when made with the same weights, which a classifier trained
        again elsewhere need not have (a study scored over several sessions checks it)."""
        digest = hashlib.sha256()
        for weight in self.model.weights:
            digest.update(keras.ops.convert_to_numpy(weight).tobytes())
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class TrainingResult:
    classifier: FeatureClassifier
    test_accuracy: float
    seconds: float


def classifier_network(dataset: str, splits: Splits, fingerprint: str, width: int,
                       feature_size: int, image_options: dict | None = None) -> FeatureNetwork:
    """A `DigitCNN` for 28×28 grey digits, else a `SmallResNet`, with one logit per class of
    `splits` (labels 0..classes−1); an unlabelled dataset (labels −1) is a `UserError`."""
    labels = np.concatenate([splits.y_train, splits.y_test])
    if labels.size == 0 or labels.min() < 0:
        raise UserError(f"{dataset} has no class labels (a folder without class sub-folders), so "
                        "no feature classifier can be trained; score it with --features inception")
    image_shape = tuple(splits.x_train.shape[1:])
    digits = image_shape == (28, 28, 1)
    # The ResNet's stages get width/2, width, 2·width filters: 16-32-64 by default, as in
    # He et al.'s CIFAR ResNets.
    return (DigitCNN if digits else SmallResNet)(
        dataset, fingerprint, width=width if digits else max(1, width // 2), feature_size=feature_size,
                   classes=int(labels.max()) + 1, image_options=image_options,
                   image_shape=image_shape)


def train_classifier(dataset: str, splits: Splits, fingerprint: str | None = None,
                     epochs: int = 8, batch_size: int = 128, learning_rate: float = 1e-3,
                     width: int = 32, feature_size: int = 128, augment: bool = True,
                     seed: int = 0, verbose: int = 1,
                     image_options: dict | None = None) -> TrainingResult:
    """Train `classifier_network` on `splits.x_train` (Adam, cosine-decayed learning rate).

    Validation accuracy is shown per epoch; the test split is used once, at the end.
    """
    keras.utils.set_random_seed(seed)
    fingerprint = fingerprint or dataset_fingerprint(splits)
    model = classifier_network(dataset, splits, fingerprint, width, feature_size, image_options)
    steps = -(-len(splits.x_train) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=epochs * steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    train = make_dataset(splits.x_train, splits.y_train, batch_size, shuffle=True, seed=seed)
    if augment:  # random shifts of up to 2 pixels (of 28): label-preserving for digits, shapes, photos
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


def read_cache(dataset: str, fingerprint: str, data_dir: str | None = None,
               precision: str = "float32") -> FeatureClassifier:
    """The cache file of this dataset copy, opened computing in `precision`, or a `UserError`
    saying how to build it (missing), rebuild it (corrupt) or that it holds other data."""
    path = classifier_path(dataset, fingerprint)
    if not path.is_file():
        raise UserError(f"no {dataset} classifier cached at {path}; {_rebuild_hint(dataset)}")
    try:
        model = load_model(path, precision, compile=False)
    except Exception as error:  # zip, HDF5, JSON and Keras errors all mean an unreadable file
        reason = first_line(error)[:200]
        raise UserError(f"{path}: corrupt classifier cache ({reason}); "
                        f"{_rebuild_hint(dataset)} --overwrite") from None
    if not isinstance(model, FeatureNetwork) or (model.dataset, model.fingerprint) != (dataset, fingerprint):
        found = getattr(model, "dataset", type(model).__name__)
        raise UserError(f"{path}: holds a classifier for {found!r} (other data), not this "
                        f"{dataset} copy; {_rebuild_hint(dataset)} --overwrite")
    return FeatureClassifier(model, data_dir)


def training_report(dataset: str, result: TrainingResult, epochs: int, path: Path) -> str:
    """The line printed once a classifier is trained and cached."""
    return (f"{dataset} classifier: test accuracy {100 * result.test_accuracy:.2f}% after {epochs} "
            f"epochs in {result.seconds:.0f} s; saved to {path}")


IF_MISSING = ("train", "error", "skip")


def get_classifier(dataset: str, data_dir: str | None = None, image_size: int | None = None,
                   channels: int | None = None, *, if_missing: str = "train", precision: str = "float32",
                   stream: TextIO | None = None) -> FeatureClassifier | None:
    """The cached classifier of `dataset` as loaded at `image_size` / `channels` (its own
    when None), computing in `precision`: the one way the project gets its classifier.

    When none is cached for this copy of the data, `if_missing` says what happens:
    "train" trains and caches it first, in float32 so the cached instrument does not depend
    on who built it: what `python -m experiments.classifier --dataset <dataset>` makes
    (`TRAINING_DEFAULTS`), announced with a time estimate and then its test accuracy on
    `stream` (default stdout); "error" raises a `UserError` naming that command; "skip"
    prints a note saying so and returns None (training then scores no samples). A corrupt
    cache file, or one made from other data, is always a `UserError`, never replaced.
    """
    if if_missing not in IF_MISSING:
        raise ValueError(f"if_missing must be one of {IF_MISSING}, got {if_missing!r}")
    check_dataset(dataset)
    image_options = {key: value for key, value in (("image_size", image_size), ("channels", channels))
                     if value is not None}
    splits = load_splits(dataset, data_dir, **image_options)
    fingerprint = dataset_fingerprint(splits)
    if not classifier_path(dataset, fingerprint).is_file():
        if if_missing == "skip":
            options = "".join(f" --{name.replace('_', '-')} {value}" for name, value in image_options.items())
            print(f"note: no {dataset} classifier cached, so no sample-quality scores; build it with "
                  f"`python -m experiments.classifier --dataset {dataset}{options}`", flush=True)
            return None
        if if_missing == "train":
            build_cache(dataset, splits, fingerprint, image_options, stream or sys.stdout)
    return read_cache(dataset, fingerprint, data_dir, precision)


def build_cache(dataset: str, splits: Splits, fingerprint: str, image_options: dict, stream: TextIO) -> None:
    """Train the classifier of `dataset` with `TRAINING_DEFAULTS` and cache it, saying so on `stream`."""
    epochs = TRAINING_DEFAULTS["epochs"]
    estimate = SECONDS_PER_EPOCH * epochs * len(splits.x_train) / 50_000
    if splits.x_train.shape[1:] != (28, 28, 1):  # the ResNet
        estimate *= RESNET_SLOWDOWN
    print(f"no {dataset} classifier cached: training one (about {estimate:.0f} s on 2 CPU cores, "
          f"{epochs} epochs) into {classifier_path(dataset, fingerprint)}", file=stream, flush=True)
    result = train_classifier(dataset, splits, fingerprint, **TRAINING_DEFAULTS, verbose=0,
                              image_options=image_options)
    print(training_report(dataset, result, epochs, save_classifier(result.classifier)), file=stream, flush=True)
