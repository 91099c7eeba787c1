"""Distribution: the tf.distribute strategy a run trains under, and the cluster of a
multi-worker run (TF_CONFIG, or a Slurm job step of several tasks)."""

from __future__ import annotations

import functools
import os

import tensorflow as tf

from zoo import compat


def strategy(name: str) -> tf.distribute.Strategy:
    """`default` (one device), `mirrored` (all local GPUs) or `multiworker` (see `multiworker`)."""
    if name == "mirrored":
        # All local GPUs; without any, all logical CPUs (how the CPU-only tests exercise it).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multiworker":
        return multiworker()
    return tf.distribute.get_strategy()


def slurm_cluster() -> tf.distribute.cluster_resolver.ClusterResolver | None:
    """The cluster of a Slurm job step of several tasks, one worker per task; else None.

    Slurm's resolver gives each task a port from `ZOO_SLURM_PORT` (default 8888) up, on its
    node. It hands out ports in step with GPU shares; the count below gives one per task and
    leaves devices alone, so each worker uses the GPUs its task sees (all of its node's with
    one task per node).
    """
    if int(os.environ.get("SLURM_STEP_NUM_TASKS", "1")) < 2:
        return None
    slurm = compat.slurm_resolver()
    if slurm is None:
        raise RuntimeError(
            "This TensorFlow moved its Slurm cluster resolver: set TF_CONFIG for each worker "
            "instead of running under a Slurm job step of several tasks."
        )

    tasks = max(slurm.expand_tasks_per_node(os.environ["SLURM_STEP_TASKS_PER_NODE"]))
    # cluster_spec() is what sets the resolver's task_type and task_id, so it is called first.
    found = slurm.SlurmClusterResolver(
        port_base=int(os.environ.get("ZOO_SLURM_PORT", "8888")),
        gpus_per_node=tasks,
        gpus_per_task=1,
        auto_set_gpu=False,
    )
    # The strategy takes its local devices from the resolver, which would claim one GPU per
    # task; these are the GPUs this task sees (none on a CPU node).
    gpus = len(tf.config.list_physical_devices("GPU"))
    spec = found.cluster_spec()
    return tf.distribute.cluster_resolver.SimpleClusterResolver(
        spec,
        task_type=found.task_type,
        task_id=found.task_id,
        num_accelerators={"GPU": gpus} if gpus else {},
        rpc_layer="grpc",
    )


@functools.cache
def multiworker() -> tf.distribute.Strategy:
    """One per process: TensorFlow allows one, made before any other TensorFlow work, so
    `train` makes it before it reads the data."""
    try:
        resolver = slurm_cluster() if "TF_CONFIG" not in os.environ else None
        return compat.multiworker_strategy(cluster_resolver=resolver)
    except RuntimeError as err:  # "Collective ops must be configured at program startup"
        raise RuntimeError(
            f"--strategy multiworker must be a process's first TensorFlow work ({err}): "
            "start one `python -m zoo.train` per worker, with TF_CONFIG set."
        ) from None
