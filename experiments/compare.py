"""Compare VAEs and GANs on one dataset with the same metrics, classifier and seed.

    python -m experiments.compare --config experiments/configs/mnist_vae_vs_gan.json --out DIR
    python -m experiments.compare --runs runs/vae/A runs/gan/B ... --out DIR   # finished runs
    python -m experiments.compare --quick --out /tmp/compare          # tiny budget, to try it out

Trains every model of `models` under one budget (the same epochs, or with --minutes the
same time in training steps) unless --runs gives finished run folders, samples --samples
images from each and scores them, next to real training images and two simple baselines,
with FID and precision/recall on the project's classifier features (not comparable to
Inception FID), the classifier score, class coverage, the Parzen-window log-likelihood
(GAN-paper protocol) and the VAE's test NLL. DIR receives report.md, report.html (images
inline), metrics.json and PNG figures; the trained runs go to --runs-dir (default
DIR/runs; `tensorboard --logdir` on it overlays them).
"""

from __future__ import annotations

import base64
import html
import importlib
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from common.classifier import N_CLASSES, FeatureClassifier, load_classifier
from common.config import parse_settings, setting, settings_dict
from common.data import DATASETS, Splits, load_splits
from common.errors import UserError, run_cli
from common.files import atomic_write, read_json, write_json
from common.metrics import (choose_parzen_sigma, class_histogram, classifier_score, fid,
                            parzen_log_likelihood, precision_recall)
from common.plots import image_grid, plt, save_figure
from common.runs import library_versions, load_run_config

MODELS = ("vae", "gan")
DEFAULT_MODELS = [{"name": "VAE", "model": "vae", "args": []},
                  {"name": "GAN", "model": "gan", "args": []}]
MODEL_KEYS = ("name", "model", "args")
# Flags of vae.train / gan.train that the comparison sets itself, for every model alike.
CONTROLLED_FLAGS = ("--dataset", "--data-dir", "--epochs", "--max-minutes", "--steps-per-epoch",
                    "--seed", "--run-dir", "--name", "--resume", "--quiet")
QUICK = {"epochs": 1, "steps_per_epoch": 20, "samples": 1000, "parzen_validation": 200,
         "parzen_test": 1000}
QUICK_FLAGS = {"vae": ["--nll-k", "20", "--nll-k-train", "0"], "gan": ["--log-every", "5"]}
FID_NOTE = ("FID, precision and recall use the features of this project's own "
            "classifier; they are comparable between rows here but not with Inception FID.")
PRECISION_NOTE = ("k-NN precision is sensitive to outliers among the real images: a tight cluster "
                  "of poor samples (such as the noise baselines' features) can fall inside the "
                  "large balls of a few atypical test images and get a precision near 1 "
                  "(Naeem et al. 2020); read precision together with FID and recall.")
PARZEN_NOTE = ("Parzen-window log-likelihoods (Goodfellow et al. 2014 protocol) are a poor "
               "estimate of the true log-likelihood in 784 dimensions (Theis et al. 2016); "
               "read them beside the other columns, never alone.")


def slug(name: str) -> str:
    """A model's name as a file name: `GAN k=2` → `gan_k_2`."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@dataclass
class Settings:
    out: str | None = setting(None, "folder for report.md, metrics.json, figures and runs (required)")
    dataset: str = setting("mnist", "dataset every model is trained and scored on", choices=DATASETS)
    data_dir: str | None = setting(None, "folder holding the dataset (default: $DATA_DIR)")
    models: list[dict] = setting(DEFAULT_MODELS, "the models to train, each a JSON object "
                                 "{\"name\": ..., \"model\": \"vae\" or \"gan\", \"args\": "
                                 "[vae.train / gan.train flags]}")
    runs: list[str] | None = setting(None, "finished vae.train / gan.train run folders to compare "
                                           "instead of training; each is named by its folder")
    runs_dir: str | None = setting(None, "where the trained runs go, one folder per model "
                                         "(default: OUT/runs)")
    epochs: int = setting(10, "training epochs for each model (the matching budget)", positive=True)
    minutes: float | None = setting(None, "equal-time budget instead: each model trains for this "
                                          "many minutes of training steps (--epochs is then the "
                                          "upper limit)", positive=True)
    steps_per_epoch: int | None = setting(None, "cap on steps per epoch for every model",
                                          positive=True)
    samples: int = setting(10000, "images sampled from each model and scored", min=10)
    parzen_validation: int = setting(1000, "validation images for choosing the Parzen σ", min=2)
    parzen_test: int = setting(10000, "test images for the Parzen log-likelihood", min=2)
    seed: int = setting(0, "seed for training, sampling and baselines", min=0)
    title: str | None = setting(None, "the report's title (default: the models' names joined by vs)")
    quick: bool = setting(False, "tiny budget for trying the pipeline: "
                                 + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    overwrite: bool = setting(False, "replace the results of an earlier comparison in --out")

    def validate(self) -> None:
        if not self.out:
            raise UserError("--out: say where the report goes")
        self.models = [self._model_spec(index, spec) for index, spec in enumerate(self.models)]
        names = [slug(spec["name"]) for spec in self.models]
        if len(set(names)) < len(names):
            raise UserError(f"--models: names must differ (as file names: {', '.join(names)})")
        if self.quick:
            for name, value in QUICK.items():
                setattr(self, name, value)
            self.models = [{**spec, "args": [*spec["args"], *QUICK_FLAGS[spec["model"]]]}
                           for spec in self.models]

    def _model_spec(self, index: int, spec: dict) -> dict:
        """One entry of `models`, checked, with its default name filled in."""
        where = f"--models[{index}]"
        unknown = sorted(set(spec) - set(MODEL_KEYS))
        if unknown:
            raise UserError(f"{where}: unknown key(s) {', '.join(unknown)} "
                            f"(expected {', '.join(MODEL_KEYS)})")
        kind = spec.get("model")
        if kind not in MODELS:
            raise UserError(f"{where}: \"model\" must be one of {', '.join(MODELS)}, got {kind!r}")
        args = spec.get("args", [])
        if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
            raise UserError(f"{where}: \"args\" must be a list of strings, got {args!r}")
        for flag in args:
            if flag.split("=")[0] in CONTROLLED_FLAGS:
                raise UserError(f"{where}: {flag} is set by the comparison for every model; "
                                "use its own setting instead")
        same_kind = sum(other.get("model") == kind for other in self.models)
        name = spec.get("name") or (kind.upper() if same_kind == 1 else f"{kind.upper()} {index + 1}")
        if not isinstance(name, str) or not slug(name):
            raise UserError(f"{where}: \"name\" must be a non-empty string, got {name!r}")
        return {"name": name, "model": kind, "args": args}


@dataclass
class Model:
    """A trained model as the comparison sees it."""

    name: str
    kind: str                                        # "vae" or "gan"
    run_dir: Path
    sample: Callable[[int, int], np.ndarray]          # (n, seed) → (n, 28, 28) in [0, 1]
    interpolations: Callable[[int], np.ndarray]      # rows → (rows·10, 28, 28)
    info: dict[str, Any]                             # parameters, time, epochs, NLL, settings


# --- the models ----------------------------------------------------------------------

def trainer_settings(spec: dict, settings: Settings, run_dir: Path) -> Any:
    """vae.train / gan.train settings: the shared budget and seed plus the model's own flags."""
    kind = spec["model"]
    module = importlib.import_module(f"{kind}.train")
    flags = [*spec["args"], "--dataset", settings.dataset, "--epochs", str(settings.epochs),
             "--seed", str(settings.seed), "--run-dir", str(run_dir), "--quiet"]
    if settings.minutes:
        flags += ["--max-minutes", str(settings.minutes)]
    if settings.data_dir:
        flags += ["--data-dir", settings.data_dir]
    if settings.steps_per_epoch:
        flags += ["--steps-per-epoch", str(settings.steps_per_epoch)]
    try:
        return parse_settings(module.Settings, flags, f"{kind}.train")
    except UserError as error:
        raise UserError(f"{spec['name']}: {error}") from None


def finished_run(path: Path) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(kind, config, metrics) of a finished vae.train or gan.train run, else UserError."""
    config = load_run_config(path)
    kind = config.get("model")
    if kind not in MODELS:
        raise UserError(f"{path}: is a {kind!r} run, not a vae or gan run")
    metrics_path = path / "metrics.json"
    if not metrics_path.is_file():
        raise UserError(f"{path}: not a finished run (no metrics.json)")
    metrics = read_json(metrics_path, "metrics file")
    epochs = config["settings"].get("epochs")
    finished = ("test_nll" in metrics if kind == "vae" else
                metrics.get("epochs") == epochs or metrics.get("time_budget_reached", False))
    if not finished:
        raise UserError(f"{path}: not a finished {kind} run (training stopped before "
                        f"epoch {epochs})")
    return kind, config, metrics


def epochs_trained(kind: str, metrics: dict[str, Any]) -> float:
    """Epochs as passes over the data: a fraction when a time budget stopped an epoch early."""
    steps = metrics.get("steps") if kind == "vae" else \
        (metrics.get("history", {}).get("g_updates") or [None])[-1]
    if metrics.get("time_budget_reached") and steps and metrics.get("steps_per_epoch"):
        return steps / metrics["steps_per_epoch"]
    return metrics["epochs"]


def load_model(name: str, run_dir: Path) -> Model:
    """The run's model wrapped for sampling, with the numbers the report needs."""
    kind, config, metrics = finished_run(run_dir)
    settings = config["settings"]
    info = {"model": kind, "epochs": epochs_trained(kind, metrics),
            "train_seconds": metrics.get("train_seconds"), "settings": settings}
    if kind == "vae":
        from vae.sample import decode, load_vae, sample_images, slerp

        vae = load_vae(run_dir)
        info.update(generator_parameters=vae.decoder.count_params(),
                    total_parameters=vae.count_params(), test_nll=metrics.get("test_nll"),
                    test_nll_standard_error=metrics.get("test_nll_standard_error"),
                    nll_k=metrics.get("nll_k"))

        def interpolations(rows: int) -> np.ndarray:
            z = np.random.default_rng(1).standard_normal((rows, 2, vae.latent_dim)).astype(np.float32)
            t = np.linspace(0.0, 1.0, 10, dtype=np.float32)
            return np.concatenate([decode(vae, slerp(a, b, t).astype(np.float32)) for a, b in z])

        return Model(name, kind, run_dir, lambda n, seed: sample_images(vae, n, seed),
                     interpolations, info)
    from gan.sample import interpolate, load_generator, sample_images

    generator = load_generator(run_dir)
    info.update(generator_parameters=generator.count_params(),
                total_parameters=generator.count_params() + metrics.get("discriminator_parameters", 0),
                test_nll=None)

    def gan_interpolations(rows: int) -> np.ndarray:
        return np.concatenate([interpolate(generator, 10, seed=1 + row) for row in range(rows)])

    return Model(name, kind, run_dir, lambda n, seed: sample_images(generator, n, seed),
                 gan_interpolations, info)


def runs_root(settings: Settings) -> Path:
    return Path(settings.runs_dir) if settings.runs_dir else Path(settings.out) / "runs"


def obtain_runs(settings: Settings) -> dict[str, Path]:
    """{model name: run folder}: the given finished runs, or fresh runs under --runs-dir."""
    if settings.runs:
        found: dict[str, Path] = {}
        for path in map(Path, settings.runs):
            _, config, _ = finished_run(path)
            dataset = config["settings"].get("dataset")
            if dataset != settings.dataset:
                raise UserError(f"{path}: was trained on {dataset}, not {settings.dataset} (--dataset)")
            if path.resolve().name in found:
                raise UserError(f"--runs: two folders are named {path.resolve().name}; "
                                "each run is named by its folder")
            found[path.resolve().name] = path
        return found
    root = runs_root(settings)
    planned = {spec["name"]: trainer_settings(spec, settings, root / slug(spec["name"]))
               for spec in settings.models}  # every flag checked before the first model trains
    for spec in settings.models:
        if (root / slug(spec["name"])).exists():  # an earlier comparison's run (checked in check_out)
            shutil.rmtree(root / slug(spec["name"]))
    budget = f"{settings.minutes:g} min of training steps" if settings.minutes else \
        f"{settings.epochs} epoch(s)"
    for spec in settings.models:
        name = spec["name"]
        print(f"training {name} ({spec['model']}) for {budget} into {root / slug(name)}", flush=True)
        importlib.import_module(f"{spec['model']}.train").train(planned[name])
    return {spec["name"]: root / slug(spec["name"]) for spec in settings.models}


# --- scoring --------------------------------------------------------------------------

def baselines(splits: Splits, n: int, seed: int) -> dict[str, np.ndarray]:
    """Samples of two models that know only per-pixel statistics of the training set."""
    rng = np.random.default_rng(seed)
    train = splits.x_train[..., 0]
    mean, std = train.mean(axis=0), train.std(axis=0)
    return {
        "Gaussian noise (per-pixel mean/std, clipped)":
            np.clip(mean + std * rng.standard_normal((n, 28, 28)), 0.0, 1.0).astype(np.float32),
        "Bernoulli (per-pixel training mean)": (rng.uniform(size=(n, 28, 28)) < mean).astype(np.float32),
    }


def score(images: np.ndarray, classifier: FeatureClassifier, reference_features: np.ndarray,
          validation: np.ndarray, test: np.ndarray) -> dict[str, Any]:
    """Every sample metric for one row of the table."""
    features = classifier.features(images)
    probabilities = classifier.probabilities(images)
    histogram = class_histogram(probabilities, N_CLASSES)
    precision, recall = precision_recall(reference_features, features, k=3)
    sigma = choose_parzen_sigma(images, validation)
    parzen, parzen_error = parzen_log_likelihood(images, test, sigma)
    return {"fid": fid(features, reference_features), "classifier_score": classifier_score(probabilities),
            "classes_covered": histogram.classes_covered, "class_kl_to_uniform": histogram.kl_to_uniform,
            "class_counts": histogram.counts.tolist(), "precision": precision, "recall": recall,
            "parzen_sigma": sigma, "parzen_log_likelihood": parzen,
            "parzen_standard_error": parzen_error}


# --- figures --------------------------------------------------------------------------

def grid_panels(path: Path, panels: dict[str, np.ndarray], columns: int = 8,
                per_row: int = 5) -> None:
    """Image grids side by side, each titled, `per_row` to a row."""
    rows = -(-len(panels) // per_row)
    figure, axes = plt.subplots(rows, min(per_row, len(panels)), squeeze=False,
                                figsize=(2.4 * min(per_row, len(panels)), 2.7 * rows))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, images) in zip(axes.ravel(), panels.items()):
        ax.imshow(image_grid(images[:columns * columns], columns)[..., 0], cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
    save_figure(figure, path, dpi=100)


def nearest_neighbours(path: Path, title: str, samples: np.ndarray, train: np.ndarray,
                       count: int = 5) -> None:
    """Each row: a sample, then its `count` nearest training images in pixel space (L2)."""
    flat_train = train.reshape(len(train), -1)
    norms = (flat_train ** 2).sum(axis=1)
    rows = []
    for image in samples:
        distances = norms - 2.0 * flat_train @ image.ravel()
        rows += [image, *train[np.argsort(distances)[:count]]]
    grid = image_grid(np.stack(rows), count + 1)[..., 0]
    figure, ax = plt.subplots(figsize=(3.2, 0.55 * len(samples) + 0.4))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"{title}: sample | 5 nearest training images", fontsize=8)
    ax.axvline(grid.shape[1] / (count + 1) - 0.5, color="tab:red", linewidth=1.5)
    ax.axis("off")
    save_figure(figure, path, dpi=100)


def interpolation_panel(path: Path, models: list[Model], rows: int = 4) -> None:
    figure, axes = plt.subplots(len(models), 1, figsize=(5, 2.3 * len(models)))
    for ax, model in zip(np.atleast_1d(axes), models):
        ax.imshow(image_grid(model.interpolations(rows), 10)[..., 0], cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{model.name}: spherical interpolation between two prior samples", fontsize=9)
        ax.axis("off")
    save_figure(figure, path, dpi=100)


def training_curves(path: Path, models: list[Model], per_row: int = 3) -> None:
    """One panel per model: a VAE's −ELBO per epoch, a GAN's D and G losses per generator step."""
    rows = -(-len(models) // per_row)
    columns = min(per_row, len(models))
    figure, axes = plt.subplots(rows, columns, squeeze=False, figsize=(5 * columns, 3.5 * rows))
    for ax in axes.ravel()[len(models):]:
        ax.axis("off")
    for ax, model in zip(axes.ravel(), models):
        metrics = read_json(model.run_dir / "metrics.json", "metrics file")
        if model.kind == "vae":
            history = metrics.get("history", {})
            for key, label in (("train_elbo", "train"), ("test_elbo", "test")):
                if history.get(key):
                    ax.plot(history["epoch"], [-v for v in history[key]], marker="o", label=label)
            ax.set(title=f"{model.name}: −ELBO (nats per image)", xlabel="epoch")
        else:
            steps = metrics.get("steps", {})
            for key, label in (("d_loss", "discriminator"), ("g_loss", "generator")):
                if steps.get(key):
                    ax.plot(steps["step"], steps[key], label=label)
            ax.set(title=f"{model.name}: losses", xlabel="generator step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    save_figure(figure, path)


# --- report ---------------------------------------------------------------------------

COLUMNS = ("FID ↓", "classifier score ↑", "classes covered", "precision ↑", "recall ↑",
           "Parzen LL (nats) ↑", "test NLL (nats) ↓", "generator params", "train time", "epochs")


def epochs_text(epochs: float | None) -> str:
    if epochs is None:
        return "–"
    return f"{epochs:g}" if float(epochs).is_integer() else f"{epochs:.2f}"


def table_rows(rows: dict[str, dict[str, Any]]) -> list[list[str]]:
    def number(value: Any, digits: int) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    out = []
    for name, row in rows.items():
        seconds = row.get("train_seconds")
        nll = row.get("test_nll")
        out.append([name, number(row["fid"], 2), number(row["classifier_score"], 2),
                    f"{row['classes_covered']}/10", number(row["precision"], 3),
                    number(row["recall"], 3),
                    f"{row['parzen_log_likelihood']:.0f} ± {row['parzen_standard_error']:.0f}",
                    "–" if nll is None else f"{nll:.2f} (k={row.get('nll_k')})",
                    "–" if row.get("generator_parameters") is None else f"{row['generator_parameters']:,}",
                    "–" if seconds is None else f"{seconds / 60:.1f} min",
                    epochs_text(row.get("epochs"))])
    return out


def markdown_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    return ["| | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|",
            *("| " + " | ".join(row) + " |" for row in table_rows(rows))]


def markdown_report(results: dict[str, Any], figures: list[tuple[str, str]]) -> str:
    lines = [f"# {results['title']}", "",
             f"{results['samples']:,} samples per row, scored against the {results['reference_size']:,} "
             f"test images; seed {results['seed']}; classifier test accuracy "
             f"{100 * results['classifier_test_accuracy']:.2f} %. Budget: {results['budget']}.", "",
             *markdown_table(results["rows"])]
    lines += ["", f"- {FID_NOTE}", f"- {PRECISION_NOTE}", f"- {PARZEN_NOTE}",
              "- Real training images are scored like a model's samples: the best a model that "
              "reproduced the training distribution could do at this sample size.",
              "- Classes covered: classes holding at least 10 % of their uniform share of "
              "the samples (by the classifier's prediction).",
              "- Test NLL: the VAE's importance-weighted bound (Burda et al. 2015) on binarized "
              "test images; a GAN defines no likelihood.", ""]
    for caption, name in figures:
        lines += [f"## {caption}", "", f"![{caption}]({name})", ""]
    lines += ["## Settings", "", "```json", results["settings_json"], "```", "",
              "## Library versions", "", ", ".join(f"{k} {v}" for k, v in results["versions"].items()), ""]
    return "\n".join(lines)


def html_report(results: dict[str, Any], figures: list[tuple[str, str]], out: Path) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("", *COLUMNS))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in table_rows(results["rows"]))
    images = "".join(
        f"<h2>{html.escape(caption)}</h2><img alt='{html.escape(caption)}' src='data:image/png;base64,"
        f"{base64.b64encode((out / name).read_bytes()).decode()}'>" for caption, name in figures)
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in (FID_NOTE, PRECISION_NOTE, PARZEN_NOTE))
    title = html.escape(results["title"])
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}"
            "</title><style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
            "text-align:right}img{max-width:100%}</style></head><body>"
            f"<h1>{title}</h1><p>Budget: {html.escape(results['budget'])}.</p>"
            f"<table><tr>{head}</tr>{body}</table>"
            f"<ul>{notes}</ul>{images}<h2>Settings</h2><pre>{html.escape(results['settings_json'])}"
            f"</pre><p>{html.escape(str(results['versions']))}</p></body></html>")


# --- main -----------------------------------------------------------------------------

OUTPUTS = ("report.md", "report.html", "metrics.json", "samples.png", "interpolations.png",
           "curves.png")


def check_out(settings: Settings) -> None:
    """Refuse to touch an earlier comparison unless --overwrite."""
    out = Path(settings.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} is a file, not a folder")
    existing = [str(out / name) for name in OUTPUTS if (out / name).exists()]
    existing += sorted(map(str, out.glob("neighbours_*.png")))
    folders = {} if settings.runs else {runs_root(settings) / slug(spec["name"]): spec["model"]
                                        for spec in settings.models}
    existing += [str(folder) for folder in folders if folder.exists()]
    if existing and not settings.overwrite:
        raise UserError(f"--out: an earlier comparison is in the way ({', '.join(existing)}); "
                        "use --overwrite to replace it")
    for folder, kind in folders.items():
        if folder.exists():
            load_run_config(folder, kind)  # never delete a folder that is not a run of this model


def main(argv: list[str] | None = None) -> None:
    started = time.perf_counter()
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0], prog="python -m experiments.compare")
    out = Path(settings.out)
    check_out(settings)  # refusals come first
    classifier = load_classifier(settings.dataset, settings.data_dir)
    splits = load_splits(settings.dataset, settings.data_dir)
    runs = obtain_runs(settings)
    models = [load_model(name, path) for name, path in runs.items()]

    rng = np.random.default_rng(settings.seed)
    n = settings.samples
    test = splits.x_test[..., 0]
    validation = splits.x_validation[rng.permutation(len(splits.x_validation))[:settings.parzen_validation], ..., 0]
    parzen_test = test[:settings.parzen_test]
    reference_features = classifier.features(test)
    real = splits.x_train[rng.permutation(len(splits.x_train))[:n], ..., 0]
    samples = {"real training images": real}
    samples.update({model.name: model.sample(n, settings.seed) for model in models})
    samples.update(baselines(splits, n, settings.seed))

    rows: dict[str, dict[str, Any]] = {}
    for name, images in samples.items():
        print(f"scoring {name}", flush=True)
        rows[name] = score(images, classifier, reference_features, validation, parzen_test)
    for model in models:
        rows[model.name].update({k: v for k, v in model.info.items() if k != "settings"})

    figures = [("Samples", "samples.png"),
               *((f"Nearest training neighbours of {model.name} samples (memorisation check)",
                  f"neighbours_{slug(model.name)}.png") for model in models),
               ("Latent interpolations", "interpolations.png"), ("Training curves", "curves.png")]
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("neighbours_*.png"):  # an overwritten comparison's other models
        stale.unlink()
    model_names = {model.name for model in models}
    grid_panels(out / "samples.png", {f"{name} (FID {rows[name]['fid']:.1f})" if name in model_names
                                      else name.split(" (")[0]: images for name, images in samples.items()})
    for model in models:
        nearest_neighbours(out / f"neighbours_{slug(model.name)}.png", model.name,
                           samples[model.name][:8], splits.x_train[..., 0])
    interpolation_panel(out / "interpolations.png", models)
    training_curves(out / "curves.png", models)

    budget = (f"{settings.minutes:g} minutes of training steps per model (at most {settings.epochs} "
              "epochs)" if settings.minutes else f"{settings.epochs} epoch(s) per model")
    if settings.runs:
        budget = "finished runs given with --runs (see the epochs and train time columns)"
    results = {
        "title": settings.title or f"{settings.dataset}: " + " vs ".join(model.name for model in models),
        "dataset": settings.dataset, "budget": budget, "samples": n, "reference_size": len(test),
        "seed": settings.seed,
        "classifier_test_accuracy": classifier.accuracy(splits.x_test, splits.y_test),
        "rows": rows, "runs": {name: str(path) for name, path in runs.items()},
        "model_settings": {model.name: model.info["settings"] for model in models},
        "settings": settings_dict(settings), "versions": library_versions(),
        "notes": [FID_NOTE, PRECISION_NOTE, PARZEN_NOTE], "seconds": time.perf_counter() - started,
    }
    results["settings_json"] = json.dumps({"comparison": settings_dict(settings),
                                           **results["model_settings"]}, indent=2)
    write_json(out / "metrics.json", {k: v for k, v in results.items() if k != "settings_json"})
    with atomic_write(out / "report.html", "w") as handle:
        handle.write(html_report(results, figures, out))
    with atomic_write(out / "report.md", "w") as handle:  # last: its presence means "complete"
        handle.write(markdown_report(results, figures))
    print("\n".join(markdown_table(rows)))
    print(f"wrote {out / 'report.md'} in {results['seconds'] / 60:.1f} min")


if __name__ == "__main__":
    run_cli(main)
