"""`--strategy default|mirrored|multiworker` → a `tf.distribute` strategy.

Build models and optimizers inside `strategy.scope()`; Keras' `fit` then splits each
batch across the replicas. `multiworker` reads the cluster from the `TF_CONFIG`
environment variable (without it, it runs as a single worker).
"""

from __future__ import annotations

import tensorflow as tf

from common.errors import UserError

STRATEGIES = ("default", "mirrored", "multiworker")


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


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run folder: always, except on the non-chief workers
    of a multi-worker cluster (worker 0 is the chief when TF_CONFIG names no chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type == "worker" and task_id == 0
                                    and "chief" not in resolver.cluster_spec().as_dict())
