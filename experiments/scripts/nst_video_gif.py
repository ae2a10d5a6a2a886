"""Side-by-side GIF of nst.video runs: `python -m experiments.scripts.nst_video_gif --clip DIR
--runs RUN_A RUN_B --output out.gif`.

Columns: the input frames, then each run's frames (runs/…/frames/frame_*.png, as nst.video
writes them with an .mp4 output); prints each run's temporal-consistency error from its
metrics.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from common.config import parse_settings, setting
from common.errors import UserError, run_cli
from common.files import read_json
from common.images import load_image, to_uint8
from nst.feedforward import list_images


@dataclass
class Settings:
    clip: str | None = setting(None, "the input frames' folder (required)")
    runs: list[str] | None = setting(None, "nst.video run folders (required)")
    output: str | None = setting(None, "the GIF to write (required)")
    fps: float = setting(12.0, "frames per second of the GIF", positive=True)

    def validate(self) -> None:
        if not (self.clip and self.runs and self.output):
            raise UserError("needs --clip DIR, --runs RUN [RUN ...] and --output OUT.gif")


def run_frames(run: str) -> list[np.ndarray]:
    """A run's frames, after printing its temporal-consistency error from metrics.json."""
    metrics = read_json(Path(run) / "metrics.json", "nst.video metrics file")
    print(f"{run}: temporal error {metrics['temporal_error']:.5f} "
          f"(input frames {metrics['input_temporal_error']:.5f}), "
          f"{metrics['seconds_per_frame']:.1f} s/frame, independent {metrics['independent']}")
    return [load_image(path) for path in list_images(Path(run) / "frames")]


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(Settings, argv, __doc__.split("\n\n")[0],
                              prog="python -m experiments.scripts.nst_video_gif")
    columns = [[load_image(path) for path in list_images(settings.clip)]]
    columns += [run_frames(run) for run in settings.runs]
    height, width = columns[1][0].shape[:2]
    frames = []
    for row in zip(*columns):
        row = [np.asarray(Image.fromarray(to_uint8(image)).resize((width, height))) / 255.0
               for image in row]
        frames.append(Image.fromarray(to_uint8(np.concatenate(row, axis=1))))
    frames[0].save(settings.output, save_all=True, append_images=frames[1:],
                   duration=round(1000 / settings.fps), loop=0, optimize=True)
    print(f"wrote {settings.output} ({len(frames)} frames)")


if __name__ == "__main__":
    run_cli(main)
