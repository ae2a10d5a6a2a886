"""Diffusion sampling: sample quality against the number of steps, and seconds per 1,000 images.

    python -m experiments.bench.diffusion_steps --run R --steps 10 20 50 100 --samples 1000 --out steps.json
    python -m experiments.bench.diffusion_steps --run R --steps 1000 --samples 250 --out steps_T.json

For each step count S, `--samples` images are drawn from the run's EMA U-Net by DDIM (η = 0,
`diffusion.sample`; S = T is every step) from the same seed, timed after a warm-up batch
(tracing), and scored with the project classifier of the run's dataset against its test
split (`common.evaluation.scoring.score`: FID, KID, precision, recall, density,
coverage, classifier score). FID falls with more samples, so rows are comparable only at
equal `--samples`; KID is unbiased at any count. Rows are printed and written to `--out`.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass

from common.config import parse_settings, setting
from common.data import load_splits
from common.errors import UserError, run_cli
from common.evaluation.classifier import get_classifier
from common.evaluation.scoring import reference_set, score
from common.files import write_json
from common.runs import library_versions, load_run_config
from diffusion.sample import load_sampler, sampling_times

KID_SUBSET = 100  # small enough for the smallest --samples


@dataclass
class Settings:
    run: str | None = setting(None, "a finished diffusion.train run (required)")
    steps: list[int] = setting([10, 20, 50, 100], "DDIM step counts to measure, each 1 … T")
    samples: int = setting(1000, "images per step count", min=KID_SUBSET)
    seed: int = setting(0, "seed of the images (the same x_T for every step count)", min=0)
    batch: int = setting(500, "images denoised at once", positive=True)
    out: str | None = setting(None, "also write the rows to this JSON file")

    def validate(self) -> None:
        if not self.run:
            raise UserError("--run: give the run folder of a diffusion.train run")


def measure(sampler, steps: int, samples: int, seed: int) -> tuple[float, object]:
    """(seconds to draw `samples` images with `steps` DDIM steps, the images); traced first."""
    sampler.draw(2, seed, steps=steps)
    started = time.perf_counter()
    images = sampler.draw(samples, seed, steps=steps)
    return time.perf_counter() - started, images


def main(argv: list[str] | None = None) -> list[dict]:
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0],
                              prog="python -m experiments.bench.diffusion_steps")
    run_settings = load_run_config(settings.run, "diffusion")["settings"]
    sampler = load_sampler(settings.run)
    sampler.batch = settings.batch
    for steps in settings.steps:
        sampling_times(steps, sampler.schedule.steps)  # every bad count before any work
    options = {key: run_settings.get(key) for key in ("image_size", "channels") if run_settings.get(key)}
    classifier = get_classifier(run_settings["dataset"], run_settings.get("data_dir"), **options)
    test = load_splits(run_settings["dataset"], run_settings.get("data_dir"), **options).x_test
    references = reference_set(classifier.features(test), classifier, kid_subset_size=KID_SUBSET)
    rows = []
    for steps in settings.steps:
        seconds, images = measure(sampler, steps, settings.samples, settings.seed)
        scores = score(images, references)
        scores.pop("class_counts", None)
        rows.append({"steps": steps, "samples": settings.samples, "seconds": seconds,
                     "seconds_per_1000": 1000 * seconds / settings.samples, **scores})
        print(f"{steps:5d} steps: FID {scores['fid']:.2f}, KID {scores['kid']:.4f}, recall {scores['recall']:.3f}, "
              f"coverage {scores['coverage']:.3f}; {rows[-1]['seconds_per_1000']:.0f} s per 1,000 images", flush=True)
    if settings.out:
        write_json(settings.out, {"run": str(settings.run), "rows": rows, "reference": f"{len(test)} test images",
                                  "threads": os.environ.get("TF_NUM_INTRAOP_THREADS") or os.cpu_count(),
                                  "machine": platform.processor() or platform.machine(),
                                  "versions": library_versions()})
    return rows


if __name__ == "__main__":
    run_cli(main)
