"""Side-by-side GIF of nst.video runs: `python -m experiments.scripts.nst_video_gif --clip DIR
--runs RUN_A RUN_B --output out.gif`.

Columns: the input frames, then each run's frames (runs/…/frames/frame_*.png, as nst.video
writes them with an .mp4 output); prints each run's temporal-consistency error from its
metrics.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from common.images import load_image, to_uint8
from nst.feedforward import list_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", required=True, help="the input frames' folder")
    parser.add_argument("--runs", nargs="+", required=True, help="nst.video run folders")
    parser.add_argument("--output", required=True)
    parser.add_argument("--fps", type=float, default=12.0)
    args = parser.parse_args()
    columns = [[load_image(path) for path in list_images(args.clip)]]
    for run in args.runs:
        metrics = json.loads((Path(run) / "metrics.json").read_text())
        print(f"{run}: temporal error {metrics['temporal_error']:.5f} "
              f"(input frames {metrics['input_temporal_error']:.5f}), "
              f"{metrics['seconds_per_frame']:.1f} s/frame, independent {metrics['independent']}")
        columns.append([load_image(path) for path in list_images(Path(run) / "frames")])
    height, width = columns[1][0].shape[:2]
    frames = []
    for row in zip(*columns):
        row = [np.asarray(Image.fromarray(to_uint8(image)).resize((width, height))) / 255.0
               for image in row]
        frames.append(Image.fromarray(to_uint8(np.concatenate(row, axis=1))))
    frames[0].save(args.output, save_all=True, append_images=frames[1:],
                   duration=round(1000 / args.fps), loop=0, optimize=True)
    print(f"wrote {args.output} ({len(frames)} frames)")


if __name__ == "__main__":
    main()
