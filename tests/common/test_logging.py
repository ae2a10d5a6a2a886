"""common.tensorboard, common.plots and common.distribute."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from common.plots import image_grid, plot_curves, titled_images
from common.tensorboard import TensorBoardLogger
from tests.helpers import ROOT


def read_events(folder) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    events.Reload()
    return events


def test_logger_writes_every_kind_of_summary(tmp_path):
    logger = TensorBoardLogger(tmp_path)
    logger.scalars({"loss": 2.5, "kl": 0.5}, step=1)
    logger.scalars({"loss": 1.5}, step=2)
    logger.scalars({"loss": 3.0}, step=1, split="eval")
    logger.images("samples", np.random.default_rng(0).random((4, 5, 5, 1)), step=1)
    logger.histogram("weights", np.arange(10.0), step=1)
    logger.config({"lr": 0.001, "arch": "mlp"})
    logger.hparams({"lr": 0.001, "arch": "mlp", "layers": ["a", "b"]}, ["eval/loss"])
    logger.close()

    train = read_events(tmp_path / "tensorboard" / "train")
    tags = set(train.Tags()["tensors"])
    assert {"loss", "kl", "samples", "weights", "config", "_hparams_/experiment",
            "_hparams_/session_start_info"} <= tags
    losses = [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in train.Tensors("loss")]
    assert losses == [(1, 2.5), (2, 1.5)]
    evaluation = read_events(tmp_path / "tensorboard" / "eval")
    assert float(tf.make_ndarray(evaluation.Tensors("loss")[0].tensor_proto)) == 3.0


def test_image_grid_places_images_row_by_row():
    images = np.stack([np.full((2, 3), i / 10, np.float32) for i in range(5)])
    grid = image_grid(images, columns=3, padding=1, pad_value=1.0)
    assert grid.shape == (2 * 3 + 1, 3 * 4 + 1, 1)
    assert np.allclose(grid[1:3, 1:4], 0.0) and np.allclose(grid[1:3, 5:8], 0.1)
    assert np.allclose(grid[4:6, 1:4], 0.3) and np.allclose(grid[4:6, 9:12], 1.0)  # empty cell


def test_plot_curves_writes_a_png(tmp_path):
    path = tmp_path / "plots" / "loss.png"
    plot_curves(path, {"train": ([1, 2, 3], [3.0, 2.0, 1.5]), "test": ([1, 2, 3], [3.2, 2.5, 2.0])},
                title="loss", log_y=True)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 200


def test_a_jpg_path_gets_a_jpeg_and_titled_images_show_each_image(tmp_path):
    plot_curves(tmp_path / "budget.jpg", {"run": ([0, 100, 200], [3.0, 2.0, 1.5])},
                xlim=(0, 150), vertical_lines={"3 min": 180})
    with Image.open(tmp_path / "budget.jpg") as image:
        assert image.format == "JPEG" and image.mode == "RGB"
    red, blue = np.zeros((30, 40, 3)), np.zeros((30, 40, 3))
    red[..., 0], blue[..., 2] = 1.0, 1.0
    titled_images(tmp_path / "one_row.png", {"red": red, "blue": blue})
    titled_images(tmp_path / "two_rows.png", {f"{i}": red for i in range(4)})
    with Image.open(tmp_path / "one_row.png") as one, Image.open(tmp_path / "two_rows.png") as two:
        pixels = np.asarray(one.convert("RGB")).reshape(-1, 3).astype(int)
        assert two.height > 1.5 * one.height
    assert ((pixels[:, 0] > 200) & (pixels[:, 1] < 50) & (pixels[:, 2] < 50)).sum() > 500
    assert ((pixels[:, 2] > 200) & (pixels[:, 0] < 50) & (pixels[:, 1] < 50)).sum() > 500


@pytest.mark.slow
def test_mirrored_strategy_trains_on_two_logical_cpus():
    # Logical devices must be configured before TensorFlow starts: use a fresh process.
    script = textwrap.dedent("""
        from common.distribute import split_cpu, get_strategy
        split_cpu(2)
        import keras, numpy as np
        strategy = get_strategy("mirrored")
        assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
        assert get_strategy("default").num_replicas_in_sync == 1
        with strategy.scope():
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
            model.compile(keras.optimizers.SGD(0.1), "mse")
        x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
        history = model.fit(x, x.sum(1, keepdims=True), batch_size=16, epochs=5, verbose=0)
        assert history.history["loss"][-1] < history.history["loss"][0] / 2
        print("ok", strategy.num_replicas_in_sync)
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0 and "ok 2" in result.stdout, result.stderr[-3000:]


def test_unknown_strategy_is_a_user_error():
    import pytest

    from common.distribute import get_strategy
    from common.errors import UserError

    with pytest.raises(UserError, match="not one of default, mirrored, multiworker"):
        get_strategy("tpu")


@pytest.mark.slow
def test_multiworker_strategy_runs_as_one_worker_without_tf_config():
    script = textwrap.dedent("""
        import os
        os.environ.pop("TF_CONFIG", None)
        from common.distribute import get_strategy
        strategy = get_strategy("multiworker")
        import tensorflow as tf
        assert isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        print("replicas", strategy.num_replicas_in_sync)
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas 1" in result.stdout
