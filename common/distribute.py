"""`--strategy default|mirrored|multiworker` → a `tf.distribute` strategy, and what several
worker processes need to train together.

Build models and optimizers inside `strategy.scope()`; Keras' `fit` then splits each
batch across the replicas. `multiworker` reads the cluster from the `TF_CONFIG`
environment variable (without it, it runs as a single worker). With several workers:

- Keras 3's `fit` reduces every log with `strategy.reduce("MEAN", v, axis=0)`, which fails
  on scalars ("Invalid reduction dimension 0 for input with 0 dimensions",
  tensorflow/tensorflow#72388, keras-team/keras#20585): `reducible_logs` gives the steps'
  logs the shape (1,), so the reduction is the mean over all replicas;
- a stop decided on one worker (a time budget) must stop all of them, else they run
  different collectives and fail: `SyncStop`;
- every worker builds the same input pipeline (same shuffle seed) and keeps its share of
  each global batch: `shard_by_data`;
- only the chief writes the run folder (`is_chief`), and `barrier` keeps a worker from
  leaving while a peer is still in a collective.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from common.config import STRATEGIES
from common.errors import UserError


def split_cpu(count: int) -> None:
    """Expose the CPU as `count` logical devices (must run before TensorFlow starts).

    Lets the mirrored strategy be exercised on a machine without GPUs.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])


def get_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy for a `--strategy` value. `mirrored` uses every GPU, else every logical CPU."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UserError(f"--strategy: {name!r} is not one of {', '.join(STRATEGIES)}")


def worker_count(strategy: tf.distribute.Strategy) -> int:
    """How many worker processes train together (1 without a multi-task TF_CONFIG)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 1
    spec = resolver.cluster_spec().as_dict()
    return max(1, sum(len(spec.get(job, [])) for job in ("chief", "worker")))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run folder: the 'chief' task, else worker 0, else
    the only process."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


_SUMS: dict[int, Any] = {}  # one traced all-reduce per strategy


def _sum_over_replicas(strategy: tf.distribute.Strategy, value: float) -> float:
    """Σ `value` over all replicas of all workers (a collective: every worker must call it)."""
    if id(strategy) not in _SUMS:
        _SUMS[id(strategy)] = tf.function(lambda x: strategy.reduce(
            "SUM", strategy.run(tf.identity, args=(x,)), axis=None))
    return float(_SUMS[id(strategy)](tf.constant(value, tf.float32)))


def any_worker(flag: bool, strategy: tf.distribute.Strategy) -> bool:
    """True on every worker when `flag` is true on any of them (a collective)."""
    if worker_count(strategy) == 1:
        return bool(flag)
    return _sum_over_replicas(strategy, 1.0 if flag else 0.0) > 0


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Return once every worker got here (before exit, so no peer is left in a collective)."""
    if worker_count(strategy) > 1:
        _sum_over_replicas(strategy, 0.0)


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Each worker keeps its share of every global batch of the same pipeline.

    Datasets from arrays or generators have no files to split among workers; DATA sharding
    says so explicitly (FILE sharding can give workers different batch counts and hang).
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def reducible_logs(step: Callable[[Any], dict]) -> Callable[[Any], dict]:
    """`train_step` / `test_step` whose logs have shape (1,), for Keras' multi-worker
    reduction over axis 0 (see the module docstring)."""
    def with_reducible_logs(data: Any) -> dict:
        return {name: tf.reshape(tf.cast(value, tf.float32), [1]) for name, value in step(data).items()}
    return with_reducible_logs


class SyncStop(keras.callbacks.Callback):
    """Last in the callback list: every worker stops when any worker asks to."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.model.stop_training = any_worker(self.model.stop_training, self.model.distribute_strategy)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.model.stop_training = any_worker(self.model.stop_training, self.model.distribute_strategy)
