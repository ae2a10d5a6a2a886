"""Score any samples against a reference with the comparison's metrics; print them as JSON.

    python -m experiments.score --samples X.npz --reference mnist:test
    python -m experiments.score --samples FOLDER --reference other.npz --dataset mnist --out result.json
    python -m experiments.score --samples X.npz --reference cifar10:test --features inception

--samples is an .npz holding `images` (uint8 (N, H, W), (N, H, W, 1) or (N, H, W, 3), or
float in [0, 1]), as `vae.sample` and `gan.sample` write them, or a folder of PNG/JPEG
images. --reference is a dataset split (`mnist:test`, `shapes:test`, `cifar10:train`, …;
loaded at the samples' size) or another .npz or folder. With `--features classifier` both
go through the project's classifier of --dataset (default: the reference's dataset, else
mnist; trained and cached first if it is not cached yet), and one JSON object is printed
whose keys are the metric names: fid, kid, kid_std, precision, recall, density, coverage,
classifier_score, classes_covered, class_kl_to_uniform, class_counts, then samples and
reference_samples (and the KID subset settings). The numbers are those of the comparison
table (common.evaluation.scoring, the one scoring path), so samples from other programs can be put in
the same table; like it, they are not comparable with Inception FID / KID.
`--features inception` uses InceptionV3 pool features instead (`common.evaluation.inception`, weights
from $INCEPTION_WEIGHTS or Keras' download; any dataset, labelled or not) and prints no
class metrics.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.config import parse_settings, precision_setting, setting
from common.data import load_splits
from common.data_settings import DATASET_NAMES, DATASETS, check_dataset
from common.errors import UserError, first_line, run_cli
from common.evaluation.classifier import FeatureClassifier, get_classifier
from common.evaluation.inception import InceptionFeatures
from common.evaluation.scoring import DENSITY_K, PRECISION_K, feature_scores, reference_set, score
from common.files import write_json
from common.images import load_image

SPLITS = {"train": "x_train", "validation": "x_validation", "test": "x_test"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
FEATURES = ("classifier", "inception")


@dataclass
class Settings:
    samples: str | None = setting(None, ".npz with an `images` array, or a folder of PNG/JPEG images "
                                        "(required)")
    reference: str = setting("mnist:test", "DATASET:SPLIT (split: train, validation or test), or an "
                                           ".npz or folder like --samples")
    features: str = setting("classifier", "feature extractor: the project's classifier of --dataset, "
                                          "or InceptionV3 pool features", choices=FEATURES)
    dataset: str | None = setting(None, "whose classifier gives the features (default: the "
                                        "reference's dataset, else mnist)")
    data_dir: str | None = setting(None, "folder holding the dataset (default: $DATA_DIR)")
    kid_subset_size: int = setting(1000, "KID: images per subset (both sets need at least this many)",
                                   min=2)
    kid_subsets: int = setting(100, "KID: number of subsets averaged", positive=True)
    out: str | None = setting(None, "also write the JSON object to this file")
    precision: str = precision_setting()  # of the feature network; scores are comparable at float32

    def validate(self) -> None:
        if not self.samples:
            raise UserError("--samples: say which images to score (an .npz or a folder)")
        if self.dataset is not None:
            check_dataset(self.dataset)


def unit_images(images: np.ndarray, where: str) -> np.ndarray:
    """uint8 (N, H, W[, 1 or 3]) or float in [0, 1] → float32 (N, H, W, C) in [0, 1], or a
    `UserError` saying what was found."""
    shape = images.shape
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or 0 in images.shape:
        raise UserError(f"{where}: expected images of shape (N, H, W), (N, H, W, 1) or (N, H, W, 3), "
                        f"found {shape}")
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    if not np.issubdtype(images.dtype, np.floating):
        raise UserError(f"{where}: expected uint8 images, or float images in [0, 1], found dtype "
                        f"{images.dtype}")
    if not np.isfinite(images).all():
        raise UserError(f"{where}: holds NaN or infinite values")
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise UserError(f"{where}: float images must lie in [0, 1], found values from {low:.4g} to "
                        f"{high:.4g}")
    return images.astype(np.float32)


def npz_images(path: Path, flag: str) -> np.ndarray:
    """The `images` array of an .npz archive."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "images" not in archive.files:
                found = ", ".join(archive.files) or "no arrays"
                raise UserError(f"{flag}: {path} has no `images` array (found: {found})")
            return archive["images"]
    except UserError:
        raise
    except Exception as error:  # zipfile, OSError, ValueError (pickled objects): all a bad file
        raise UserError(f"{flag}: {path} is not a readable .npz archive ({first_line(error)})") from None


def folder_images(path: Path, flag: str) -> np.ndarray:
    """The PNG/JPEG images of a folder (sorted by name) as uint8 (N, H, W, 3), or (N, H, W)
    when every image is grey; all of one size."""
    files = sorted(child for child in path.iterdir() if child.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"{flag}: {path} holds no {', '.join(IMAGE_SUFFIXES)} images")
    images = []
    for file in files:
        image = load_image(file)
        if images and image.shape != images[0].shape:
            raise UserError(f"{flag}: {file} is {image.shape[0]}×{image.shape[1]}, "
                            f"{files[0].name} {images[0].shape[0]}×{images[0].shape[1]}; "
                            "all images must have one size")
        images.append(image)
    images = np.round(np.stack(images) * 255.0).astype(np.uint8)
    grey = np.array_equal(images[..., 0], images[..., 1]) and np.array_equal(images[..., 0], images[..., 2])
    return images[..., 0] if grey else images


def load_images(location: str, flag: str) -> np.ndarray:
    """float32 (N, H, W, 1) in [0, 1] from an .npz or a folder of images."""
    path = Path(location)
    if not path.exists():
        raise UserError(f"{flag}: {path}: no such file or folder")
    images = folder_images(path, flag) if path.is_dir() else npz_images(path, flag)
    return unit_images(images, f"{flag} {path}")


def is_dataset(name: str) -> bool:
    try:
        check_dataset(name)
    except UserError:
        return False
    return True


def load_reference(settings: Settings, samples: np.ndarray) -> tuple[np.ndarray, str | None, dict]:
    """(reference images, the dataset they come from or None, the image options it was
    loaded with: the samples' size and channels for datasets other than the digits)."""
    name, colon, split = settings.reference.rpartition(":")
    if colon and is_dataset(name):
        if split not in SPLITS:
            raise UserError(f"--reference: unknown split {split!r} of {name}; choose one of "
                            f"{', '.join(SPLITS)}")
        options = {} if name in DATASETS else {"image_size": samples.shape[1],
                                               "channels": samples.shape[-1]}
        return getattr(load_splits(name, settings.data_dir, **options), SPLITS[split]), name, options
    if colon and not Path(settings.reference).exists():
        raise UserError(f"--reference: {settings.reference} is neither DATASET:SPLIT (datasets: "
                        f"{', '.join(DATASET_NAMES)}) nor an existing file or folder")
    return load_images(settings.reference, "--reference"), None, {}


def check_sizes(samples: np.ndarray, reference: np.ndarray, settings: Settings) -> None:
    """Refuse sets of different image shapes and sets too small for a metric."""
    if samples.shape[1:] != reference.shape[1:]:
        raise UserError(f"--samples: images of shape {samples.shape[1:]}, but the reference "
                        f"({settings.reference}) holds {reference.shape[1:]}")
    needs = (("--samples", len(samples), max(settings.kid_subset_size, PRECISION_K + 1)),
             ("--reference", len(reference), max(settings.kid_subset_size, DENSITY_K + 1)))
    for flag, count, least in needs:
        if count < least:
            raise UserError(f"{flag}: {count} images; the metrics need at least {least} (KID subsets of "
                            f"--kid-subset-size {settings.kid_subset_size}, k = {PRECISION_K} and "
                            f"{DENSITY_K} nearest neighbours)")


def check_classifier_shape(classifier: FeatureClassifier, samples: np.ndarray) -> None:
    if samples.shape[1:] != classifier.image_shape:
        shape = "×".join(map(str, classifier.image_shape))
        raise UserError(f"--samples: images of shape {'×'.join(map(str, samples.shape[1:]))}; the "
                        f"{classifier.dataset} classifier takes {shape} (or use --features inception)")


def classifier_dataset(settings: Settings, reference_dataset: str | None) -> str:
    """--dataset, else the reference's dataset, else mnist; a dataset split of another
    dataset than --dataset is refused."""
    if settings.dataset and reference_dataset and settings.dataset != reference_dataset:
        raise UserError(f"--dataset {settings.dataset}, but --reference is a {reference_dataset} split; "
                        "leave --dataset out")
    return settings.dataset or reference_dataset or "mnist"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Score --samples against --reference; print (and with --out write) the JSON object."""
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0], prog="python -m experiments.score")
    samples = load_images(settings.samples, "--samples")
    reference, reference_dataset, options = load_reference(settings, samples)
    check_sizes(samples, reference, settings)
    if settings.features == "inception":
        inception = InceptionFeatures()
        references = reference_set(inception.features(reference), kid_subset_size=settings.kid_subset_size,
                                   kid_subsets=settings.kid_subsets)
        scores = feature_scores(inception.features(samples), None, references)
    else:
        classifier = get_classifier(classifier_dataset(settings, reference_dataset),
                                       settings.data_dir, stream=sys.stderr,  # stdout: JSON
                                       precision=settings.precision, **options)
        check_classifier_shape(classifier, samples)
        references = reference_set(classifier.features(reference), classifier,
                                   kid_subset_size=settings.kid_subset_size, kid_subsets=settings.kid_subsets)
        scores = score(samples, references)
    result = {**scores, "features": settings.features, "samples": len(samples), "reference_samples": len(reference),
              "kid_subset_size": settings.kid_subset_size, "kid_subsets": settings.kid_subsets}
    if settings.out:
        write_json(settings.out, result)
    print(json.dumps(result, indent=2), flush=True)
    return result


if __name__ == "__main__":
    run_cli(main)
