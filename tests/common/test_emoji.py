"""--dataset emoji: the shared Noto Color Emoji folder, categories as labels, the folder
loader's fixed held-out split, and one `error:` line without DATA_DIR."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from common.data import load_splits
from common.errors import UserError
from tests.helpers import assert_one_line_error

CATEGORIES = ("activities", "animals_nature", "flags", "food_drink", "objects", "people_body",
              "smileys_emotion", "symbols", "travel_places")


@pytest.fixture(scope="module")
def emoji_dir(data_dir) -> Path:
    folder = Path(data_dir) / "emoji"
    if not folder.is_dir():
        pytest.skip("$DATA_DIR/emoji is missing")
    return folder


@pytest.mark.slow
def test_emoji_is_the_labelled_folder_and_any_copy_loads_the_same(emoji_dir, tmp_path):
    splits = load_splits("emoji", str(emoji_dir.parent), image_size=32)
    assert splits.classes == CATEGORIES
    assert len(splits.x_train) + len(splits.x_validation) + len(splits.x_test) == 3781
    assert splits.x_train.shape[1:] == (32, 32, 3) and len(splits.x_test) == 378
    people = CATEGORIES.index("people_body")
    assert 0.5 < np.mean(splits.y_train == people) < 0.7  # imbalanced: 2,261 of 3,781
    assert splits.x_train[..., :3].mean() > 0.5  # composited on white, not on the hidden colours
    copy = tmp_path / "my_icons"
    shutil.copytree(emoji_dir, copy)
    again = load_splits(f"folder:{copy}", image_size=32)
    np.testing.assert_array_equal(again.x_test, splits.x_test)
    np.testing.assert_array_equal(again.y_train, splits.y_train)


def test_emoji_without_data_dir_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("DATA_DIR", raising=False)
    with pytest.raises(UserError, match="--dataset emoji: DATA_DIR is unset"):
        load_splits("emoji")
    with pytest.raises(UserError, match=f"{tmp_path} holds no emoji/ folder"):
        load_splits("emoji", str(tmp_path))


@pytest.mark.slow
def test_a_trainer_on_emoji_without_data_dir_says_so_in_one_line(tmp_path, cli):
    result = cli("gan.train", "--dataset", "emoji", "--run-dir", str(tmp_path / "run"), env={"DATA_DIR": ""})
    assert_one_line_error(result, "DATA_DIR is unset")
    assert not (tmp_path / "run").exists()
