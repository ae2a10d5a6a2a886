"""Compare VAEs and GANs on one dataset with the same metrics, classifier and seed.

    python -m experiments.compare --config experiments/configs/mnist_vae_vs_gan.json --out DIR
    python -m experiments.compare --runs runs/vae/A runs/gan/B ... --out DIR   # finished runs
    python -m experiments.compare --quick --out /tmp/compare          # tiny budget, to try it out

Trains every model of `models` under one budget (the same epochs, or with --minutes the
same time in training steps) unless --runs gives finished run folders, samples --samples
images from each and scores them, next to real training images and two simple baselines,
with FID and precision/recall on the project's classifier features (not comparable to
Inception FID), the classifier score, class coverage, the Parzen-window log-likelihood
(GAN-paper protocol) and the VAE's test NLL. DIR receives report.md, metrics.json and PNG
figures (with --html also report.html, which links the PNGs); the trained runs go to
--runs-dir (default DIR/runs; `tensorboard --logdir` on it overlays them).

The steps, top to bottom: check the settings and --out (main, check_out), obtain the
runs (obtain_runs: train them, or take --runs), load each run's sampler through its
family's adapter (experiments.models), sample and score (sample_all, score_all), draw
the figures (draw_figures) and write the results (write_results). Splits of the work:
experiments.spec (settings), experiments.runs (run schema), experiments.scoring,
experiments.figures, experiments.report.
"""

from __future__ import annotations

import importlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from common.classifier import load_classifier
from common.config import parse_settings, settings_dict
from common.data import Splits, load_splits
from common.errors import UserError, run_cli
from common.files import atomic_write, write_json
from common.runs import library_versions, load_run_config
from experiments.figures import grid_panels, interpolation_panel, nearest_neighbours, training_curves
from experiments.models import Model, comparable_run, load_model
from experiments.report import NOTES, html_report, markdown_report, markdown_table
from experiments.scoring import References, baselines, references, run_numbers, score
from experiments.spec import Settings, slug

OUTPUTS = ("report.md", "report.html", "metrics.json", "samples.png", "interpolations.png",
           "curves.png")
REAL = "real training images"


# --- settings and runs ---------------------------------------------------------------

def runs_root(settings: Settings) -> Path:
    """Where trained runs go: --runs-dir, else OUT/runs."""
    return Path(settings.runs_dir) if settings.runs_dir else Path(settings.out) / "runs"


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
    for folder, family in folders.items():
        if folder.exists():
            load_run_config(folder, family)  # never delete a folder that is not a run of this model


def trainer_settings(spec: dict, settings: Settings, run_dir: Path) -> Any:
    """<family>.train settings: the shared budget and seed plus the model's own flags."""
    family = spec["model"]
    module = importlib.import_module(f"{family}.train")
    flags = [*spec["args"], "--dataset", settings.dataset, "--epochs", str(settings.epochs),
             "--seed", str(settings.seed), "--run-dir", str(run_dir), "--quiet"]
    if settings.minutes:
        flags += ["--max-minutes", str(settings.minutes)]
    if settings.data_dir:
        flags += ["--data-dir", settings.data_dir]
    if settings.steps_per_epoch:
        flags += ["--steps-per-epoch", str(settings.steps_per_epoch)]
    try:
        return parse_settings(module.Settings, flags, f"{family}.train")
    except UserError as error:
        raise UserError(f"{spec['name']}: {error}") from None


def given_runs(settings: Settings) -> dict[str, Path]:
    """{folder name: folder} of --runs, each checked to be a finished run on --dataset."""
    found: dict[str, Path] = {}
    for path in map(Path, settings.runs):
        _, config, _ = comparable_run(path)
        dataset = config["settings"].get("dataset")
        if dataset != settings.dataset:
            raise UserError(f"{path}: was trained on {dataset}, not {settings.dataset} (--dataset)")
        if path.resolve().name in found:
            raise UserError(f"--runs: two folders are named {path.resolve().name}; "
                            "each run is named by its folder")
        found[path.resolve().name] = path
    return found


def obtain_runs(settings: Settings) -> dict[str, Path]:
    """{model name: run folder}: the given finished runs, or fresh runs under --runs-dir."""
    if settings.runs:
        return given_runs(settings)
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


# --- samples and scores --------------------------------------------------------------

def sample_all(models: list[Model], splits: Splits, settings: Settings,
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    """{row name: images (n, H, W, C)}: real training images, each model's samples, the baselines."""
    n = settings.samples
    samples = {REAL: splits.x_train[rng.permutation(len(splits.x_train))[:n]]}
    samples.update({model.name: model.sampler.sample(n, settings.seed) for model in models})
    samples.update(baselines(splits, n, settings.seed))
    return samples


def score_all(samples: dict[str, np.ndarray], models: list[Model],
              refs: References) -> dict[str, dict[str, Any]]:
    """{row name: the row's scores}, a model's row with its run's numbers as well."""
    rows: dict[str, dict[str, Any]] = {}
    for name, images in samples.items():
        print(f"scoring {name}", flush=True)
        rows[name] = score(images, refs)
    for model in models:
        rows[model.name].update(run_numbers(model.family, model.metrics))
    return rows


# --- outputs -------------------------------------------------------------------------

def draw_figures(out: Path, models: list[Model], samples: dict[str, np.ndarray],
                 rows: dict[str, dict[str, Any]], train: np.ndarray) -> list[tuple[str, str]]:
    """Write the PNGs into `out`; (caption, file name) of each, in report order."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("neighbours_*.png"):  # an overwritten comparison's other models
        stale.unlink()
    model_names = {model.name for model in models}
    grid_panels(out / "samples.png", {f"{name} (FID {rows[name]['fid']:.1f})" if name in model_names
                                      else name.split(" (")[0]: images for name, images in samples.items()})
    for model in models:
        nearest_neighbours(out / f"neighbours_{slug(model.name)}.png", model.name,
                           samples[model.name][:8], train)
    interpolation_panel(out / "interpolations.png", models)
    training_curves(out / "curves.png", models)
    return [("Samples", "samples.png"),
            *((f"Nearest training neighbours of {model.name} samples (memorisation check)",
               f"neighbours_{slug(model.name)}.png") for model in models),
            ("Latent interpolations", "interpolations.png"), ("Training curves", "curves.png")]


def budget_text(settings: Settings) -> str:
    """The training budget, as the report states it."""
    if settings.runs:
        return "finished runs given with --runs (see the epochs and train time columns)"
    if settings.minutes:
        return (f"{settings.minutes:g} minutes of training steps per model (at most {settings.epochs} "
                "epochs)")
    return f"{settings.epochs} epoch(s) per model"


def write_results(out: Path, results: dict[str, Any], figures: list[tuple[str, str]],
                  html: bool) -> None:
    """metrics.json, report.html (only with --html; an older one is removed) and report.md."""
    write_json(out / "metrics.json", {k: v for k, v in results.items() if k != "settings_json"})
    if html:
        with atomic_write(out / "report.html", "w") as handle:
            handle.write(html_report(results, figures))
    else:
        (out / "report.html").unlink(missing_ok=True)  # an overwritten comparison's
    with atomic_write(out / "report.md", "w") as handle:  # last: its presence means "complete"
        handle.write(markdown_report(results, figures))


# --- main ----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    """Run a comparison: see the module's docstring."""
    started = time.perf_counter()
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0], prog="python -m experiments.compare")
    out = Path(settings.out)
    check_out(settings)  # refusals come first
    classifier = load_classifier(settings.dataset, settings.data_dir)
    splits = load_splits(settings.dataset, settings.data_dir)
    runs = obtain_runs(settings)
    models = [load_model(name, path) for name, path in runs.items()]

    rng = np.random.default_rng(settings.seed)
    refs = references(splits, classifier, settings.parzen_validation, settings.parzen_test, rng)
    samples = sample_all(models, splits, settings, rng)
    rows = score_all(samples, models, refs)
    figures = draw_figures(out, models, samples, rows, splits.x_train)

    model_settings = {model.name: model.config["settings"] for model in models}
    results = {
        "title": settings.title or f"{settings.dataset}: " + " vs ".join(model.name for model in models),
        "dataset": settings.dataset, "budget": budget_text(settings), "samples": settings.samples,
        "reference_size": len(splits.x_test), "seed": settings.seed,
        "classifier_test_accuracy": classifier.accuracy(splits.x_test, splits.y_test),
        "rows": rows, "runs": {name: str(path) for name, path in runs.items()},
        "model_settings": model_settings, "settings": settings_dict(settings),
        "versions": library_versions(), "notes": list(NOTES), "seconds": time.perf_counter() - started,
        "settings_json": json.dumps({"comparison": settings_dict(settings), **model_settings}, indent=2),
    }
    write_results(out, results, figures, settings.html)
    print("\n".join(markdown_table(rows)))
    print(f"wrote {out / 'report.md'} in {results['seconds'] / 60:.1f} min")


if __name__ == "__main__":
    run_cli(main)
