"""Loss against wall time for candidate nst.run defaults: `python -m experiments.scripts.nst_defaults`.

Runs `python -m nst.run` at 512 px (tubingen × starry_night) once per candidate, one after
the other (a candidate whose run folder already has metrics.json is read, not rerun), then
writes two figures: the loss against the seconds since each run started, over its finest
scale only (coarser scales' losses are at their own size, not comparable), with the time
budget marked; and every candidate's image titled with its time and final loss. Needs an
idle machine: the point is the time axis.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from common.images import load_image
from common.plots import plot_curves, titled_images

CANDIDATES = {  # name: nst.run flags; run folders are named after the flags
    "300 it (the old default)": ["--iterations", "300"],
    "40 it (the new default)": ["--iterations", "40"],
    "50 it": ["--iterations", "50"],
    "2 scales: 100 + 30 it": ["--scales", "2", "--iterations", "100", "30"],
    "2 scales: 60 + 35 it": ["--scales", "2", "--iterations", "60", "35"],
    "2 scales: 60 + 30 it": ["--scales", "2", "--iterations", "60", "30"],
    "3 scales: 100 + 60 + 30 it": ["--scales", "3", "--iterations", "100", "60", "30"],
    "3 scales: 150 + 50 + 25 it": ["--scales", "3", "--iterations", "150", "50", "25"],
    "3 scales: 200 + 100 + 30 it, tol 1e-3": ["--scales", "3", "--iterations", "200", "100", "30",
                                              "--tol", "1e-3"],
}


def finest_scale_curve(metrics: dict) -> tuple[list[float], list[float]]:
    """(seconds, loss) of the finest scale's iterations: only those losses are at full size."""
    curve = metrics["loss_curve"][-metrics["iterations_per_scale"][-1]:]
    return [point[0] for point in curve], [point[1] for point in curve]


def run_candidate(run_dir: Path, extra: list[str], size: int, images: Path) -> dict:
    if not (run_dir / "metrics.json").is_file():
        subprocess.run([sys.executable, "-m", "nst.run", "--content",
                        str(images / "tubingen.jpg"), "--style", str(images / "starry_night.jpg"),
                        "--size", str(size), "--run-dir", str(run_dir), "--quiet", *extra],
                       check=True)
    return json.loads((run_dir / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--budget", type=float, default=180, help="seconds, marked on the plot")
    parser.add_argument("--runs", default="runs/nst_defaults")
    parser.add_argument("--out", default="experiments/results/nst",
                        help="folder for defaults_loss_vs_time.png and defaults_candidates.jpg")
    args = parser.parse_args()
    images = Path(os.environ.get("DATA_DIR", "../shared/assets")) / "images"
    curves, outputs = {}, {}
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
    for name, extra in CANDIDATES.items():
        run_dir = Path(args.runs) / "_".join(flag.lstrip("-") for flag in extra)
        metrics = run_candidate(run_dir, extra, args.size, images)
        curves[name] = finest_scale_curve(metrics)
        summary = f"{metrics['wall_seconds']:.0f} s, loss {metrics['final_loss']:.3g}"
        outputs[f"{name}\n{summary}"] = load_image(run_dir / "output.png")
        print(f"  {name:40} {summary}, {metrics['iterations']} iterations "
              f"{metrics['iterations_per_scale']}  ({run_dir / 'output.png'})")
    quick_end = max(seconds[-1] for seconds, _ in curves.values() if seconds[-1] < 2 * args.budget)
    plot_curves(f"{args.out}/defaults_loss_vs_time.png", curves, log_y=True,
                title=f"nst.run at {args.size} px: loss at full size against time",
                xlabel="seconds since the run started (coarser scales come before each line)",
                ylabel="total loss J at full size", xlim=(0, 1.35 * quick_end),
                vertical_lines={f"{args.budget / 60:g} min": args.budget})
    titled_images(f"{args.out}/defaults_candidates.jpg", outputs)
    print(f"wrote {args.out}/defaults_loss_vs_time.png and defaults_candidates.jpg")


if __name__ == "__main__":
    main()
