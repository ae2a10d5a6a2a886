"""The comparison's report: the table of scores, report.md and (on demand) report.html.

`results` is the dict main() writes to metrics.json (plus "settings_json"); `figures`
are (caption, PNG file name) pairs, the files lying next to the report.
"""

from __future__ import annotations

import html
from typing import Any

FID_NOTE = ("FID, precision and recall use the features of this project's own "
            "classifier; they are comparable between rows here but not with Inception FID.")
PRECISION_NOTE = ("k-NN precision is sensitive to outliers among the real images: a tight cluster "
                  "of poor samples (such as the noise baselines' features) can fall inside the "
                  "large balls of a few atypical test images and get a precision near 1 "
                  "(Naeem et al. 2020); read precision together with FID and recall.")
PARZEN_NOTE = ("Parzen-window log-likelihoods (Goodfellow et al. 2014 protocol) are a poor "
               "estimate of the true log-likelihood in 784 dimensions (Theis et al. 2016); "
               "read them beside the other columns, never alone.")
NOTES = (FID_NOTE, PRECISION_NOTE, PARZEN_NOTE)
MARKDOWN_NOTES = (("Real training images are scored like a model's samples: the best a model that "
                   "reproduced the training distribution could do at this sample size."),
                  ("Classes covered: classes holding at least 10 % of their uniform share of "
                   "the samples (by the classifier's prediction)."),
                  ("Test NLL: the VAE's importance-weighted bound (Burda et al. 2015) on binarized "
                   "test images; a GAN defines no likelihood."))
COLUMNS = ("FID ↓", "classifier score ↑", "classes covered", "precision ↑", "recall ↑",
           "Parzen LL (nats) ↑", "test NLL (nats) ↓", "generator params", "train time", "epochs")
STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}img{max-width:100%}")


def epochs_text(epochs: float | None) -> str:
    """Epochs trained: whole numbers as such, a time budget's fraction to two decimals."""
    if epochs is None:
        return "–"
    return f"{epochs:g}" if float(epochs).is_integer() else f"{epochs:.2f}"


def number(value: Any, digits: int) -> str:
    """`value` to `digits` decimals, or a dash when it was not measured."""
    return "–" if value is None else f"{value:.{digits}f}"


def table_rows(rows: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The table's cells, one list per row, the row's name first (see COLUMNS)."""
    out = []
    for name, row in rows.items():
        seconds = row.get("train_seconds")
        nll = row.get("test_nll")
        parameters = row.get("generator_parameters")
        out.append([name, number(row["fid"], 2), number(row["classifier_score"], 2),
                    f"{row['classes_covered']}/10", number(row["precision"], 3),
                    number(row["recall"], 3),
                    f"{row['parzen_log_likelihood']:.0f} ± {row['parzen_standard_error']:.0f}",
                    "–" if nll is None else f"{nll:.2f} (k={row.get('nll_k')})",
                    "–" if parameters is None else f"{parameters:,}",
                    "–" if seconds is None else f"{seconds / 60:.1f} min",
                    epochs_text(row.get("epochs"))])
    return out


def markdown_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    """The table as Markdown lines."""
    return ["| | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|",
            *("| " + " | ".join(row) + " |" for row in table_rows(rows))]


def markdown_report(results: dict[str, Any], figures: list[tuple[str, str]]) -> str:
    """report.md: what was compared, the table, the notes, the figures, settings and versions."""
    summary = (f"{results['samples']:,} samples per row, scored against the "
               f"{results['reference_size']:,} test images; seed {results['seed']}; classifier test "
               f"accuracy {100 * results['classifier_test_accuracy']:.2f} %. Budget: {results['budget']}.")
    lines = [f"# {results['title']}", "", summary, "", *markdown_table(results["rows"]), ""]
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
                   for row in table_rows(results["rows"]))
    images = "".join(f"<h2>{html.escape(caption)}</h2><img alt='{html.escape(caption, quote=True)}' "
                     f"src='{html.escape(name, quote=True)}'>" for caption, name in figures)
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in (*NOTES, *MARKDOWN_NOTES))
    title = html.escape(results["title"])
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{STYLE}</style></head><body>"
            f"<h1>{title}</h1><p>Budget: {html.escape(results['budget'])}.</p>"
            f"<table><tr>{head}</tr>{body}</table>"
            f"<ul>{notes}</ul>{images}<h2>Settings</h2><pre>{html.escape(results['settings_json'])}"
            f"</pre><p>{html.escape(str(results['versions']))}</p></body></html>")
