"""Compare generative models of any family on one dataset: the same metrics, classifier, budget and seeds.

    python -m experiments.compare --config experiments/configs/mnist_vae_vs_gan.json --out DIR
    python -m experiments.compare --runs runs/vae/A runs/gan/B ... --out DIR   # finished runs
    python -m experiments.compare --quick --seeds 2 --out /tmp/compare  # tiny budget, to try it out

Trains every model of `models` --seeds times (seeds --seed, --seed+1, …) under one budget
(the same epochs, or with --minutes the same time in training steps) unless --runs gives
finished run folders (with --points also scoring each run after those minutes of training,
experiments.budget), samples --samples images from each run and scores them, next to real
training images and two simple baselines, with FID, KID, precision/recall and
density/coverage on the project's classifier features (not comparable to Inception
numbers), the classifier score, class coverage, the Parzen-window log-likelihood
(GAN-paper protocol) and the VAE's test NLL. Every number is reported as mean ± std over
the seeds with a 95 % bootstrap interval, and two models are ranked on a metric only when
their intervals do not overlap. DIR receives report.md, metrics.json (every seed's numbers)
and PNG figures (with --html also report.html, which links the PNGs); the trained runs go
to --runs-dir (default DIR/runs), one folder per model and seed, <model>/seed_<s>
(`tensorboard --logdir` on it overlays them). A classifier that is not cached yet is
trained and cached first (`common.evaluation.classifier.get_classifier`).

With --runs, runs of one model are grouped by their folder names: a folder's name less a
trailing `seed_<k>` or `_seed<k>` names its model (a folder named only `seed_<k>` takes
its parent's name), and a folder holding `seed_*` run folders stands for all of them.

The steps, top to bottom: check the settings and --out (main, check_out, plan_runs), build
the classifier if needed, obtain the runs (train_runs, or given_runs for --runs), load each
run's sampler through its family's adapter (experiments.models), sample and score every
row and seed (score_rows), draw the figures (draw_figures) and write the results
(write_results). With --points every run is scored at each point as it trains, the last
point included, and the scores are kept in the run (experiments.budget), so the final table
takes them (final_point_rows) and never loads a network: a study whose runs keep only
config.json, metrics.json and points/ (what git keeps of experiments/results/<study>/runs)
reports again with --resume, and goes on over several sessions, provided the same
classifier weights score it (checked).

Splits of the work: experiments.spec (settings), experiments.finished_runs
(run schema), experiments.table (rows), common.evaluation.scoring (the scores),
experiments.stats, experiments.figures, experiments.report.
"""

from __future__ import annotations

import importlib
import json
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from common.config import parse_settings, settings_dict
from common.data import Splits, load_splits
from common.errors import UserError, run_cli
from common.evaluation.classifier import get_classifier
from common.evaluation.scoring import References, score
from common.files import atomic_write, read_json, write_json
from common.runs import CONFIG_FILE, METRICS_FILE, RunLock, library_versions, load_run_config
from experiments.budget import PointRows, budget_figures, load_point, point_key, save_point
from experiments.figures import grid_panels, interpolation_panel, nearest_neighbours, training_curves
from experiments.finished_runs import grouped_runs
from experiments.models import Model, check_sampler_options, comparable_run, kept_model, load_model
from experiments.report import NOTES, html_report, markdown_report, markdown_table
from experiments.spec import Settings, slug
from experiments.stats import CONFIDENCE, RESAMPLES
from experiments.table import baselines, comparison_references, run_numbers, summarize_row

OUTPUTS = ("report.md", "report.html", "metrics.json", "samples.png", "interpolations.png",
           "curves.png")
REAL = "real training images"
REFERENCE_SEED = 0  # the Parzen validation subset: alike for every --seed, so lanes of seeds score alike


# --- settings and runs ---------------------------------------------------------------

def runs_root(settings: Settings) -> Path:
    """Where trained runs go: --runs-dir, else OUT/runs."""
    return Path(settings.runs_dir) if settings.runs_dir else Path(settings.out) / "runs"


def run_folder(settings: Settings, name: str, seed: int) -> Path:
    """Where the comparison trains model `name` with `seed`: RUNS_DIR/<slug>/seed_<seed>."""
    return runs_root(settings) / slug(name) / f"seed_{seed}"


def planned_folders(settings: Settings) -> dict[Path, str]:
    """{folder: family} of every run this comparison trains (none with --runs), and each
    model's own folder when an older comparison left a run directly in it."""
    if settings.runs:
        return {}
    folders = {run_folder(settings, spec["name"], seed): spec["model"]
               for spec in settings.models for seed in settings.seed_list()}
    folders.update({runs_root(settings) / slug(spec["name"]): spec["model"] for spec in settings.models
                    if (runs_root(settings) / slug(spec["name"]) / CONFIG_FILE).exists()})
    return folders


def check_out(settings: Settings) -> None:
    """Refuse to touch an earlier comparison unless --overwrite."""
    out = Path(settings.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} is a file, not a folder")
    existing = [str(out / name) for name in OUTPUTS if (out / name).exists()]
    existing += sorted(map(str, out.glob("neighbours_*.png")))
    folders = planned_folders(settings)
    existing += [str(folder) for folder in folders if folder.exists() and not settings.resume]
    if existing and not (settings.overwrite or settings.resume):
        raise UserError(f"--out: an earlier comparison is in the way ({', '.join(existing)}); "
                        "use --overwrite to replace it")
    for folder, family in folders.items():
        if folder.exists():
            load_run_config(folder, family)  # never delete a folder that is not a run of this model


def trainer_settings(spec: dict, settings: Settings, run_dir: Path, seed: int,
                     minutes: float | None = None, resume: bool = False) -> Any:
    """<family>.train settings: the shared budget (or the first `minutes` of it, resuming the
    run when `resume`: a run's budget counts all its training) and `seed` plus the model's
    own flags."""
    family = spec["model"]
    module = importlib.import_module(f"{family}.train")
    flags = [*spec["args"], "--dataset", settings.dataset, "--epochs", str(settings.epochs),
             "--seed", str(seed), "--run-dir", str(run_dir), "--quiet", "--precision", settings.precision]
    if minutes or settings.minutes:
        flags += ["--max-minutes", str(minutes or settings.minutes)]
    if resume:
        flags.append("--resume")
    if settings.data_dir:
        flags += ["--data-dir", settings.data_dir]
    for name, value in settings.image_options().items():
        flags += [f"--{name.replace('_', '-')}", str(value)]
    if settings.steps_per_epoch:
        flags += ["--steps-per-epoch", str(settings.steps_per_epoch)]
    try:
        return parse_settings(module.Settings, flags, f"{family}.train")
    except UserError as error:
        raise UserError(f"{spec['name']}: {error}") from None


def given_runs(settings: Settings) -> dict[str, list[Path]]:
    """{model name: its run folders, by seed} of --runs, each a finished run on --dataset."""
    groups = grouped_runs(map(Path, settings.runs), comparable_run)
    for members in groups.values():
        for path, config, _ in members:
            dataset = config["settings"].get("dataset")
            if dataset != settings.dataset:
                raise UserError(f"{path}: was trained on {dataset}, not {settings.dataset} (--dataset)")
    return {name: [path for path, _, _ in members] for name, members in groups.items()}


Plan = dict[str, list[tuple[Path, list[tuple[float | None, Any]]]]]


def plan_runs(settings: Settings) -> Plan:
    """{model name: [(run folder, [(minutes of training at its end, trainer settings) per
    segment]) per seed]}: one segment, or one per --points and the budget's last (see
    experiments.budget); every flag is checked here, before the classifier or the first
    model trains."""
    for index, spec in enumerate(settings.models):
        check_sampler_options(spec["model"], spec["sampler"], f"--models[{index}] ({spec['name']})")
    ends = [*(settings.points or []), settings.minutes]
    return {spec["name"]: [(folder, [(end, trainer_settings(spec, settings, folder, seed, end, index > 0))
                                     for index, end in enumerate(ends)])
                           for seed in settings.seed_list()
                           for folder in [run_folder(settings, spec["name"], seed)]]
            for spec in settings.models}


def reached(folder: Path, trainer: Any) -> bool:
    """Whether the run in `folder` has trained all `trainer` asks for (--resume)."""
    metrics = folder / METRICS_FILE
    if not metrics.is_file():
        return False
    done = read_json(metrics, "metrics file")
    return bool(done.get("finished")) and (not trainer.max_minutes or not done.get("time_budget_reached")
                                           or done.get("budget_seconds", 0) >= 60 * trainer.max_minutes)


def train_run(settings: Settings, name: str, family: str, folder: Path,
              run_segments: list[tuple[float | None, Any]], at_point: Callable[[str, Path, float, bool], bool]) -> None:
    """Train one seed's run segment by segment, with --points calling `at_point(name, folder,
    minutes, stored_only)` after each; with --resume, a segment trained (and with --points
    scored) before, by an earlier or another comparison, is taken as it is."""
    budget = f"{settings.minutes:g} min of training steps" if settings.minutes else f"{settings.epochs} epoch(s)"
    announced = False
    for index, (minutes, trainer) in enumerate(run_segments):
        if settings.resume and settings.points and at_point(name, folder, minutes, True):
            continue
        if not (settings.resume and reached(folder, trainer)):
            if not announced:
                print(f"training {name} ({family}) seed {trainer.seed} for {budget} into {folder}", flush=True)
                announced = True
            trainer.resume = (folder / CONFIG_FILE).exists()
            importlib.import_module(f"{family}.train").train(trainer)
        elif index < len(run_segments) - 1:  # its weights are those of a later time now
            raise UserError(f"--resume: {folder} has trained past {minutes:g} min without keeping that point's "
                            "scores; use another --runs-dir")
        if settings.points:
            at_point(name, folder, minutes, False)


def train_runs(settings: Settings, plan: Plan,
               at_point: Callable[[str, Path, float, bool], bool]) -> dict[str, list[Path]]:
    """Train every model and seed of `plan` (`train_run`), an earlier comparison's folders
    replaced, or with --resume gone on with."""
    for folder in planned_folders(settings):  # checked to be runs of these models in check_out
        if folder.exists() and not settings.resume:
            shutil.rmtree(folder)
    families = {spec["name"]: spec["model"] for spec in settings.models}
    for name, runs in plan.items():
        for folder, run_segments in runs:
            train_run(settings, name, families[name], folder, run_segments, at_point)
    return {name: [folder for folder, _ in runs] for name, runs in plan.items()}


# --- samples and scores --------------------------------------------------------------

def reference_samples(splits: Splits, n: int, seed: int) -> dict[str, np.ndarray]:
    """{row name: images} of the rows that are not models, drawn with `seed`: real training
    images and the two per-pixel baselines."""
    real = splits.x_train[np.random.default_rng(seed).permutation(len(splits.x_train))[:n]]
    return {REAL: real, **baselines(splits, n, seed)}


def score_seed(rows: dict[str, dict[str, Any]], first: dict[str, np.ndarray], name: str,
               images: np.ndarray, refs: References, numbers: dict[str, Any]) -> None:
    """Score one seed's images of row `name` into `rows`; keep the first seed's images."""
    print(f"scoring {name} (seed {numbers['seed']})", flush=True)
    row = rows.setdefault(name, {"seeds": []})
    row["seeds"].append({**numbers, **score(images, refs)})
    first.setdefault(name, images)


def model_numbers(model: Model, settings: Settings, refs: References) -> tuple[dict[str, Any], np.ndarray]:
    """(the run's own numbers, the seconds its sampler took per 1,000 images and the scores
    of --samples images drawn with the run's seed, those images)."""
    seed = model.config["settings"]["seed"]
    started = time.perf_counter()
    images = model.sampler.sample(settings.samples, seed)
    seconds = time.perf_counter() - started
    numbers = {"seed": seed, **run_numbers(model.family, model.metrics, model.config["settings"]),
               "samples": settings.samples, "sample_seconds_per_1000": 1000 * seconds / settings.samples,
               "classifier_weights": refs.classifier.weights_digest}
    print(f"scoring {model.name} (seed {seed})", flush=True)
    return {**numbers, **score(images, refs)}, images


def sampler_options(settings: Settings, name: str) -> dict[str, Any]:
    """The "sampler" options of model `name` (none for a run given with --runs)."""
    return next((spec["sampler"] for spec in settings.models if spec["name"] == name and not settings.runs), {})


def score_point(points: PointRows, settings: Settings, refs: References, name: str, folder: Path,
                minutes: float, stored_only: bool) -> bool:
    """Score the run in `folder` after `minutes` of training into `points` and keep the
    scores in the run (--points); with `stored_only`, only take scores kept before.
    Whether the point is scored."""
    scored = load_point(folder, minutes)
    if scored is not None and scored[0].get("samples") != settings.samples:
        raise UserError(f"--resume: {folder} was scored after {minutes:g} min on {scored[0].get('samples')} "
                        f"samples, not --samples {settings.samples}; use another --runs-dir")
    weights = refs.classifier.weights_digest
    if scored is not None and scored[0].get("classifier_weights", weights) != weights:
        raise UserError(f"--resume: {folder} was scored after {minutes:g} min with another classifier (weights "
                        f"{scored[0]['classifier_weights']}, the cached one's {weights}); put that one in "
                        "$CLASSIFIER_CACHE or use another --runs-dir")
    if scored is None and not stored_only:
        model = load_model(name, folder, settings.precision, sampler_options(settings, name))
        save_point(folder, minutes, *model_numbers(model, settings, refs))
        scored = load_point(folder, minutes)  # as a resumed comparison reads it (JSON's keys)
    if scored is not None:
        points.add(minutes, name, *scored)
    return scored is not None


def reference_rows(splits: Splits, refs: References, settings: Settings,
                   seeds: int) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """(rows, first images) of the rows that are not models, drawn as many times as the
    models have `seeds`."""
    rows: dict[str, dict[str, Any]] = {}
    first: dict[str, np.ndarray] = {}
    for index in range(seeds):
        for name, images in reference_samples(splits, settings.samples, settings.seed + index).items():
            score_seed(rows, first, name, images, refs, {"seed": settings.seed + index})
    return rows, first


def table(rows: dict[str, dict[str, Any]], first: dict[str, np.ndarray], groups: dict[str, list[Model]]
          ) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """`rows` and `first` in report order (real images, models, the baselines), each row with
    its family ("model") and its summary over seeds."""
    order = [REAL, *groups, *(name for name in rows if name != REAL and name not in groups)]
    for name, row in rows.items():
        row["model"] = groups[name][0].family if name in groups else None
        row["summary"] = summarize_row(row["seeds"])
    return {name: rows[name] for name in order}, {name: first[name] for name in order}


def score_rows(groups: dict[str, list[Model]], splits: Splits, refs: References,
               settings: Settings) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """({row name: {"model", "seeds": per-seed numbers, "summary"}}, {row name: the first
    seed's images}): every model's runs sampled and scored, beside the reference rows."""
    rows, first = reference_rows(splits, refs, settings, max(map(len, groups.values())))
    for name, models in groups.items():
        for model in models:
            numbers, images = model_numbers(model, settings, refs)
            rows.setdefault(name, {"seeds": []})["seeds"].append(numbers)
            first.setdefault(name, images)
    return table(rows, first, groups)


def final_point_rows(groups: dict[str, list[Model]], points: PointRows, splits: Splits, refs: References,
                     settings: Settings) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """`score_rows` for --points: the models' numbers are their last point's, kept in the
    runs (so a study kept without its weights still reports), beside reference rows scored now."""
    rows, first = reference_rows(splits, refs, settings, max(map(len, groups.values())))
    key = point_key(settings.minutes)
    for name in groups:
        rows[name] = {"seeds": points.rows[key][name]["seeds"]}
        first[name] = points.images[key][name]
    return table(rows, first, groups)


# --- outputs -------------------------------------------------------------------------

def draw_figures(out: Path, groups: dict[str, list[Model]], samples: dict[str, np.ndarray],
                 rows: dict[str, dict[str, Any]], train: np.ndarray) -> list[tuple[str, str]]:
    """Write the PNGs into `out` (samples and neighbours of each model's first seed; where the
    runs' networks are loaded, also interpolations and the training curves over all seeds);
    (caption, file name) of each, in report order."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("neighbours_*.png"):  # an overwritten comparison's other models
        stale.unlink()
    grid_panels(out / "samples.png", {f"{name} (FID {rows[name]['summary']['fid']['mean']:.1f})"
                                      if name in groups else name.split(" (")[0]: images
                                      for name, images in samples.items()})
    for name in groups:
        nearest_neighbours(out / f"neighbours_{slug(name)}.png", name, samples[name][:8], train)
    first_seed = " (first seed)" if max(map(len, groups.values())) > 1 else ""
    figures = [(f"Samples{first_seed}", "samples.png"),
               *((f"Nearest training neighbours of {name} samples (memorisation check){first_seed}",
                  f"neighbours_{slug(name)}.png") for name in groups)]
    if any(model.sampler is None for models in groups.values() for model in models):
        return figures  # a --points study reports from its kept scores, without the networks
    interpolation_panel(out / "interpolations.png", [models[0] for models in groups.values()])
    training_curves(out / "curves.png", groups)
    return [*figures, (f"Latent interpolations{first_seed}", "interpolations.png"),
            ("Training curves (mean over seeds, band: min to max)" if first_seed else "Training curves",
             "curves.png")]


def budget_text(settings: Settings) -> str:
    """The training budget, as the report states it."""
    if settings.runs:
        return "finished runs given with --runs (see the epochs and train time columns)"
    if settings.points:
        return (f"{settings.minutes:g} minutes of training steps per model, scored also after "
                f"{', '.join(f'{point:g}' for point in settings.points)} minutes")
    if settings.minutes:
        return (f"{settings.minutes:g} minutes of training steps per model (at most {settings.epochs} "
                "epochs)")
    steps = f" of at most {settings.steps_per_epoch} steps" if settings.steps_per_epoch else ""
    return f"{settings.epochs} epoch(s){steps} per model"


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


def training_cpus(groups: dict[str, list[Model]]) -> dict[str, list[str]]:
    """{CPU (config.json's versions): the runs that trained on it, as "<model> seed <s>"}."""
    cpus: dict[str, list[str]] = {}
    for name, models in groups.items():
        for model in models:
            cpu = model.config.get("versions", {}).get("cpu", "a CPU not recorded")
            cpus.setdefault(cpu, []).append(f"{name} seed {model.config['settings']['seed']}")
    return cpus


def results_dict(settings: Settings, groups: dict[str, list[Model]], rows: dict[str, dict[str, Any]],
                 accuracy: float, reference_size: int, started: float) -> dict[str, Any]:
    """What metrics.json holds (and the report shows): the rows with every seed's numbers,
    the runs and their settings, what each metric was computed on, versions, time."""
    model_settings = {name: models[0].config["settings"] for name, models in groups.items()}
    return {
        "title": settings.title or f"{settings.dataset}: " + " vs ".join(groups),
        "dataset": settings.dataset, "budget": budget_text(settings), "samples": settings.samples,
        "reference_size": reference_size, "seed": settings.seed,
        "seeds": {name: [model.config["settings"]["seed"] for model in models] for name, models in groups.items()},
        "training_cpus": training_cpus(groups),
        "confidence": CONFIDENCE, "bootstrap_resamples": RESAMPLES,
        "kid_subset_size": settings.kid_subset_size, "kid_subsets": settings.kid_subsets,
        "fid_counts": settings.fid_counts, "parzen_test": settings.parzen_test,
        "classifier_test_accuracy": accuracy, "rows": rows,
        "runs": {name: [str(model.run_dir) for model in models] for name, models in groups.items()},
        "model_settings": model_settings, "settings": settings_dict(settings),
        "versions": library_versions(), "notes": list(NOTES), "seconds": time.perf_counter() - started,
        "settings_json": json.dumps({"comparison": settings_dict(settings), **model_settings}, indent=2),
    }


# --- main ----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    """Run a comparison: see the module's docstring."""
    started = time.perf_counter()
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0], prog="python -m experiments.compare")
    with RunLock(settings.out):  # one comparison at a time in a folder
        compare(settings, started)


def compare(settings: Settings, started: float) -> None:
    """Train or read the runs, score them and write the report into --out."""
    out = Path(settings.out)
    check_out(settings)  # refusals come first
    runs = given_runs(settings) if settings.runs else None
    plan = None if settings.runs else plan_runs(settings)
    classifier = get_classifier(settings.dataset, settings.data_dir,  # trained here if not cached
                                   **settings.image_options())
    splits = load_splits(settings.dataset, settings.data_dir, **settings.image_options())
    refs = comparison_references(splits, classifier, settings.parzen_validation, settings.parzen_test,
                                 np.random.default_rng(REFERENCE_SEED), kid_subset_size=settings.kid_subset_size,
                                 kid_subsets=settings.kid_subsets, fid_counts=settings.fid_counts)
    points = PointRows()
    runs = runs or train_runs(settings, plan, partial(score_point, points, settings, refs))
    if settings.points:  # the networks stay unloaded: every number is kept in the runs' points
        groups = {name: [kept_model(name, path) for path in paths] for name, paths in runs.items()}
        rows, samples = final_point_rows(groups, points, splits, refs, settings)
    else:
        groups = {name: [load_model(name, path, settings.precision, sampler_options(settings, name))
                         for path in paths] for name, paths in runs.items()}
        rows, samples = score_rows(groups, splits, refs, settings)
    figures = draw_figures(out, groups, samples, rows, splits.x_train)
    results = results_dict(settings, groups, rows, classifier.accuracy(splits.x_test, splits.y_test),
                           len(splits.x_test), started)
    results["classifier_weights"] = classifier.weights_digest
    if settings.points:
        results["points"] = points.summarised()
        figures = [*budget_figures(out, results["points"], points.images), *figures]
    write_results(out, results, figures, settings.html)
    print("\n".join(markdown_table(results)))
    print(f"wrote {out / 'report.md'} in {results['seconds'] / 60:.1f} min")


if __name__ == "__main__":
    run_cli(main)
