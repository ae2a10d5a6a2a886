"""nst.video: flow warping, the occlusion mask, the temporal loss, the CLI end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from common.images import load_image, save_image
from tests.helpers import assert_one_line_error


def test_warp_by_a_constant_flow_shifts_the_image():
    from nst.video import warp

    image = np.random.default_rng(0).random((12, 16, 3), dtype=np.float32)
    flow = np.zeros((12, 16, 2), np.float32)
    flow[..., 0] = 3.0  # sample 3 px to the right
    np.testing.assert_allclose(warp(image, flow)[:, :-3], image[:, 3:], atol=1e-6)


def test_consistency_mask_keeps_consistent_motion_and_drops_what_leaves_the_frame():
    from nst.video import consistency_mask

    backward = np.zeros((10, 20, 2), np.float32)
    backward[..., 0] = 4.0  # t−1 is 4 px to the right …
    forward = -backward     # … and forward flow undoes it
    mask = consistency_mask(backward, forward)
    assert mask[:, :15].all() and not mask[:, 16:].any()  # x + 4 > 19 leaves the frame
    assert not consistency_mask(backward, backward)[:, :10].any()  # flows that do not cancel


class ZeroObjective:
    """A per-frame objective that is 0 everywhere, so only the temporal term is left."""

    shape = (1, 2, 3, 3)

    def loss_and_gradient(self, image):
        import tensorflow as tf

        return tf.constant(0.0), tf.zeros(self.shape), {}


def test_temporal_objective_adds_the_masked_squared_difference_and_its_gradient():
    from nst.video import TemporalObjective

    rng = np.random.default_rng(1)
    image, warped = rng.normal(size=(2, *ZeroObjective.shape)).astype(np.float32)
    mask = np.array([[1, 0, 1], [1, 1, 0]], np.float32)
    loss, gradient, terms = TemporalObjective(ZeroObjective(), warped, mask, 5.0).loss_and_gradient(image)
    full = mask[None, ..., None]
    np.testing.assert_allclose(terms["temporal"], np.sum(full * (image - warped) ** 2) / 18,
                               rtol=1e-5)
    np.testing.assert_allclose(loss, 5.0 * terms["temporal"], rtol=1e-6)
    np.testing.assert_allclose(gradient, 5.0 * 2 * full * (image - warped) / 18, rtol=1e-5)


def test_pan_and_zoom_moves_the_picture_and_temporal_error_of_a_still_clip_is_zero():
    from nst.video import optical_flow, pan_and_zoom, temporal_error

    y, x = np.mgrid[0:120, 0:200] / 40.0
    photo = np.stack([np.sin(3 * x) * 0.5 + 0.5, np.cos(2 * y) * 0.5 + 0.5,
                      np.sin(x + y) * 0.5 + 0.5], -1).astype(np.float32)
    frames = pan_and_zoom(photo, 5, 24, 32, zoom=1.0)
    assert len(frames) == 5 and frames[0].shape == (24, 32, 3)
    assert optical_flow(frames[1], frames[0])[6:18, 8:24, 0].mean() > 0.5  # content moves left
    assert temporal_error([frames[0]] * 3, [frames[0]] * 3) == 0.0


def test_unreadable_video_is_one_line(cli, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_text("not a video\n")
    result = cli("nst.video", "--input", str(clip), "--output", str(tmp_path / "out"),
                 "--run-dir", str(tmp_path / "run"))
    assert_one_line_error(result, "clip.mp4", "not a readable video")
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_video_end_to_end_is_steadier_than_independent_frames(cli, tmp_path, vgg19_weights,
                                                             asset_images):
    from nst.video import pan_and_zoom

    frames = tmp_path / "frames"
    for index, frame in enumerate(pan_and_zoom(load_image(asset_images / "tubingen.jpg"),
                                               3, 36, 48)):
        save_image(frames / f"{index:03d}.png", frame)
    errors = {}
    for name, extra in (("temporal", []), ("independent", ["--independent"])):
        result = cli("nst.video", "--input", str(frames), "--style",
                     str(asset_images / "starry_night.jpg"), "--size", "48", "--iterations",
                     "10", "--output", str(tmp_path / f"{name}.mp4"), "--run-dir",
                     str(tmp_path / name), "--quiet", *extra,
                     env={"VGG19_WEIGHTS": vgg19_weights})
        assert result.returncode == 0, result.stderr[-3000:]
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        assert metrics["frames"] == 3 and (tmp_path / f"{name}.mp4").stat().st_size > 0
        assert len(list((tmp_path / name / "frames").glob("frame_*.png"))) == 3
        errors[name] = metrics["temporal_error"]
    assert errors["temporal"] < errors["independent"], errors
