"""Train and cache the feature classifier used by the sample-quality metrics.

    python -m experiments.classifier --dataset mnist
    python -m experiments.classifier --dataset shapes --image-size 32

Trains `common.evaluation.classifier.DigitCNN` (28×28 grey digits) or `SmallResNet` (any other labelled
dataset: cifar10, shapes, whose label is the shape, or a folder with class sub-folders) on
the training split, prints its test accuracy and
writes it (atomically) to the cache that `common.evaluation.classifier.get_classifier` reads. With
the default settings it makes exactly what `common.evaluation.classifier.get_classifier` (used by
`experiments.compare` and `experiments.score`) builds when no classifier is cached.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.config import parse_settings, precision_setting, setting
from common.data import load_splits
from common.data_settings import CHANNELS, check_dataset, check_image_options
from common.errors import UserError, run_cli
from common.evaluation.classifier import (
    TRAINING_DEFAULTS,
    classifier_path,
    dataset_fingerprint,
    save_classifier,
    train_classifier,
    training_report,
)
from common.precision import use_precision


@dataclass
class Settings:
    dataset: str = setting("mnist", "labelled dataset to train on: mnist, fashion_mnist, cifar10, "
                                    "shapes or folder:PATH with class sub-folders")
    data_dir: str | None = setting(None, "folder holding the dataset (default: $DATA_DIR)")
    image_size: int | None = setting(None, "load images at this square size, as the models were "
                                           "trained (unset: the dataset's own)")
    channels: int | None = setting(None, "1 or 3; unset: the dataset's own", choices=CHANNELS)
    epochs: int = setting(TRAINING_DEFAULTS["epochs"], "training epochs", positive=True)
    batch_size: int = setting(TRAINING_DEFAULTS["batch_size"], "batch size", positive=True)
    learning_rate: float = setting(TRAINING_DEFAULTS["learning_rate"],
                                   "initial Adam learning rate (cosine decay to 0)", positive=True)
    augment: bool = setting(TRAINING_DEFAULTS["augment"], "random shifts of up to 2 pixels")
    seed: int = setting(TRAINING_DEFAULTS["seed"], "seed for NumPy and TensorFlow", min=0)
    overwrite: bool = setting(False, "retrain even if a classifier is already cached")
    quiet: bool = setting(False, "no progress bar")
    precision: str = precision_setting()

    def validate(self) -> None:
        check_dataset(self.dataset)
        check_image_options(self.image_size, self.channels)

    def image_options(self) -> dict:
        return {key: value for key, value in (("image_size", self.image_size),
                                              ("channels", self.channels)) if value is not None}


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0],
                              prog="python -m experiments.classifier")
    splits = load_splits(settings.dataset, settings.data_dir, **settings.image_options())
    fingerprint = dataset_fingerprint(splits)
    path = classifier_path(settings.dataset, fingerprint)
    if path.exists() and not settings.overwrite:
        raise UserError(f"{path}: a {settings.dataset} classifier is already cached; "
                        "use --overwrite to retrain it")
    if settings.batch_size > len(splits.x_train):
        raise UserError(f"--batch-size: must be at most {len(splits.x_train)}")
    with use_precision(settings.precision):
        result = train_classifier(settings.dataset, splits, fingerprint, epochs=settings.epochs,
                                  image_options=settings.image_options(),
                                  batch_size=settings.batch_size, learning_rate=settings.learning_rate,
                                  augment=settings.augment, seed=settings.seed,
                                  verbose=0 if settings.quiet else 2)
    print(training_report(settings.dataset, result, settings.epochs, save_classifier(result.classifier)))


if __name__ == "__main__":
    run_cli(main)
