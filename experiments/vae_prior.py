"""The mixture sampler against N(0, I) on trained VAEs: `python -m experiments.vae_prior`.

    python -m experiments.vae_prior --runs runs/vae/s0 runs/vae/s1 runs/vae/s2 --out gmm.json

Issue #14's target: a VAE's samples from the ex-post Gaussian mixture (`vae.sample --prior
gmm`, vae/prior.py) should score at most half the FID of its N(0, I) samples. Per run (one
run per seed, the same network and data): --n codes from N(0, I) and --n from a
--components mixture fitted to μ(x) of the run's training set, decoded as `vae.sample` does,
both scored against the test set with the comparison's metrics (the project classifier's
features, `common.evaluation.scoring.score`). Prints, and writes to --out, the per-run
scores, mean ± std [95 % bootstrap interval] over the runs, whether each difference is
resolved, and the per-run ratio FID(gmm) / FID(normal).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from common.config import parse_settings, setting
from common.data import Splits
from common.errors import UserError, run_cli
from common.evaluation.classifier import get_classifier
from common.evaluation.scoring import References, reference_set, score
from common.files import write_json
from common.runs import load_run_config
from experiments.stats import comparison_sentence, summarize
from vae.prior import check_components
from vae.sample import decode, load_vae, mixture_codes, run_splits, sample_images, with_channels

COMPARED = {"fid": True, "kid": True, "precision": False, "recall": False, "density": False,
            "coverage": False, "classifier_score": False}  # metric: lower is better


@dataclass
class Settings:
    runs: list[str] | None = setting(None, "finished vae.train run folders, one per seed "
                                           "(required)")
    n: int = setting(10000, "samples per prior and run", positive=True)
    components: int = setting(10, "mixture components", positive=True)
    out: str | None = setting(None, "also write the JSON object to this file")

    def validate(self) -> None:
        if not self.runs:
            raise UserError("--runs: give the VAE run folders to compare")
        if len(set(self.runs)) < len(self.runs):
            raise UserError("--runs: a run folder is given twice")
        configs = [load_run_config(run, "vae")["settings"] for run in self.runs]
        if any(config.get("conditional") for config in configs):
            raise UserError("--runs: conditional VAEs sample per class; give unconditional runs")
        if len({config["dataset"] for config in configs}) > 1:
            raise UserError("--runs: the runs were trained on different datasets")
        if len({(config.get("image_size"), config.get("channels")) for config in configs}) > 1:
            raise UserError("--runs: the runs were trained at different image sizes or channels "
                            "(one test set scores them all)")


def score_run(run: str, splits: Splits, references: References, settings: Settings) -> dict[str, dict[str, Any]]:
    """{"normal": scores, "gmm": scores} of one run's --n samples from each prior, against the
    test set (`references`)."""
    model = load_vae(run)
    samples = {"normal": sample_images(model, settings.n, seed=0),
               "gmm": decode(model, mixture_codes(model, splits, settings.components, settings.n))}
    return {prior: score(with_channels(images), references) for prior, images in samples.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0],
                              prog="python -m experiments.vae_prior")
    config = load_run_config(settings.runs[0], "vae")["settings"]  # all runs share the data
    splits = run_splits(settings.runs[0])
    check_components(settings.components, len(splits.x_train))  # before building the classifier
    classifier = get_classifier(config["dataset"], config.get("data_dir"), stream=sys.stderr,
                                   image_size=config.get("image_size"),
                                   channels=config.get("channels"))
    references = reference_set(classifier.features(splits.x_test), classifier)
    per_run = {run: score_run(run, splits, references, settings)
               for run in settings.runs}
    summary = {prior: {metric: summarize([scores[prior][metric] for scores in per_run.values()])
                       for metric in COMPARED} for prior in ("normal", "gmm")}
    sentences = [comparison_sentence(metric, lower, "gmm", summary["gmm"][metric], "normal",
                                     summary["normal"][metric])
                 for metric, lower in COMPARED.items()]
    ratios = [scores["gmm"]["fid"] / scores["normal"]["fid"] for scores in per_run.values()]
    result = {"runs": per_run, "summary": summary, "sentences": sentences,
              "fid_ratio_gmm_to_normal": summarize(ratios), "n": settings.n,
              "components": settings.components}
    if settings.out:
        write_json(settings.out, result)
    print(json.dumps({key: result[key] for key in ("summary", "sentences",
                                                   "fid_ratio_gmm_to_normal")}, indent=1))
    return result


if __name__ == "__main__":
    run_cli(main)
