"""Loss against wall time for candidate nst.run defaults: `python -m experiments.nst_defaults`.

Runs `python -m nst.run` at 512 px (tubingen × starry_night) once per candidate, one after
the other, reads each run's metrics.json (its `loss_curve`: seconds since the run started
and the loss, per iteration; coarse scales report the loss at their own size) and plots all
curves on one figure, then prints the wall time and final loss per candidate. Needs an idle
machine: the point is the time axis.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from common.plots import plot_curves

CANDIDATES = {  # name: nst.run flags; run folders are named after the flags
    "300 it (the old default)": ["--iterations", "300"],
    "2 scales: 100 + 30 it": ["--scales", "2", "--iterations", "100", "30"],
    "2 scales: 60 + 35 it": ["--scales", "2", "--iterations", "60", "35"],
    "3 scales: 100 + 60 + 30 it": ["--scales", "3", "--iterations", "100", "60", "30"],
    "3 scales: 150 + 50 + 25 it": ["--scales", "3", "--iterations", "150", "50", "25"],
    "3 scales: 200 + 100 + 30 it, tol 1e-3": ["--scales", "3", "--iterations", "200", "100", "30",
                                              "--tol", "1e-3"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", default="runs/nst_defaults")
    parser.add_argument("--plot", default="experiments/results/nst/defaults_loss_vs_time.png")
    args = parser.parse_args()
    images = Path(os.environ.get("DATA_DIR", "../shared/assets")) / "images"
    curves = {}
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
    for name, extra in CANDIDATES.items():
        run_dir = Path(args.runs) / "_".join(flag.lstrip("-") for flag in extra)
        if not (run_dir / "metrics.json").is_file():
            subprocess.run([sys.executable, "-m", "nst.run", "--content",
                            str(images / "tubingen.jpg"), "--style", str(images / "starry_night.jpg"),
                            "--size", str(args.size), "--run-dir", str(run_dir), "--quiet", *extra],
                           check=True)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        seconds, losses = zip(*metrics["loss_curve"])
        curves[name] = (seconds, losses)
        print(f"  {name:30} {metrics['wall_seconds']:7.1f} s wall, {metrics['iterations']:4d} "
              f"iterations, final loss {metrics['final_loss']:.4g}  ({run_dir / 'output.png'})")
    plot_curves(args.plot, curves, title=f"nst.run at {args.size} px: loss against time",
                xlabel="seconds since the run started", ylabel="total loss J", log_y=True)
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
