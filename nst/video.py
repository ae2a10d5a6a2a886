"""Video style transfer: `python -m nst.video --input clip.mp4|FRAMES_DIR --style S --output out.mp4|DIR`.

Ruder, Dosovitskiy & Brox, "Artistic Style Transfer for Videos" (GCPR 2016): frames are
stylised in order; each starts from the previous result warped into it by optical flow,
and a temporal loss pulls it towards that warped result wherever the flow can be trusted:

    J_temporal = 1/D · Σ_k c_k·(x_k − ω_k)²          (their eq. 6, D = H·W·3)

with ω the warped previous output and c the occlusion mask from forward-backward flow
consistency (their eq. 8 and 9). Optical flow is OpenCV's DIS. `--independent` stylises
every frame on its own from its content (the flickering baseline); `--method fast --model M`
runs a network trained by `nst.fast` per frame. Every `nst.run` option applies per frame
(`--size`, `--iterations`, `--style-layers`, weights, `--preserve-color`, `--tol` …).
Writes the frames (a folder: one PNG per frame) or an .mp4, and metrics.json with the
temporal-consistency error: the mean of (output_t − warped output_t−1)² over the pixels
the mask keeps, in [0, 1] RGB units.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.config import parse_settings, setting
from common.errors import UserError, run_cli
from common.images import load_image, resize, save_image
from common.runs import locked_run, set_seed, write_metrics
from nst import color
from nst.run import Settings, load_content_and_styles, scaled_shape

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


@dataclass
class VideoSettings(Settings):
    input: str | None = setting(None, "a video file or a folder of frames (sorted by name) "
                                "(required)")
    method: str = setting("optimize", "per-frame optimisation (Gatys with Ruder et al.'s "
                          "temporal loss) or a trained fast network", choices=("optimize", "fast"))
    model: str | None = setting(None, "the network of --method fast (.keras from nst.fast)")
    temporal_weight: float = setting(200.0, "weight of the temporal loss", min=0.0)
    independent: bool = setting(False, "stylise each frame alone from its content: no warped "
                                "start, no temporal loss (the baseline)")
    frame_iterations: int = setting(0, "iterations for every frame after the first (0: "
                                    "--iterations); a warped start needs fewer", min=0)
    max_frames: int = setting(0, "stop after this many frames (0: all)", min=0)
    fps: float = setting(12.0, "frame rate of an .mp4 made from a folder of frames",
                         positive=True)

    def validate(self) -> None:
        output, self.output = self.output, None  # a folder or a video, not an image
        try:
            super().validate()
        finally:
            self.output = output
        if not self.input or not self.output:
            raise UserError("nst.video needs --input VIDEO|DIR and --output OUT.mp4|DIR")
        if Path(self.output).suffix and Path(self.output).suffix.lower() != ".mp4":
            raise UserError(f"--output {self.output}: write a folder or an .mp4")
        if self.method == "fast" and not self.model:
            raise UserError("--method fast needs --model FILE.keras")
        if self.style_mask or self.scales > 1:
            raise UserError("nst.video takes neither --style-mask nor --scales")


def read_frames(path: str, max_frames: int = 0) -> tuple[list[np.ndarray], float | None]:
    """The frames in [0, 1] RGB and the video's frame rate (None for a folder)."""
    import cv2

    source = Path(path)
    if source.is_dir():
        from nst.feedforward import list_images

        files = list_images(source)[:max_frames or None]
        return [load_image(file) for file in files], None
    if not source.is_file():
        raise UserError(f"--input {path}: no such file or folder")
    capture = cv2.VideoCapture(str(source))
    frames = []
    while capture.isOpened() and (not max_frames or len(frames) < max_frames):
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)
    fps = capture.get(cv2.CAP_PROP_FPS) or None
    capture.release()
    if not frames:
        raise UserError(f"--input {path}: not a readable video (OpenCV decoded no frames)")
    return frames, fps


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """An .mp4 (MPEG-4 part 2, which OpenCV's own encoder writes), atomically."""
    import cv2

    from common.images import to_uint8

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".mp4")
    os.close(handle)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(temporary, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(to_uint8(frame), cv2.COLOR_RGB2BGR))
    writer.release()
    os.replace(temporary, path)


def optical_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """DIS flow w with source(x) ≈ target(x + w(x)), (H, W, 2) in pixels (x, y)."""
    import cv2

    grey = [cv2.cvtColor((np.clip(image, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
            for image in (source, target)]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(grey[0], grey[1], None)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """image(x + flow(x)) by bilinear sampling (edges replicated; the mask drops them)."""
    import cv2

    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32),
                                 np.arange(height, dtype=np.float32))
    return cv2.remap(np.asarray(image, np.float32), grid_x + flow[..., 0], grid_y + flow[..., 1],
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def consistency_mask(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Ruder et al. 2016's c: 1 where the flow t→t−1 (`backward`) can be trusted, else 0.

    Disoccluded where forward and backward flow do not cancel,
    |w + ŵ|² > 0.01·(|w|² + |ŵ|²) + 0.5 with ŵ(x) = forward(x + w(x)) (eq. 8); on motion
    boundaries where |∇w_x|² + |∇w_y|² > 0.01·|w|² + 0.002 (eq. 9); and where x + w(x)
    leaves the frame.
    """
    w = backward
    w_hat = warp(forward, w)
    disoccluded = np.sum((w + w_hat) ** 2, -1) > 0.01 * (np.sum(w ** 2, -1)
                                                          + np.sum(w_hat ** 2, -1)) + 0.5
    gradients = sum(np.square(g) for channel in range(2) for g in np.gradient(w[..., channel]))
    boundary = gradients > 0.01 * np.sum(w ** 2, -1) + 0.002
    height, width = w.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width), np.arange(height))
    x, y = grid_x + w[..., 0], grid_y + w[..., 1]
    outside = (x < 0) | (x > width - 1) | (y < 0) | (y > height - 1)
    return (~(disoccluded | boundary | outside)).astype(np.float32)


def temporal_error(outputs: list[np.ndarray], frames: list[np.ndarray]) -> float:
    """Mean over frame pairs of mean_{c=1} (output_t − warped output_t−1)², the flow and
    mask estimated on the input frames (the same for every method compared)."""
    errors = []
    for previous, current, out_previous, out_current in zip(frames, frames[1:], outputs,
                                                            outputs[1:]):
        backward, forward = optical_flow(current, previous), optical_flow(previous, current)
        mask = consistency_mask(backward, forward)[..., None]
        squared = np.square(out_current - warp(out_previous, backward)) * mask
        errors.append(float(squared.sum() / max(3.0 * mask.sum(), 1.0)))
    return float(np.mean(errors)) if errors else 0.0


class TemporalObjective:
    """An objective plus weight·J_temporal (see the module doc), on caffe images."""

    def __init__(self, base, warped: np.ndarray, mask: np.ndarray, weight: float):
        self.base, self.shape = base, base.shape
        self.warped, self.weight = warped.astype(np.float32), weight
        self.mask = np.broadcast_to(mask[None, ..., None], self.shape).astype(np.float32)

    def loss_and_gradient(self, image):
        import tensorflow as tf

        loss, gradient, terms = self.base.loss_and_gradient(image)
        difference = np.asarray(image, np.float32) - self.warped
        count = float(difference.size)
        temporal = float(np.sum(self.mask * difference ** 2) / count)
        terms = {**terms, "temporal": temporal}
        gradient = gradient + self.weight * 2.0 * self.mask * difference / count
        return float(loss) + self.weight * temporal, tf.constant(gradient), terms


def stylize_frames(settings: VideoSettings, frames: list[np.ndarray],
                   styles: list[np.ndarray]) -> tuple[list[np.ndarray], list[dict]]:
    """Gatys per frame, in order, each from the warped previous result with the temporal loss
    (unless --independent). Returns the outputs in [0, 1] and each frame's last losses."""
    from nst import optimize
    from nst.layers import vgg19_weights
    from nst.model import deprocess, feature_extractor, load_vgg19, preprocess
    from nst.run import build_objective

    style_layers = settings.style_layer_weights()
    extractor = feature_extractor(load_vgg19(vgg19_weights(settings.vgg_weights)),
                                  [settings.content_layer, *style_layers], settings.pooling)
    blend = settings.style_blend or [1.0] * len(styles)
    blend = [weight / sum(blend) for weight in blend]
    if settings.preserve_color:  # luminance-only transfer, the frames' colours put back
        styles = [color.match_luminance(style, frames[0]) for style in styles]
    outputs, reports = [], []
    previous_network_image = None  # the last result before colours are put back
    for index, frame in enumerate(frames):
        content = color.luminance_image(frame) if settings.preserve_color else frame
        objective = build_objective(settings, extractor, (1, *frame.shape[:2], 3), content,
                                    styles, blend, style_layers, None)
        start = preprocess(content)[None]
        if index and not settings.independent:
            backward = optical_flow(frame, frames[index - 1])
            mask = consistency_mask(backward, optical_flow(frames[index - 1], frame))
            warped = preprocess(warp(previous_network_image, backward))[None]
            objective = TemporalObjective(objective, warped, mask, settings.temporal_weight)
            start = warped
        report: dict = {}
        stop = optimize.ConvergenceStop(settings.tol, settings.tol_window)

        def on_iteration(iteration, image, loss, terms, report=report, stop=stop):
            report.update(loss=loss, **terms, iterations=iteration)
            stop(loss)

        iterations = settings.frame_iterations if index and settings.frame_iterations \
            else settings.iterations_at(0)
        if settings.optimizer == "lbfgs":
            image, _ = optimize.lbfgs(objective, start, iterations, on_iteration)
        else:
            image, _ = optimize.adam(objective, start, iterations, settings.lr, on_iteration)
        previous_network_image = np.clip(deprocess(image[0]), 0.0, 1.0)
        output = previous_network_image
        if settings.preserve_color:
            output = color.with_content_chrominance(output, frame)
        outputs.append(output)
        reports.append(report)
        if not settings.quiet:
            print(f"frame {index + 1}/{len(frames)}: loss {report.get('loss', 0):.4g}", flush=True)
    return outputs, reports


def stylize_frames_fast(settings: VideoSettings, frames: list[np.ndarray]) -> list[np.ndarray]:
    """The trained network on every frame (no temporal coupling: it is deterministic)."""
    from nst.fast import load_transform_net
    from nst.feedforward import finish

    model = load_transform_net(settings.model, settings.precision)
    outputs = []
    for frame in frames:
        stylised = np.asarray(model(frame[None], training=False), np.float32)[0]
        outputs.append(finish(stylised, frame, settings.preserve_color, 1.0))
    return outputs


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(VideoSettings, argv, __doc__.split("\n\n")[0],
                              prog="python -m nst.video")
    frames, fps = read_frames(settings.input, settings.max_frames)
    height, width = scaled_shape(*frames[0].shape[:2], settings.size)
    frames = [resize(frame, height, width) for frame in frames]
    _, styles = load_content_and_styles(Settings(content="none", style=settings.style, seed=settings.seed))
    styles = [resize(style, *scaled_shape(*style.shape[:2], round(settings.style_scale
                                                                   * settings.size)))
              for style in styles]
    set_seed(settings.seed, settings.deterministic)
    with locked_run("nst_video", settings) as run_dir:
        stylize_video(settings, run_dir, frames, styles, fps)


def stylize_video(settings: VideoSettings, run_dir: Path, frames: list[np.ndarray],
                  styles: list[np.ndarray], fps: float | None) -> None:
    """Stylise the frames, write the video (or frame folder) and the run's metrics."""
    height, width = frames[0].shape[:2]
    started = time.perf_counter()
    if settings.method == "fast":
        outputs, reports = stylize_frames_fast(settings, frames), []
    else:
        outputs, reports = stylize_frames(settings, frames, styles)
    seconds = time.perf_counter() - started
    output = Path(settings.output)
    if output.suffix:
        write_video(output, outputs, fps or settings.fps)
    for index, image in enumerate(outputs):
        save_image((run_dir / "frames" if output.suffix else output) / f"frame_{index:05d}.png",
                   image)
    metrics = {"frames": len(frames), "height": height, "width": width,
               "temporal_error": temporal_error(outputs, frames),
               "input_temporal_error": temporal_error(frames, frames),
               "seconds": seconds, "seconds_per_frame": seconds / len(frames),
               "method": settings.method, "independent": settings.independent,
               "final_losses": reports}
    write_metrics(run_dir, metrics)
    if not settings.quiet:
        print(f"wrote {output} ({len(frames)} frames, {seconds / len(frames):.1f} s/frame, "
              f"temporal error {metrics['temporal_error']:.5f}); run folder {run_dir}")


def pan_and_zoom(photo: np.ndarray, frames: int, height: int, width: int,
                 pan: float = 0.25, zoom: float = 1.25) -> list[np.ndarray]:
    """A synthetic clip with known motion: a window of the photo sliding right by `pan` of
    its width and shrinking by `zoom` over the clip, each crop resized to (height, width)."""
    import cv2

    first_w = photo.shape[1] * (1.0 - pan)  # the first window, as wide as the pan allows
    first_h = min(photo.shape[0], first_w * height / width)
    first_w = first_h * width / height
    scale = min(1.0, 2.0 * height / first_h)  # shrink first: bilinear sampling then aliases less
    photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    first_w, first_h = first_w * scale, first_h * scale
    result = []
    for index in range(frames):
        t = index / max(frames - 1, 1)
        crop_h = first_h / (1.0 + (zoom - 1.0) * t)
        crop_w = crop_h * width / height
        left = t * pan * photo.shape[1] + (first_w - crop_w) / 2
        top = (photo.shape[0] - crop_h) / 2
        # Output pixel → photo pixel, sub-pixel exact (no rounding of the window).
        matrix = np.array([[crop_w / width, 0, left], [0, crop_h / height, top]], np.float32)
        result.append(cv2.warpAffine(photo, matrix, (width, height),
                                     flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REFLECT))
    return result

if __name__ == "__main__":
    run_cli(main)
