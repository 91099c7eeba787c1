"""Every use of a private TensorFlow, Keras or Keras Tuner API, in one place.

The zoo leans on a few internals that no public API offers. Each is wrapped here with a
fallback that keeps the zoo working when an upgrade moves it, and each has a test in
tests/test_compat.py that fails when its fallback is taken, so an upgrade that breaks one
shows up as a red test rather than a silent slowdown or leak.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any


def onednn_enabled() -> bool | None:
    """Whether TensorFlow runs its oneDNN CPU kernels, as TensorFlow itself reports it.

    Reads `tensorflow.python.util._pywrap_util_port.IsMklEnabled`, the only way to learn
    whether the zoo's import switched the fast CPU kernels on. Imports TensorFlow. Fallback:
    None, for "unknown".
    """
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    check = getattr(_pywrap_util_port, "IsMklEnabled", None)
    return bool(check()) if check else None


def custom_gradient_registry() -> dict | None:
    """TensorFlow's global table of registered gradient functions, or None if it moved.

    Reads `tensorflow.python.framework.ops._gradient_registry._registry`. Graph-mode
    `tf.custom_gradient` adds an entry per trace and never removes it, and each entry pins its
    traced graph; in-process searches delete a finished trial's entries to stop that leak.
    Fallback: None, and nothing is deleted (the leak returns, the results do not change).
    """
    from tensorflow.python.framework import ops

    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else None


def grid_oracle_state(oracle: Any) -> dict[str, list]:
    """A Keras Tuner grid oracle's place in its grid, as plain lists for its saved state.

    Reads `GridSearchOracle._ordered_ids` (a linked list of trial ids in grid order, walked
    through its `_next_index` and `_memory`) and `_populate_next` (the trials whose successors
    are due). Keras Tuner 1.4.8 saves neither, so a reloaded grid search fails on its next
    trial. Fallback: `{}` when the attributes are gone, and the oracle resumes as stock.
    """
    links = getattr(oracle, "_ordered_ids", None)
    following = getattr(links, "_next_index", None)
    memory = getattr(links, "_memory", None)
    pending = getattr(oracle, "_populate_next", None)
    if following is None or memory is None or pending is None:
        return {}
    order, index = [], following.get(None)  # the list's head hangs off None
    while index is not None:
        order.append(memory[index])
        index = following.get(index)
    return {"grid_order": order, "grid_next": list(pending)}


def restore_grid_oracle_state(oracle: Any, state: dict) -> bool:
    """Puts back what `grid_oracle_state` saved; returns whether it could.

    Writes `GridSearchOracle._ordered_ids` (rebuilt with its own `insert`) and
    `_populate_next`. Fallback: False, leaving the oracle as stock, when the state holds no
    grid (saved by a version without it) or the oracle lacks the attributes.
    """
    links = getattr(oracle, "_ordered_ids", None)
    if "grid_order" not in state or not hasattr(links, "insert"):
        return False
    oracle._ordered_ids = type(links)()
    for trial_id in state["grid_order"]:
        oracle._ordered_ids.insert(trial_id)
    oracle._populate_next = list(state.get("grid_next", []))
    return True


# The slot lists of Keras's optimizers, by slot: SGD keeps `momentums`, Adam and AdamW
# `_momentums` and `_velocities`.
_SLOTS = {"momentum": ("momentums", "_momentums"), "velocity": ("_velocities",)}


def optimizer_slot(optimizer: Any, slot: str, variable: Any) -> Any | None:
    """The optimizer's `slot` variable ("momentum" or "velocity") for `variable`, or None.

    Reads Keras's undocumented slot lists (`SGD.momentums`, `Adam._momentums`,
    `Adam._velocities`) and `BaseOptimizer._get_variable_index`: TensorFlow's fused update
    kernels take the slots as resource handles. Fallback: None (slot or index missing, or
    a slot without a resource handle), and the optimizer takes Keras's own update.
    """
    find = getattr(optimizer, "_get_variable_index", None)
    slots = next((getattr(optimizer, a) for a in _SLOTS[slot] if hasattr(optimizer, a)), None)
    if find is None or not slots:
        return None
    try:
        found = slots[find(variable)]
    except (KeyError, IndexError):
        return None
    return found if hasattr(found, "handle") else None


def fused_batch_norm() -> Callable | None:
    """TensorFlow's fused batch-norm op, or None if it is gone.

    Reads `tf.compat.v1.nn.fused_batch_norm`, deprecated but the only Python route to the
    `FusedBatchNormV3` kernel (TF 2's `tf.nn.batch_normalization` is separate ops). Fallback:
    None, and `zoo.layers.BatchNormalization` computes as Keras's layer does (slower).
    """
    import tensorflow as tf

    return getattr(getattr(getattr(tf.compat, "v1", None), "nn", None), "fused_batch_norm", None)


# The state of Keras's callbacks that a resumed run needs, kept in undocumented attributes.
CALLBACK_COUNTERS: dict[str, tuple[str, ...]] = {
    "EarlyStopping": ("wait", "best", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
}


def missing_callback_counters() -> list[str]:
    """The attributes of `CALLBACK_COUNTERS` that fresh, started Keras callbacks lack.

    Reads the undocumented counters of Keras's EarlyStopping and ReduceLROnPlateau, which
    `Backup` saves so a resumed run stops and decays at the same epochs as an uninterrupted
    one. Fallback (in `Backup`): a missing attribute is
    skipped with a warning, and a resumed run restarts that counter.
    """
    import keras

    started = [
        keras.callbacks.EarlyStopping(),
        keras.callbacks.ReduceLROnPlateau(),
    ]
    for callback in started:
        callback.on_train_begin()
    return [
        f"{type(c).__name__}.{name}"
        for c in started
        for name in CALLBACK_COUNTERS[type(c).__name__]
        if not hasattr(c, name)
    ]


def call_steps(batch: int, first: int, steps: int) -> range:
    """The steps of the epoch (0-based) that one `on_train_batch_end(batch, logs)` reports.

    Keras documents neither which step `batch` names when `steps_per_execution` runs several
    steps per call, nor what `logs["loss"]` holds. Keras 3 on TensorFlow passes
    `first + steps_per_execution - 1` (its EpochIterator's `end_step`), past the epoch's
    `steps` in a short last call, and the epoch's running mean loss weighted by batch size. So
    a call covers `first` (one after the previous call's last step) to `batch`, cut at the
    epoch's end. Fallback: a `batch` before `first`, which Keras never passes, counts as one step.
    """
    return range(first, max(min(batch + 1, steps), first + 1))


def keras_tuner_writes_atomically() -> bool:
    """Makes Keras Tuner write its project files (oracle.json, trial.json, tuner's state)
    atomically; returns False when its writer moved and the stock one stays.

    Keras Tuner 1.4.8 writes every one of them through `keras_tuner.src.utils.save_json`,
    which truncates the file first: a kill during the write leaves an empty oracle.json, and
    the search can no longer be reloaded. The replacement writes through `zoo.files`.
    """
    try:
        from keras_tuner.src import utils
    except ImportError:
        return False
    stock = getattr(utils, "save_json", None)
    if stock is None:
        return False
    if getattr(stock, "atomic", False):
        return True

    def save_json(path: str, obj: Any) -> str:
        import json

        from zoo import files

        text = json.dumps(obj)
        files.write_text(path, text)
        return text

    save_json.atomic = True  # type: ignore[attr-defined]
    utils.save_json = save_json
    return True


def xplane_space() -> type | None:
    """The protobuf class of a profiler trace (`*.xplane.pb`), or None if it moved.

    Reads `tensorflow.tsl.profiler.protobuf.xplane_pb2.XSpace`: TensorFlow's profiler writes
    its traces in this format and offers no public reader but TensorBoard's plugin.
    `zoo.bench --profile` ranks op types from it. Fallback: None, and the profile is refused
    with a message naming the trace, which TensorBoard's profile plugin still opens.
    """
    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError:
        return None
    return getattr(xplane_pb2, "XSpace", None)


def slurm_resolver() -> Any | None:
    """TensorFlow's Slurm cluster resolver module, or None if it moved.

    Reads `tensorflow.python.distribute.cluster_resolver.slurm_cluster_resolver`, for its
    `SlurmClusterResolver` and `expand_tasks_per_node`: the public namespace exports the class
    but not the parser of Slurm's task lists. Fallback: None, and a Slurm job of several tasks
    is refused with a message asking for TF_CONFIG instead.
    """
    try:
        from tensorflow.python.distribute.cluster_resolver import slurm_cluster_resolver
    except ImportError:
        return None
    needed = ("SlurmClusterResolver", "expand_tasks_per_node")
    return (
        slurm_cluster_resolver if all(hasattr(slurm_cluster_resolver, n) for n in needed) else None
    )


def multiworker_strategy(**kwargs: Any) -> Any:
    """TensorFlow's multi-worker strategy, with the `reduce` that Keras 3's `fit` expects.

    Keras reduces a whole `(images, labels)` batch at once to build the model, which the
    strategy refuses across workers ("Attempt to convert a value (PerReplica...)",
    keras-team/keras#20585), and reduces scalar logs along an axis 0 they do not have.
    Reducing each tensor on its own, over replicas only where it is a scalar, is what both
    mean. The override calls the strategy's own `reduce` and `experimental_local_results`,
    both public; what is private is Keras's reliance on them. Fallback: none needed while
    `reduce` keeps its signature; tests/test_multiworker.py trains through it.
    """
    import tensorflow as tf

    class _MultiWorker(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op: Any, value: Any, axis: int | None) -> Any:  # noqa: D102
            def one(v: Any) -> tf.Tensor:
                rank = self.experimental_local_results(v)[0].shape.rank
                return super(_MultiWorker, self).reduce(reduce_op, v, axis if rank else None)

            return tf.nest.map_structure(one, value)

    return _MultiWorker(**kwargs)


@contextlib.contextmanager
def forgetting_custom_gradients() -> Iterator[None]:
    """Drops the gradient registrations made inside the block once it is over.

    TensorFlow's graph-mode `tf.custom_gradient` (tf.distribute's all_reduce uses it in every
    Keras train step) registers each traced gradient in a global registry and never removes
    it, and the registration pins the whole traced graph: about 10 MB per trial, the growth
    that makes long in-process searches run out of memory. A finished trial's graphs are never
    traced again, so its registrations can go. If the registry moved
    (`custom_gradient_registry` is None), this does nothing.
    """
    registry = custom_gradient_registry()
    before = set(registry) if registry is not None else set()
    try:
        yield
    finally:
        if registry is not None:
            for name in set(registry) - before:
                if name.startswith("CustomGradient-"):
                    del registry[name]
