"""What a comparison is asked to do: its settings and the models it compares.

`Settings` are the flags of `python -m experiments.compare` (or its --config file);
`validate` checks every entry of `models` (`{"name", "model", "args", "sampler"}`) before any
work starts, so a mistake in the last model's flags is found before the first trains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from common.config import precision_setting, setting
from common.data_settings import CHANNELS, check_dataset, check_image_options
from common.errors import UserError

MODELS = ("vae", "gan", "pixelcnn", "diffusion")  # the families the comparison can train and sample
DEFAULT_MODELS = [{"name": "VAE", "model": "vae", "args": []},
                  {"name": "GAN", "model": "gan", "args": []}]
MODEL_KEYS = ("name", "model", "args", "sampler")
# Flags of vae.train / gan.train that the comparison sets itself, for every model alike.
CONTROLLED_FLAGS = ("--dataset", "--data-dir", "--image-size", "--channels", "--epochs", "--max-minutes",
                    "--steps-per-epoch", "--seed", "--run-dir", "--name", "--resume", "--quiet", "--precision")
QUICK = {"epochs": 1, "steps_per_epoch": 20, "samples": 1000, "parzen_validation": 200,
         "parzen_test": 1000, "kid_subsets": 10, "fid_counts": [250, 500, 1000]}
QUICK_SAMPLER = {"diffusion": {"steps": 2}}  # each family's sampler options that make --quick quick
QUICK_MINUTES = 0.1  # --quick with --points: the budget, its points scaled alike
QUICK_POINT_EPOCHS = 1000  # …ended by that budget, not by --epochs
# Each family's own flags that make --quick quick (a table, so no code branches on the family).
QUICK_FLAGS = {"vae": ["--nll-k", "20", "--nll-k-train", "0"],
               "gan": ["--log-every", "5", "--eval-samples", "1000"],
               "pixelcnn": ["--eval-samples", "100"],
               "diffusion": ["--eval-samples", "100", "--bound-images", "2"]}


def slug(name: str) -> str:
    """A model's name as a file name: `GAN k=2` → `gan_k_2`."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@dataclass
class Settings:
    """The comparison's settings; `validate` fills in the models' default names and --quick."""

    out: str | None = setting(None, "folder for report.md, metrics.json, figures and runs (required)")
    dataset: str = setting("mnist", "dataset every model is trained and scored on: mnist, "
                                    "fashion_mnist, cifar10, shapes or folder:PATH (labelled)")
    data_dir: str | None = setting(None, "folder holding the dataset (default: $DATA_DIR)")
    image_size: int | None = setting(None, "every model's --image-size (unset: the dataset's own)")
    channels: int | None = setting(None, "every model's --channels (unset: the dataset's own)",
                                   choices=CHANNELS)
    # RUF009: setting() returns a dataclasses.field (a default_factory for lists), not a shared default.
    models: list[dict] = setting(
        DEFAULT_MODELS, "the models to train, each a JSON object {\"name\": ..., \"model\": "
        "\"vae\", \"gan\", \"pixelcnn\" or \"diffusion\", \"args\": [<family>.train flags], "
        "\"sampler\": {options of <family>.sample.load_sampler, e.g. \"prior\": \"gmm\"} (optional)}")
    only: list[str] | None = setting(None, "train and report only these of --models, each a name or a "
                                           "family, e.g. --only pixelcnn (processes may share a study by "
                                           "model, see --resume)")
    runs: list[str] | None = setting(
        None, "finished vae.train / gan.train run folders to compare instead of training; "
        "each is named by its folder")
    runs_dir: str | None = setting(None, "where the trained runs go, one folder per model "
                                         "(default: OUT/runs)")
    epochs: int = setting(10, "training epochs for each model (the matching budget)", positive=True)
    minutes: float | None = setting(None, "equal-time budget instead: each model trains for this "
                                          "many minutes of training steps (--epochs is then the "
                                          "upper limit)", positive=True)
    points: list[float] | None = setting(None, "with --minutes: also score every model after these "
                                               "minutes of training steps, for quality-against-time "
                                               "curves (each run is trained in segments, resumed "
                                               "between them: one run, not one per point)", positive=True)
    steps_per_epoch: int | None = setting(None, "cap on steps per epoch for every model",
                                          positive=True)
    samples: int = setting(10000, "images sampled from each model and scored", min=10)
    parzen_validation: int = setting(1000, "validation images for choosing the Parzen σ", min=2)
    parzen_test: int = setting(10000, "test images for the Parzen log-likelihood", min=2)
    seed: int = setting(0, "seed for training, sampling and baselines (the first seed with --seeds)",
                        min=0)
    seeds: int = setting(1, "train every model this many times, with seeds --seed, --seed+1, …, under "
                            "the same budget; the report gives each metric's mean ± std and 95 %% "
                            "bootstrap interval over them (not with --runs: there the runs given "
                            "are the seeds)", min=1)
    kid_subset_size: int = setting(1000, "KID: samples per subset (at most --samples)", min=2)
    kid_subsets: int = setting(100, "KID: number of subsets averaged", positive=True)
    fid_counts: list[int] = setting([2000, 5000, 10000], "FID is also computed on the first N samples "
                                    "for each N (counts above --samples are left out) to show its "
                                    "bias, and extrapolated to N = ∞", min=2)
    title: str | None = setting(None, "the report's title (default: the models' names joined by vs)")
    quick: bool = setting(False, "tiny budget for trying the pipeline: "
                                 + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    overwrite: bool = setting(False, "replace the results of an earlier comparison in --out")
    resume: bool = setting(False, "go on with an interrupted comparison: keep its runs, resume the "
                                  "cut ones and score only the points not yet scored (another "
                                  "process may take other --seed ranges or --only models of the same "
                                  "--runs-dir)")
    precision: str = precision_setting()  # the models' training and sampling; metrics stay float32
    html: bool = setting(False, "also write report.html (the report as a web page; it links the "
                                "PNGs next to it by relative path)")

    def validate(self) -> None:
        """Check --out and every model spec; apply --quick."""
        if not self.out:
            raise UserError("--out: say where the report goes")
        check_dataset(self.dataset)
        check_image_options(self.image_size, self.channels)
        self.models = [model_spec(index, spec, self.models) for index, spec in enumerate(self.models)]
        names = [slug(spec["name"]) for spec in self.models]
        if len(set(names)) < len(names):
            raise UserError(f"--models: names must differ (as file names: {', '.join(names)})")
        self.select_models()
        self.check_points()
        if self.quick:
            if self.points:  # the same report shape, in seconds: the points scaled to QUICK_MINUTES
                self.points = [point * QUICK_MINUTES / self.minutes for point in self.points]
                self.minutes, self.epochs = QUICK_MINUTES, QUICK_POINT_EPOCHS
            for name, value in QUICK.items():
                if not (self.points and name == "epochs"):
                    setattr(self, name, value)
            self.models = [{**spec, "args": [*spec["args"], *QUICK_FLAGS[spec["model"]]],
                            "sampler": {**spec["sampler"], **QUICK_SAMPLER.get(spec["model"], {})}}
                           for spec in self.models]
        if self.resume and (self.runs or self.overwrite):
            raise UserError("--resume: continues the runs this comparison trains; not with --runs or "
                            "--overwrite")
        if self.runs and self.seeds > 1:
            raise UserError("--seeds: with --runs the seeds are the runs given (see --runs); "
                            "leave --seeds out")
        if self.kid_subset_size > self.samples:
            raise UserError(f"--kid-subset-size: KID draws subsets of {self.kid_subset_size} samples "
                            f"but --samples is {self.samples}; make it at most --samples")
        self.fid_counts = sorted({count for count in self.fid_counts if count <= self.samples})

    def select_models(self) -> None:
        """--only: keep the models named, or of the families named."""
        if not self.only:
            return
        known = {spec["name"] for spec in self.models} | {spec["model"] for spec in self.models}
        unknown = [name for name in self.only if name not in known]
        if unknown:
            raise UserError(f"--only: no model is named {', '.join(map(repr, unknown))}; the models: "
                            + ", ".join(f"{spec['name']!r} ({spec['model']})" for spec in self.models))
        self.models = [spec for spec in self.models if {spec["name"], spec["model"]} & set(self.only)]

    def check_points(self) -> None:
        """--points: each under --minutes, which they need; not with --runs (nothing trains)."""
        if not self.points:
            return
        if self.runs or not self.minutes:
            raise UserError("--points: scoring during training needs --minutes (the budget the points "
                            "lead up to) and no --runs")
        if any(point >= self.minutes for point in self.points):
            raise UserError(f"--points: each point must come before the budget (--minutes {self.minutes:g}), "
                            f"got {', '.join(f'{point:g}' for point in self.points)}")
        self.points = sorted(set(self.points))

    def image_options(self) -> dict:
        """load_splits' image_size / channels, as every model is trained with."""
        return {key: value for key, value in (("image_size", self.image_size),
                                              ("channels", self.channels)) if value is not None}

    def seed_list(self) -> list[int]:
        """The training seeds of every model: --seed, --seed+1, …, --seed+--seeds−1."""
        return [self.seed + index for index in range(self.seeds)]


def model_spec(index: int, spec: dict, models: list[dict]) -> dict:
    """Entry `index` of `models`, checked, with its default name filled in."""
    where = f"--models[{index}]"
    unknown = sorted(set(spec) - set(MODEL_KEYS))
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)} "
                        f"(expected {', '.join(MODEL_KEYS)})")
    family = spec.get("model")
    if family not in MODELS:
        raise UserError(f"{where}: \"model\" must be one of {', '.join(MODELS)}, got {family!r}")
    args = spec.get("args", [])
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        raise UserError(f"{where}: \"args\" must be a list of strings, got {args!r}")
    for flag in args:
        if flag.split("=")[0] in CONTROLLED_FLAGS:
            raise UserError(f"{where}: {flag} is set by the comparison for every model; "
                            "use its own setting instead")
    same_family = sum(other.get("model") == family for other in models)
    name = spec.get("name") or (family.upper() if same_family == 1 else f"{family.upper()} {index + 1}")
    if not isinstance(name, str) or not slug(name):
        raise UserError(f"{where}: \"name\" must be a non-empty string, got {name!r}")
    sampler = spec.get("sampler", {})
    if not isinstance(sampler, dict):
        raise UserError(f"{where}: \"sampler\" must be an object of the family's sampler options "
                        f"(e.g. {{\"prior\": \"gmm\"}}), got {sampler!r}")
    return {"name": name, "model": family, "args": args, "sampler": sampler}
