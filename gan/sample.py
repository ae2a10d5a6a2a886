"""Draw images from a trained generator: `python -m gan.sample --run RUN_DIR --n 64 --out grid.png`.

`--out` ending in .png/.jpg writes a grid; .npz writes `images` uint8, (N, H, W) for grey
and (N, H, W, 3) for colour images.
`--interpolate` walks the latent space between two noise vectors instead (one row of
`--steps` images per walk, `--n` walks). `--score` also scores the samples with the cached
classifier (FID on its features against the test set, classifier score, classes covered),
prints them and logs them to the run's TensorBoard.
A run trained with `--ema` is sampled with its EMA generator (`--raw`: the trained one);
`--best` takes the generator of the epoch whose samples scored the run's lowest FID.
A class-conditional run (`--conditional`) draws the classes in turn, or only `--label C`;
a run trained on clusters (`--clusters K`) draws them in proportion to their sizes, as it
was trained, or only cluster `--label C`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from common.conditioning import cycled_labels, label_index, requested_labels
from common.config import parse_settings, precision_setting, setting
from common.errors import UserError, first_line, run_cli
from common.evaluation.classifier import FeatureClassifier, get_classifier
from common.evaluation.metrics import per_class_accuracy
from common.evaluation.quality import SampleQuality
from common.files import read_json
from common.latent import slerp
from common.plots import write_samples
from common.precision import load_model
from common.runs import load_run_config, lock_if_writing_into
from common.tensorboard import TensorBoardLogger
from gan.clusters import load_frequencies, proportional_labels
from gan.model import noise_size, to_unit_range

GENERATOR_FILE = "generator.keras"
EMA_GENERATOR_FILE = "generator_ema.keras"  # the weights' moving average (gan.train --ema)
OUTPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".npz")


def best_file(name: str) -> str:
    """Where gan.train keeps the generator of its lowest FID: generator[_ema]_best.keras."""
    return name.replace(".keras", "_best.keras")


def load_generator(run_dir: str | Path, precision: str = "float32", raw: bool = False,
                   best: bool = False) -> keras.Model:
    """The generator a `gan.train` run saved (after each epoch), computing in `precision`:
    its EMA generator when it has one, unless `raw`; with `best`, as it was at the epoch of
    its lowest sample FID."""
    run_dir = Path(run_dir)
    load_run_config(run_dir, "gan")
    names = [GENERATOR_FILE] if raw else [EMA_GENERATOR_FILE, GENERATOR_FILE]
    names = [best_file(name) for name in names] if best else names
    path = next((run_dir / name for name in names if (run_dir / name).is_file()), None)
    if path is None:
        why = "no epoch scored; train with --eval" if best else "no epoch finished"
        raise UserError(f"{run_dir}: has no {names[-1]} yet ({why})")
    try:
        return load_model(path, precision, compile=False)
    except Exception as error:  # a damaged zip, a foreign file: one line, not a traceback
        raise UserError(f"{path}: cannot load the generator ({first_line(error)})") from None


def generator_classes(generator: keras.Model) -> int:
    """The classes of a conditional generator ([noise, label] inputs); 0 when unconditional."""
    if len(generator.inputs) < 2:
        return 0
    return int(generator.get_layer("class_embedding").input_dim)


def output_activation(generator: keras.Model) -> str:
    """The activation of the `to_image` layer, also inside a conditional generator's body."""
    for layer in generator.layers:
        if layer.name == "to_image":
            return layer.get_config()["activation"]
        if isinstance(layer, keras.Model):
            return output_activation(layer)
    raise UserError(f"{generator.name}: has no to_image layer; not a gan.train generator")


def generate(generator: keras.Model, noise: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Images (N, H, W) grey or (N, H, W, C) colour, float32 in [0, 1], for noise (N, noise_dim),
    whatever the output activation. A conditional generator takes `labels` (N,), by
    default the classes in turn."""
    n_classes = generator_classes(generator)
    if n_classes and labels is None:
        labels = cycled_labels(len(noise), n_classes)
    inputs = [noise, np.asarray(labels, np.int32)] if n_classes else noise
    images = generator.predict(inputs, batch_size=256, verbose=0).astype(np.float32)
    images = to_unit_range(images, output_activation(generator))
    images = images[..., 0] if images.shape[-1] == 1 else images
    return np.clip(images, 0.0, 1.0)


def noise_for(generator: keras.Model, n: int, seed: int) -> np.ndarray:
    """n noise vectors z ~ N(0, I), reproducible from the seed."""
    return np.random.default_rng(seed).standard_normal((n, noise_size(generator))).astype(np.float32)


def sample_images(generator: keras.Model, n: int, seed: int = 0,
                  labels: np.ndarray | None = None) -> np.ndarray:
    """n samples (n, H, W[, C]) float32 in [0, 1] (of the classes `labels` when conditional)."""
    return generate(generator, noise_for(generator, n, seed), labels)


def interpolate(generator: keras.Model, steps: int, seed: int = 0, label: int | None = None) -> np.ndarray:
    """(steps, H, W[, C]) images along the latent path between two noise vectors drawn from
    `seed` (for a conditional generator all of class `label`, by default seed mod classes)."""
    start, end = noise_for(generator, 2, seed)
    n_classes = generator_classes(generator)
    labels = np.full(steps, seed % n_classes if label is None else label) if n_classes else None
    return generate(generator, slerp(start, end, np.linspace(0.0, 1.0, steps)).astype(np.float32),
                    labels)


INTERPOLATION = "spherical interpolation between two prior samples"


@dataclass
class GANSampler:
    """A trained generator behind the protocol the comparison uses for every family.

    `sample(n, seed)` → (n, H, W, C) float32 in [0, 1] (as `sample_images`);
    `interpolations(rows)` → (rows·10, H, W, C), row r the 10-step walk `interpolate`
    draws from seed 1 + r; `curves(metrics)` → (title, x label, {label: (x, y)}) from a
    schema-2 metrics.json; `info` describes the loaded network.
    """

    generator: keras.Model
    info: dict
    label_frequencies: np.ndarray | None = None  # a --clusters run's cluster sizes

    def sample(self, n: int, seed: int) -> np.ndarray:
        frequencies = self.label_frequencies
        labels = None if frequencies is None else proportional_labels(n, frequencies)
        images = sample_images(self.generator, n, seed, labels)
        return images[..., None] if images.ndim == 3 else images

    def interpolations(self, rows: int) -> np.ndarray:
        walks = [interpolate(self.generator, 10, seed=1 + row) for row in range(rows)]
        images = np.concatenate(walks)
        return images[..., None] if images.ndim == 3 else images

    def curves(self, metrics: dict) -> tuple[str, str, dict[str, tuple[list, list]]]:
        """D and G losses per logged generator step (the `step_history`): the trackers' means
        since the epoch began, so each epoch's curve starts afresh."""
        steps = metrics.get("step_history", {})
        curves = {label: (steps["step"], steps[key]) for key, label in
                  (("d_loss", "discriminator"), ("g_loss", "generator")) if steps.get(key)}
        return "losses (running means over each epoch)", "generator step", curves


def load_sampler(run_dir: str | Path, precision: str = "float32") -> GANSampler:
    """The run's generator (see `load_generator`) as a `GANSampler`; info: family, sampler
    (generator) parameters, noise size and what `interpolations` shows."""
    generator = load_generator(run_dir, precision)
    return GANSampler(generator, {"family": "gan", "sampler_parameters": generator.count_params(),
                                  "latent_dim": noise_size(generator),
                                  "interpolation": INTERPOLATION}, load_frequencies(run_dir))


@dataclass
class Settings:
    run: str = setting("", "run folder of a gan.train run")
    out: str = setting("samples.png", "output: .png/.jpg grid or .npz with uint8 `images`")
    n: int = setting(64, "number of samples (with --interpolate: number of walks)", positive=True,
                     max=100000)
    seed: int = setting(0, "noise seed", min=0)
    interpolate: bool = setting(False, "latent walks between two noise vectors instead of samples")
    steps: int = setting(10, "images per walk with --interpolate", min=2, max=1000)
    score: bool = setting(False, "also score the samples with the cached classifier (see common.evaluation.quality)")
    zoom: int = setting(1, "enlarge a PNG/JPEG grid by this integer factor (nearest neighbour)",
                        min=1, max=16)
    label: str | None = setting(None, "class-conditional runs: every sample of this class, an "
                                      "index or a class name (unset: the classes in turn)")
    raw: bool = setting(False, "use the trained generator even when the run saved an EMA one")
    best: bool = setting(False, "use the generator as it was at the epoch of the run's lowest "
                                "sample FID (gan.train --eval keeps it)")
    precision: str = precision_setting()

    def validate(self) -> None:
        if not self.run:
            raise UserError("--run: give the run folder of a gan.train run")
        if Path(self.out).suffix.lower() not in OUTPUT_SUFFIXES:
            raise UserError(f"--out: {self.out} must end in {', '.join(OUTPUT_SUFFIXES)}")
        if self.score and (self.interpolate or self.n < 2):
            raise UserError("--score needs at least 2 samples and no --interpolate")


def main(argv: list[str] | None = None) -> Path:
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0], prog="python -m gan.sample")
    # --score logs to the run's TensorBoard: the run folder is written then
    with lock_if_writing_into(settings.run, settings.out, always=settings.score):
        return sample_to_file(settings)


def sample_to_file(settings: Settings) -> Path:
    """Draw the samples (or walks) `settings` ask for, write them to --out, and score them
    with --score."""
    generator = load_generator(settings.run, settings.precision, settings.raw, settings.best)
    label = label_index(settings.label, settings.run)
    labels = requested_labels(label, settings.n, generator_classes(generator), settings.run)
    frequencies = load_frequencies(settings.run)
    if frequencies is not None and settings.label is None:
        labels = proportional_labels(settings.n, frequencies)
    classifier = run_classifier(settings.run) if settings.score else None  # fail before writing
    if settings.interpolate:
        walks = [interpolate(generator, settings.steps, settings.seed + i, label)
                 for i in range(settings.n)]
        images, columns = np.concatenate(walks), settings.steps
    else:
        images = sample_images(generator, settings.n, settings.seed, labels)
        columns = math.ceil(math.sqrt(len(images)))
        if labels is not None and settings.label is None and frequencies is None:
            columns = generator_classes(generator)  # one column per class
    out = Path(settings.out)
    write_samples(out, images, columns, settings.zoom)
    print(f"wrote {len(images)} images to {out}")
    if classifier is not None:
        classes = labels if frequencies is None else None  # clusters are no classes to score
        print(json.dumps(score(settings.run, images, classifier, classes)))
    return out


def run_classifier(run_dir: str | Path) -> FeatureClassifier:
    """The cached classifier of the run's dataset (a `UserError` says how to build it if absent)."""
    run_settings = load_run_config(run_dir, "gan")["settings"]
    return get_classifier(run_settings["dataset"], run_settings.get("data_dir"), run_settings.get("image_size"),
                          run_settings.get("channels"), if_missing="error")


def score(run_dir: str | Path, images: np.ndarray, classifier: FeatureClassifier | None = None,
          labels: np.ndarray | None = None) -> dict[str, float]:
    """Sample quality of `images` as `gan.train --eval` measures it, logged at the run's last
    epoch; with the `labels` they were generated for, the classification accuracy score
    too, overall and per class (`accuracy_per_class`, null for a class not drawn)."""
    classifier = classifier or run_classifier(run_dir)
    quality = SampleQuality(lambda n: images, classifier, TensorBoardLogger(run_dir), every=1, n=len(images),
                            labels=None if labels is None else (lambda n: labels))
    epochs = read_json(Path(run_dir) / "metrics.json", "metrics file").get("epochs", 0)
    result = {"epochs": epochs, "samples": len(images), **quality.evaluate(epochs)}
    if labels is not None:
        per_class = per_class_accuracy(classifier.probabilities(images), labels, int(labels.max()) + 1)
        result["accuracy_per_class"] = [None if np.isnan(a) else float(a) for a in per_class]
    return result


if __name__ == "__main__":
    run_cli(main)
