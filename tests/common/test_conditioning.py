"""Class-ordered sample grids: every column holds one class."""

from __future__ import annotations

import numpy as np
import pytest

from common.conditioning import class_columns, cycled_labels


@pytest.mark.parametrize("n_classes", range(2, 21))
def test_each_column_of_cycled_labels_is_one_class(n_classes):
    columns = class_columns(64, n_classes)
    labels = cycled_labels(64, n_classes)
    for column in range(columns):
        assert len(set(labels[column::columns])) == 1
    assert columns <= max(16, n_classes)  # near √64 = 8, never a single tall column


def test_unlabelled_grids_are_square():
    assert [class_columns(n, 0) for n in (64, 100, 10)] == [8, 10, 4]
    assert class_columns(64, 1) == 8
    assert class_columns(64, 3) == 9 and class_columns(64, 10) == 10
    assert np.ceil(64 / class_columns(64, 3)) == 8
