"""What each switch buys, over seeds: `python -m experiments.ablation`.

    python -m experiments.ablation --runs runs/gan/abl_* --out experiments/results/gan/ablation

Reads finished runs and groups them into models by folder name, as `experiments.compare
--runs` does (`abl_sn_seed0`, `abl_sn_seed1` → `abl_sn`). Each run's scores are those of
its last scored epoch in metrics.json: the training-time evaluation (`--eval-samples`
samples against the test set on the project classifier's features; with `--ema`, for the
trained and for the averaged generator). Nothing is sampled again, so the table takes
seconds. The baseline (--baseline, or the first model given) comes first: each row names the settings in which it
differs from it, gives every metric as mean ± std [95 % bootstrap interval] over its seeds
(`experiments.stats`), and one line per metric says whether its difference from the
baseline is resolved. Writes report.md and metrics.json to --out.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.config import parse_settings, setting
from common.errors import UserError, run_cli
from common.files import atomic_write, write_json
from experiments.finished_runs import PER_RUN_SETTINGS, grouped_runs, run_settings
from experiments.report import scaled, spread
from experiments.stats import comparison_sentence, summarize

# Settings that change how a run is watched, not what it learns: seeds of one model may differ
# in them, and they are not listed as changes.
NOT_CHANGES = (*PER_RUN_SETTINGS, "eval", "eval_every", "log_every", "max_minutes", "deterministic")
LOWER_IS_BETTER = ("fid", "kid", "kl_to_uniform", "nll")  # metric name endings


@dataclass
class Settings:
    runs: list[str] | None = setting(None, "finished run folders, or folders of seed_<k> runs "
                                           "(required)")
    baseline: str | None = setting(None, "the model the others are set against (default: the "
                                         "first given)")
    metrics: list[str] = setting(["sample_fid", "sample_ema_fid", "sample_classifier_score"],
                                 "history keys to tabulate, each at the run's last scored epoch")
    out: str | None = setting(None, "folder for report.md and metrics.json (required)")

    def validate(self) -> None:
        if not self.runs:
            raise UserError("--runs: give the run folders to tabulate")
        if not self.out:
            raise UserError("--out: give a folder for report.md and metrics.json")


def lower_is_better(metric: str) -> bool:
    return metric.endswith(LOWER_IS_BETTER)


def last_score(history: dict[str, list], metric: str) -> tuple[float | None, int | None]:
    """(value, epoch) of the last epoch at which `metric` was recorded, or (None, None)."""
    values = history.get(metric) or []
    for value, epoch in zip(reversed(values), reversed(history["epoch"][:len(values)])):
        if value is not None:
            return float(value), int(epoch)
    return None, None


def setting_changes(base: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """The settings in which a run differs from the baseline's, written as flags."""
    changes = []
    for key in sorted((set(base) | set(settings)) - set(NOT_CHANGES)):
        value = settings.get(key)
        if value == base.get(key):
            continue
        flag = "--" + key.replace("_", "-")
        if key not in settings:  # a run from before the setting existed
            changes.append(f"{flag} (not set)")
        elif isinstance(value, bool):
            changes.append(flag if value else "--no-" + flag[2:])
        else:
            changes.append(f"{flag} {' '.join(map(str, value)) if isinstance(value, list) else value}")
    return changes


def model_row(members: list[tuple[Path, dict, dict]], metrics: list[str],
              base: dict[str, Any]) -> dict[str, Any]:
    """One model's seeds, scores (a `summarize` per metric, None when a seed lacks it),
    scoring epochs, training time and changes from the baseline's settings."""
    scores = {metric: [last_score(run_metrics["history"], metric) for _, _, run_metrics in members]
              for metric in metrics}
    return {"runs": [str(path) for path, _, _ in members],
            "seeds": [config["settings"]["seed"] for _, config, _ in members],
            "changes": setting_changes(base, run_settings(members[0][1])),
            "scored_after_epoch": sorted({epoch for values in scores.values() for _, epoch in values
                                          if epoch is not None}),
            "values": {metric: [value for value, _ in values] for metric, values in scores.items()},
            "summary": {metric: None if any(value is None for value, _ in values)
                        else summarize([value for value, _ in values]) for metric, values in scores.items()},
            "train_minutes": scaled(summarize([run_metrics["train_seconds"]
                                               for _, _, run_metrics in members]), 1 / 60)}


def ablation(settings: Settings) -> dict[str, Any]:
    groups = grouped_runs((Path(run) for run in settings.runs), may_differ=NOT_CHANGES)
    base_name = settings.baseline or next(iter(groups))
    if base_name not in groups:
        raise UserError(f"--baseline: no model {base_name!r} among the runs ({', '.join(groups)})")
    groups = {base_name: groups.pop(base_name), **groups}
    families = sorted({config["model"] for members in groups.values() for _, config, _ in members})
    if len(families) > 1:
        raise UserError(f"--runs: an ablation sets runs of one family against each other; got "
                        f"{' and '.join(families)} runs")
    base = run_settings(groups[base_name][0][1])
    rows = {name: model_row(members, settings.metrics, base) for name, members in groups.items()}
    missing = [metric for metric in settings.metrics if all(row["summary"][metric] is None
                                                            for row in rows.values())]
    if missing:
        raise UserError(f"--metrics: no run recorded {', '.join(missing)}")
    sentences = [comparison_sentence(metric, lower_is_better(metric), name, row["summary"][metric],
                                     base_name, rows[base_name]["summary"][metric])
                 for name, row in list(rows.items())[1:] for metric in settings.metrics
                 if row["summary"][metric] and rows[base_name]["summary"][metric]]
    return {"baseline": base_name, "metrics": settings.metrics, "rows": rows, "sentences": sentences}


def markdown(result: dict[str, Any], command: str) -> str:
    metrics = result["metrics"]
    lines = [f"# Ablation against {result['baseline']}", "", f"    {command}", "",
             "Each run's scores at its last scored epoch (its training-time evaluation); "
             "mean ± std [95 % bootstrap interval] over seeds.", "",
             f"| model | changes from {result['baseline']} | seeds | scored after epoch | "
             + " | ".join(metrics) + " | training (min) |",
             "|---" * (len(metrics) + 5) + "|"]
    for name, row in result["rows"].items():
        cells = [spread(row["summary"][metric], 2) for metric in metrics]
        lines.append(f"| {name} | {' '.join(row['changes']) or '–'} | "
                     f"{', '.join(map(str, row['seeds']))} | "
                     f"{', '.join(map(str, row['scored_after_epoch'])) or '–'} | "
                     + " | ".join(cells) + f" | {spread(row['train_minutes'], 1)} |")
    return "\n".join([*lines, "", *(f"- {sentence}" for sentence in result["sentences"]), ""])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0], prog="python -m experiments.ablation")
    result = ablation(settings)
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m experiments.ablation " + " ".join(sys.argv[1:] if argv is None else argv)
    write_json(out / "metrics.json", {**result, "command": command})
    report = markdown(result, command)
    with atomic_write(out / "report.md", "w") as stream:
        stream.write(report)
    print(report)
    return result


if __name__ == "__main__":
    run_cli(main)
