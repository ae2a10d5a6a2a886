"""common.ema: the decay's warm-up and the average's arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from common.ema import ema_decay_at, update_ema


def test_ema_decay_and_update_arithmetic():
    assert float(ema_decay_at(0.999, 0)) == pytest.approx(0.1)
    assert float(ema_decay_at(0.999, 90)) == pytest.approx(91 / 100)
    assert float(ema_decay_at(0.999, 10**6)) == pytest.approx(0.999)
    average, current = tf.Variable([1.0, -2.0]), tf.Variable([3.0, 2.0])
    update_ema([average], [current], 0.9)
    np.testing.assert_allclose(average.numpy(), [0.9 * 1 + 0.1 * 3, 0.9 * -2 + 0.1 * 2], rtol=1e-6)
    for _ in range(9):  # n updates towards a constant: θ + dⁿ (θ₀ − θ)
        update_ema([average], [current], 0.9)
    np.testing.assert_allclose(average.numpy(), [3 + 0.9 ** 10 * (1 - 3), 2 + 0.9 ** 10 * (-2 - 2)],
                               rtol=1e-5)
