"""Train and cache the feature classifier used by the sample-quality metrics.

    python -m experiments.classifier --dataset mnist

Trains `common.classifier.DigitCNN` on the training split, prints its test accuracy and
writes it (atomically) to the cache that `common.classifier.load_classifier` reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.classifier import classifier_path, dataset_fingerprint, save_classifier, train_classifier
from common.config import parse_settings, setting
from common.data import DATASETS, load_splits
from common.errors import UserError, run_cli


@dataclass
class Settings:
    dataset: str = setting("mnist", "dataset to train on", choices=DATASETS)
    data_dir: str | None = setting(None, "folder holding the dataset (default: $DATA_DIR)")
    epochs: int = setting(8, "training epochs", positive=True)
    batch_size: int = setting(128, "batch size", positive=True)
    learning_rate: float = setting(1e-3, "initial Adam learning rate (cosine decay to 0)",
                                   positive=True)
    augment: bool = setting(True, "random shifts of up to 2 pixels")
    seed: int = setting(0, "seed for NumPy and TensorFlow", min=0)
    overwrite: bool = setting(False, "retrain even if a classifier is already cached")
    quiet: bool = setting(False, "no progress bar")


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0],
                              prog="python -m experiments.classifier")
    splits = load_splits(settings.dataset, settings.data_dir)
    fingerprint = dataset_fingerprint(splits)
    path = classifier_path(settings.dataset, fingerprint)
    if path.exists() and not settings.overwrite:
        raise UserError(f"{path}: a {settings.dataset} classifier is already cached; "
                        "use --overwrite to retrain it")
    if settings.batch_size > len(splits.x_train):
        raise UserError(f"--batch-size: must be at most {len(splits.x_train)}")
    result = train_classifier(settings.dataset, splits, fingerprint, epochs=settings.epochs,
                              batch_size=settings.batch_size, learning_rate=settings.learning_rate,
                              augment=settings.augment, seed=settings.seed,
                              verbose=0 if settings.quiet else 2)
    path = save_classifier(result.classifier)
    print(f"{settings.dataset} classifier: test accuracy {100 * result.test_accuracy:.2f}% "
          f"after {settings.epochs} epochs in {result.seconds:.0f} s; saved to {path}")


if __name__ == "__main__":
    run_cli(main)
