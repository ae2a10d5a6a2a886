"""experiments.budget: the point scores a run keeps (what a study commits instead of its
weights) and the rows gathered at each point."""

from __future__ import annotations

import numpy as np

import experiments.budget
from experiments.budget import KEPT_SAMPLES, PointRows, load_point, point_files, point_key, save_point


def test_a_point_keeps_its_scores_and_first_samples_as_8_bit_images(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (100, 28, 28, 1)).astype(np.float32) / 255
    save_point(tmp_path, 15, {"fid": 3.5, "seed": 2}, images)
    numbers, kept = load_point(tmp_path, 15)
    assert numbers == {"fid": 3.5, "seed": 2}
    assert kept.dtype == np.float32 and kept.shape == (KEPT_SAMPLES, 28, 28, 1)
    np.testing.assert_allclose(kept, images[:KEPT_SAMPLES], atol=1e-6)  # 8-bit data round-trips exactly
    json_file, images_file = point_files(tmp_path, 15)
    with np.load(images_file) as stored:
        assert stored["images"].dtype == np.uint8 and json_file.name == "15.json"
    assert load_point(tmp_path, 30) is None


def test_an_older_point_of_float_samples_still_loads(tmp_path):
    images = np.full((16, 4, 4, 1), 0.25, np.float32)
    _, images_file = point_files(tmp_path, 2.5)
    images_file.parent.mkdir()
    np.savez(images_file, images=images)
    point_files(tmp_path, 2.5)[0].write_text('{"fid": 1.0}')
    np.testing.assert_array_equal(load_point(tmp_path, 2.5)[1], images)


def test_point_rows_gather_seeds_by_point_and_keep_the_first_seeds_images():
    rows = PointRows()
    first, second = np.zeros((3, 2, 2, 1)), np.ones((3, 2, 2, 1))
    rows.add(5, "GAN", {"seed": 0, "fid": 10.0}, first)
    rows.add(5, "GAN", {"seed": 1, "fid": 14.0}, second)
    rows.add(2.5, "GAN", {"seed": 0, "fid": 20.0}, second)
    summary = rows.summarised()
    assert list(summary) == [point_key(5), "2.5"] and point_key(5.0) == "5"
    assert [seed["seed"] for seed in summary["5"]["GAN"]["seeds"]] == [0, 1]
    assert summary["5"]["GAN"]["summary"]["fid"]["mean"] == 12.0
    np.testing.assert_array_equal(rows.images["5"]["GAN"], first)


def test_a_model_keeps_its_colour_in_panels_where_earlier_models_have_no_curve(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(experiments.budget, "save_figure", lambda figure, path, **_: drawn.append(figure))
    rows = PointRows()
    for minutes in (5, 10):
        rows.add(minutes, "GAN", {"fid": 9.0 - minutes / 5}, np.zeros((1, 2, 2, 1)))
        rows.add(minutes, "PixelCNN", {"fid": 30.0 - minutes, "test_nll": 90.0 - minutes}, np.zeros((1, 2, 2, 1)))
    experiments.budget.curves_figure(tmp_path / "curves.png", rows.summarised())
    fid_panel, nll_panel = drawn[0].axes
    colours = {line.get_label(): line.get_color() for line in fid_panel.get_lines()}
    assert colours == {"GAN": "C0", "PixelCNN": "C1"}
    assert [line.get_color() for line in nll_panel.get_lines()] == ["C1"]  # PixelCNN's, not the first colour
