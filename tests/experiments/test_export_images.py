"""experiments.scripts.export_images: a dataset written as PNGs reads back through `folder:` unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from common import colour_datasets, data
from common.errors import UserError
from experiments.scripts import export_images


def test_shapes_round_trip_through_a_folder(tmp_path):
    out = tmp_path / "shapes"
    export_images.main(["--dataset", "shapes", "--image-size", "8", "--splits", "test", "--out", str(out)])
    assert sorted(p.name for p in out.iterdir()) == sorted(colour_datasets.SHAPE_NAMES)
    original = data.load_splits("shapes", image_size=8)
    files, labels, classes, ignored = colour_datasets.folder_files(out)
    assert ignored == 0 and len(files) == len(original.x_test)
    images, labels, skipped = colour_datasets.decode_folder(files, labels, 8, 3)
    assert skipped == 0
    for label, name in enumerate(classes):  # files sort by index within a class folder
        expected = original.x_test[original.y_test == colour_datasets.SHAPE_NAMES.index(name)]
        np.testing.assert_array_equal(images[labels == label], expected)


def test_an_existing_folder_is_refused_and_kept(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="already exists"):
        export_images.main(["--dataset", "shapes", "--out", str(tmp_path)])
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_a_failed_export_leaves_no_folder(tmp_path, monkeypatch):
    def fail_after_one(folder, split, images, labels, classes):
        export_images.Image.fromarray(np.zeros((2, 2), np.uint8)).save(folder / "one.png")
        raise OSError("disk full")

    monkeypatch.setattr(export_images, "export_split", fail_after_one)
    with pytest.raises(OSError, match="disk full"):
        export_images.main(["--dataset", "shapes", "--image-size", "8", "--out", str(tmp_path / "out")])
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its temporary copy
