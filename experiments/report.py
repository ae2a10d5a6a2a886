"""The comparison's report: the table of scores, report.md and (on demand) report.html.

`results` is the dict main() writes to metrics.json (plus "settings_json"); every row
holds its per-seed numbers ("seeds") and their `experiments.stats.summarize` results
("summary"). `figures` are (caption, PNG file name) pairs, the files lying next to the
report. Each cell is mean ± std over seeds [95 % bootstrap interval]; the "resolved"
section ranks two models on a metric only when their intervals do not overlap.
"""

from __future__ import annotations

import html
from itertools import combinations
from typing import Any

from common.evaluation.scoring import DENSITY_K, PRECISION_K
from experiments.stats import comparison_sentence

FID_NOTE = ("FID, KID, precision/recall and density/coverage use the features of this project's own "
            "classifier; they are comparable between rows here but not with Inception FID or KID.")
PRECISION_NOTE = ("k-NN precision is sensitive to outliers among the real images: a tight cluster "
                  "of poor samples (such as the noise baselines' features) can fall inside the "
                  "large balls of a few atypical test images and get a precision near 1 "
                  "(Naeem et al. 2020); density and coverage, which use only the real images' "
                  "balls, are the paper's fix, so read precision together with them and FID.")
KID_NOTE = ("KID (Bińkowski et al. 2018) is unbiased, so unlike FID it does not shrink as the sample "
            "count grows; the FID-by-sample-count table shows how much FID does, and FID∞ is its "
            "extrapolation to infinitely many samples (Chong & Forsyth 2020).")
PARZEN_NOTE = ("Parzen-window log-likelihoods (Goodfellow et al. 2014 protocol) are a poor "
               "estimate of the true log-likelihood in 784 dimensions (Theis et al. 2016); "
               "read them beside the other columns, never alone.")
SEEDS_NOTE = ("Each cell is the mean ± standard deviation over the seeds, with the 95 % "
              "percentile-bootstrap interval of the mean in brackets (10,000 resamples of the "
              "seeds); with 2 or 3 seeds that interval is the range of the seeds. Two models are "
              "ranked on a metric only when their intervals do not overlap; otherwise the "
              "difference is not resolved by this many seeds.")
NOTES = (FID_NOTE, PRECISION_NOTE, KID_NOTE, PARZEN_NOTE, SEEDS_NOTE)
MARKDOWN_NOTES = (("Real training images are scored like a model's samples: the best a model that "
                   "reproduced the training distribution could do at this sample size. They and "
                   "the baselines are drawn once per seed."),
                  ("Classes covered: classes holding at least 10 % of their uniform share of "
                   "the samples (by the classifier's prediction)."),
                  ("Density can exceed 1 (samples crowding dense regions of the real data) and "
                   "is not ranked; coverage lies in [0, 1]."),
                  ("Test NLL: the VAE's importance-weighted bound (Burda et al. 2015) on the test "
                   "images under its decoder's likelihood (Bernoulli on binarized digits; "
                   "continuous Bernoulli or discretized logistic on [0, 1] colour pixels, "
                   "docs/vae.md); a GAN defines no likelihood."),
                  ("Test bits/dim (8-bit): −log₂ p(x) per value of the 8-bit test images, for runs "
                   "trained on 8-bit values: exact for PixelCNN, a bound for the VAE and for "
                   "diffusion (Ho et al.'s, on the run's first --bound-images test images); "
                   "binarized runs have none."))
# (summary key, name, header, decimals, lower is better: True / False / None for not ranked)
METRICS = (("fid", "FID", "FID ↓", 2, True), ("kid", "KID", "KID ↓", 3, True),
           ("classifier_score", "classifier score", "classifier score ↑", 2, False),
           ("classes_covered", "classes covered", "classes covered", 1, None),
           ("precision", "precision", "precision ↑", 3, False), ("recall", "recall", "recall ↑", 3, False),
           ("density", "density", "density", 3, None), ("coverage", "coverage", "coverage ↑", 3, False),
           ("parzen_log_likelihood", "Parzen LL", "Parzen LL (nats) ↑", 0, False),
           ("test_nll", "test NLL", "test NLL (nats) ↓", 2, True),
           ("test_bits_per_dim", "bits/dim", "test bits/dim (8-bit) ↓", 3, True))
COLUMNS = ("seeds", *(header for _, _, header, _, _ in METRICS), "generator params", "train time",
           "epochs", "sampling (s per 1,000)")
STYLE = ("body{font-family:sans-serif;max-width:1300px;margin:auto}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}img{max-width:100%}")


def epochs_text(epochs: float | None) -> str:
    """Epochs trained: whole numbers as such, a time budget's fraction to two decimals."""
    if epochs is None:
        return "–"
    return f"{epochs:g}" if float(epochs).is_integer() else f"{epochs:.2f}"


def number(value: Any, digits: int) -> str:
    """`value` to `digits` decimals, or a dash when it was not measured."""
    return "–" if value is None else f"{value:.{digits}f}"


def spread(summary: dict[str, Any] | None, digits: int) -> str:
    """"mean ± std [low, high]", or the single value of one seed, or a dash."""
    if summary is None:
        return "–"
    if summary["ci"] is None:
        return number(summary["mean"], digits)
    low, high = summary["ci"]
    return (f"{summary['mean']:.{digits}f} ± {summary['std']:.{digits}f} "
            f"[{low:.{digits}f}, {high:.{digits}f}]")


def scaled(summary: dict[str, Any], factor: float) -> dict[str, Any]:
    """A `summarize` result in other units (seconds → minutes)."""
    return {**summary, "mean": summary["mean"] * factor,
            "std": None if summary["std"] is None else summary["std"] * factor,
            "ci": None if summary["ci"] is None else [bound * factor for bound in summary["ci"]],
            "values": [value * factor for value in summary["values"]]}


def sample_counts(results: dict[str, Any]) -> dict[str, str]:
    """{summary key: what the metric was computed on, per seed}."""
    n, reference = f"{results['samples']:,}", f"{results['reference_size']:,}"
    size = f"{results['kid_subset_size']:,}"
    return {"fid": f"{n} vs {reference} test", "kid": f"{results['kid_subsets']} subsets of {size} vs {size}",
            "classifier_score": n, "classes_covered": n,
            "precision": f"{n} vs {reference}, k={PRECISION_K}", "recall": f"{n} vs {reference}, k={PRECISION_K}",
            "density": f"{n} vs {reference}, k={DENSITY_K}", "coverage": f"{n} vs {reference}, k={DENSITY_K}",
            "parzen_log_likelihood": f"{n} centres, {results['parzen_test']:,} test",
            "test_nll": "all test images", "test_bits_per_dim": "the run's test images"}


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    """The table's cells, one list per row, the row's name first (see COLUMNS); the first
    row gives each metric's sample count."""
    counts = sample_counts(results)
    out = [["*samples per seed*", "–", *(counts[key] for key, *_ in METRICS), "–", "–", "–", "–"]]
    for name, row in results["rows"].items():
        summary, first = row["summary"], row["seeds"][0]
        seeds = len(row["seeds"])
        cells = [spread(summary.get(key), digits) for key, _, _, digits, _ in METRICS]
        if first.get("nll_k") is not None:
            cells[-1] += f" (k={first['nll_k']})"
        seconds = summary.get("train_seconds")
        parameters = first.get("generator_parameters")
        out.append([name, str(seeds) if seeds > 1 else "1 (no interval)", *cells,
                    "–" if parameters is None else f"{parameters:,}",
                    "–" if seconds is None else spread(scaled(seconds, 1 / 60), 1) + " min",
                    epochs_text(summary["epochs"]["mean"]) if "epochs" in summary else "–",
                    spread(summary.get("sample_seconds_per_1000"), 1)])
    return out


def markdown_table(results: dict[str, Any]) -> list[str]:
    """The table as Markdown lines."""
    return ["| | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|",
            *("| " + " | ".join(row) + " |" for row in table_rows(results))]


def fid_count_table(results: dict[str, Any]) -> list[str]:
    """Markdown lines: each row's FID on the first N samples for each N, and FID∞."""
    counts = [str(count) for count in results["fid_counts"]]
    if not counts:
        return []
    head = [f"FID at {int(count):,}" for count in counts] + (["FID∞ (fit in 1/N)"] if len(counts) > 1 else [])
    lines = ["| | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for name, row in results["rows"].items():
        by_count = row["summary"]["fid_by_samples"]
        cells = [spread(by_count.get(count), 2) for count in counts]
        if len(counts) > 1:
            cells.append(spread(row["summary"].get("fid_infinity"), 2))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def ranking_sentences(rows: dict[str, dict[str, Any]], models: list[str]) -> list[str]:
    """For every ranked metric and every pair of `models` whose rows both have it: ranked, or
    not resolved (see `experiments.stats.comparison_sentence`)."""
    return [comparison_sentence(label, lower, a, rows[a]["summary"][key], b, rows[b]["summary"][key])
            for key, label, _, _, lower in METRICS if lower is not None
            for a, b in combinations(models, 2) if key in rows[a]["summary"] and key in rows[b]["summary"]]


def resolution_lines(results: dict[str, Any]) -> list[str]:
    """`ranking_sentences` of the table's models (none for a quick run)."""
    if is_quick(results):
        return ["a quick run ranks nothing"]
    return ranking_sentences(results["rows"], [name for name, row in results["rows"].items() if row.get("model")])


def seeds_text(results: dict[str, Any]) -> str:
    """How many seeds each model had, for the report's opening paragraph."""
    seeds = results["seeds"]
    counts = {len(values) for values in seeds.values()}
    if counts == {1}:
        return "1 seed per model, so no spread and no interval: no difference between models is resolved"
    listed = "; ".join(f"{name}: {', '.join(map(str, values))}" for name, values in seeds.items())
    return f"{'/'.join(map(str, sorted(counts)))} seeds per model ({listed})"


QUICK_NOTICE = ("**A quick run (`--quick`): it checks that the pipeline works with tiny budgets and "
                "ranks nothing**; its models are barely trained, so their scores say nothing about the "
                "families.")


def is_quick(results: dict[str, Any]) -> bool:
    return bool(results.get("settings", {}).get("quick"))


def machines_text(results: dict[str, Any]) -> str:
    """Which CPUs the runs trained on: a minute of training buys different numbers of steps
    on different machines, so a time budget is equal only on one."""
    machines = results.get("training_cpus", {})
    if len(machines) == 1:
        return f"Every run trained on: {next(iter(machines))}."
    return ("The runs trained on different CPUs, so equal minutes are not equal work: "
            + "; ".join(f"{cpu} ({', '.join(runs)})" for cpu, runs in machines.items()) + ".")


def summary_text(results: dict[str, Any]) -> str:
    """The report's opening paragraph (a quick run's begins by saying what it is)."""
    quick = QUICK_NOTICE + " " if is_quick(results) else ""
    return (f"{quick}{results['samples']:,} samples per row and seed, scored against the "
            f"{results['reference_size']:,} test images; {seeds_text(results)}; classifier test "
            f"accuracy {100 * results['classifier_test_accuracy']:.2f} %. Budget: {results['budget']}. "
            f"{machines_text(results)}")


def point_tables(results: dict[str, Any]) -> list[str]:
    """Markdown: at each point of training time (--points), each model's ranked metrics
    (mean ± std [interval]) and the sentences saying which differences the seeds resolve
    there (none for a quick run)."""
    point_rows = results.get("points", {})
    ranked = [(key, label, header, digits, lower) for key, label, header, digits, lower in METRICS
              if lower is not None]
    lines = []
    for minutes, rows in point_rows.items():
        shown = [metric for metric in ranked if any(metric[0] in row["summary"] for row in rows.values())]
        lines += [f"### After {minutes} minutes of training", "",
                  "| | " + " | ".join(header for _, _, header, _, _ in shown) + " |",
                  "|---" * (len(shown) + 1) + "|"]
        lines += [f"| {name} | " + " | ".join(spread(row["summary"].get(key), digits)
                                              for key, _, _, digits, _ in shown) + " |"
                  for name, row in rows.items()]
        sentences = ["a quick run ranks nothing"] if is_quick(results) else ranking_sentences(rows, list(rows))
        lines += ["", *(f"- {sentence}" for sentence in sentences), ""]
    return lines


def markdown_report(results: dict[str, Any], figures: list[tuple[str, str]]) -> str:
    """report.md: what was compared, the table, the resolved differences, FID by sample
    count, the notes, the figures, settings and versions."""
    lines = [f"# {results['title']}", "", summary_text(results), "", *markdown_table(results), ""]
    resolved = resolution_lines(results)
    lines += ["## Which differences the seeds resolve", "",
              *([f"- {line}" for line in resolved] or ["- one model: nothing to rank"]), ""]
    if results.get("points"):
        lines += ["## Quality against training time", "", *point_tables(results)]
    fid_counts = fid_count_table(results)
    if fid_counts:
        lines += ["## FID against the number of samples", "", *fid_counts, ""]
    lines += [f"- {note}" for note in (*NOTES, *MARKDOWN_NOTES)] + [""]
    for caption, name in figures:
        lines += [f"## {caption}", "", f"![{caption}]({name})", ""]
    lines += ["## Settings", "", "```json", results["settings_json"], "```", "",
              "## Library versions", "", ", ".join(f"{k} {v}" for k, v in results["versions"].items()), ""]
    return "\n".join(lines)


def html_report(results: dict[str, Any], figures: list[tuple[str, str]]) -> str:
    """report.html: the same report as a web page, the figures linked by relative path."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("", *COLUMNS))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in table_rows(results))
    images = "".join(f"<h2>{html.escape(caption)}</h2><img alt='{html.escape(caption, quote=True)}' "
                     f"src='{html.escape(name, quote=True)}'>" for caption, name in figures)
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in (*NOTES, *MARKDOWN_NOTES))
    resolved = "".join(f"<li>{html.escape(line)}</li>" for line in resolution_lines(results))
    title = html.escape(results["title"])
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{STYLE}</style></head><body>"
            f"<h1>{title}</h1><p>{html.escape(summary_text(results))}</p>"
            f"<table><tr>{head}</tr>{body}</table><h2>Which differences the seeds resolve</h2>"
            f"<ul>{resolved}</ul><ul>{notes}</ul>{images}<h2>Settings</h2>"
            f"<pre>{html.escape(results['settings_json'])}</pre>"
            f"<p>{html.escape(str(results['versions']))}</p></body></html>")
