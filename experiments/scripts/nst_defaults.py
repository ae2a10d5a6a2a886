"""Loss against wall time for candidate nst.run defaults: `python -m experiments.scripts.nst_defaults`.

Runs `python -m nst.run` at 512 px (tubingen × starry_night) once per candidate, one after
the other (a candidate whose run folder already has metrics.json is read, not rerun), then
writes two figures: the loss against the seconds since each run started, over its finest
scale only (coarser scales' losses are at their own size, not comparable), with the time
budget marked; and every candidate's image titled with its time and final loss. Needs an
idle machine: the point is the time axis.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from common.config import parse_settings, setting
from common.errors import RunFailed, run_cli
from common.files import read_json
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


@dataclass
class Settings:
    size: int = setting(512, "long side of every candidate's output, in pixels", positive=True)
    budget: float = setting(180.0, "seconds, marked on the plot", positive=True)
    runs: str = setting("runs/nst_defaults", "folder of the candidates' run folders")
    out: str = setting("experiments/results/nst",
                       "folder for defaults_loss_vs_time.png and defaults_candidates.jpg")


def run_candidate(run_dir: Path, extra: list[str], size: int, images: Path) -> dict:
    if not (run_dir / "metrics.json").is_file():
        child = subprocess.run([sys.executable, "-m", "nst.run", "--content",
                                str(images / "tubingen.jpg"), "--style",
                                str(images / "starry_night.jpg"), "--size", str(size),
                                "--run-dir", str(run_dir), "--quiet", *extra])
        if child.returncode:
            raise RunFailed(f"{run_dir}: nst.run failed (exit {child.returncode})")
    return read_json(run_dir / "metrics.json", "metrics file")


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0],
                              prog="python -m experiments.scripts.nst_defaults")
    images = Path(os.environ.get("DATA_DIR", "../shared/assets")) / "images"
    curves, outputs = {}, {}
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
    for name, extra in CANDIDATES.items():
        run_dir = Path(settings.runs) / "_".join(flag.lstrip("-") for flag in extra)
        metrics = run_candidate(run_dir, extra, settings.size, images)
        curves[name] = finest_scale_curve(metrics)
        summary = f"{metrics['wall_seconds']:.0f} s, loss {metrics['final_loss']:.3g}"
        outputs[f"{name}\n{summary}"] = load_image(run_dir / "output.png")
        print(f"  {name:40} {summary}, {metrics['iterations']} iterations "
              f"{metrics['iterations_per_scale']}  ({run_dir / 'output.png'})")
    quick_end = max(seconds[-1] for seconds, _ in curves.values() if seconds[-1] < 2 * settings.budget)
    plot_curves(f"{settings.out}/defaults_loss_vs_time.png", curves, log_y=True,
                title=f"nst.run at {settings.size} px: loss at full size against time",
                xlabel="seconds since the run started (coarser scales come before each line)",
                ylabel="total loss J at full size", xlim=(0, 1.35 * quick_end),
                vertical_lines={f"{settings.budget / 60:g} min": settings.budget})
    titled_images(f"{settings.out}/defaults_candidates.jpg", outputs)
    print(f"wrote {settings.out}/defaults_loss_vs_time.png and defaults_candidates.jpg")


if __name__ == "__main__":
    run_cli(main)
