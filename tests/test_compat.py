"""The private TensorFlow, Keras and Keras Tuner internals in zoo.compat, each still in place.

Every test here fails when its internal's fallback is taken, so an upgrade that moves one turns
red here instead of slowing training or leaking memory quietly. The graph tests check that the
fused kernels, not Keras's separate ops, do the work.
"""

from __future__ import annotations

import json

import keras
import keras_tuner as kt
import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo import compat, files
from zoo.train.callbacks import Backup


def _op_types(function: tf.types.experimental.ConcreteFunction) -> set[str]:
    """The op types of a traced function, with those of its nested functions (conds, grads)."""
    library = function.graph.as_graph_def().library.function
    nested = {node.op for f in library for node in f.node_def}
    return {op.type for op in function.graph.get_operations()} | nested


def test_onednn_state_is_reported():
    assert isinstance(compat.onednn_enabled(), bool)


def test_custom_gradients_are_registered_and_forgotten():
    registry = compat.custom_gradient_registry()
    assert "MatMul" in registry

    @tf.custom_gradient
    def identity(x):
        return x, lambda dy: dy

    before = set(registry)
    with compat.forgetting_custom_gradients():
        tf.function(identity).get_concrete_function(tf.TensorSpec([], tf.float32))
        added = set(registry) - before
    assert any(name.startswith("CustomGradient-") for name in added)  # the leak: one per trace
    assert not added & set(registry)  # and the search's cleanup finds it


def test_grid_oracle_state_round_trips(tmp_path):
    def oracle() -> kt.Oracle:
        hp = kt.HyperParameters()
        hp.Choice("a", [1, 2, 3])
        hp.Choice("b", [4, 5])
        return kt.GridSearch(
            lambda hp: None, hyperparameters=hp, objective="loss", directory=tmp_path,
            project_name="p", overwrite=True,
        ).oracle  # fmt: skip

    searched = oracle()
    ids = []
    for _ in range(3):
        trial = searched.create_trial("t")
        searched.end_trial(trial)
        ids.append(trial.trial_id)
    state = compat.grid_oracle_state(searched)
    assert state == {"grid_order": ids, "grid_next": [ids[-1]]}
    fresh = oracle()
    assert compat.grid_oracle_state(fresh) == {"grid_order": [], "grid_next": []}
    assert compat.restore_grid_oracle_state(fresh, state)
    assert compat.grid_oracle_state(fresh) == state
    assert not compat.restore_grid_oracle_state(fresh, {})  # a state saved without the grid


@pytest.mark.parametrize(
    "name, settings, kernel",
    [("SGD", {}, "ResourceApplyGradientDescent"),
     ("SGD", {"momentum": 0.9}, "ResourceApplyKerasMomentum"),
     ("SGD", {"momentum": 0.9, "nesterov": True}, "ResourceApplyKerasMomentum"),
     ("Adam", {}, "ResourceApplyAdam"), ("AdamW", {"weight_decay": 0.1}, "ResourceApplyAdam")],
)  # fmt: skip
def test_fused_optimizers_run_their_kernel(name, settings, kernel):
    optimizer = getattr(zoo.optimizers, name)(learning_rate=0.1, **settings)
    variable = keras.Variable(np.ones((3, 2), "float32"))
    optimizer.build([variable])
    slots = {"SGD": ["momentum"] if settings else [], "Adam": ["momentum", "velocity"]}
    for slot in slots.get(name, slots["Adam"]):
        found = compat.optimizer_slot(optimizer, slot, variable)
        assert found is not None and tuple(found.shape) == (3, 2)

    apply = tf.function(lambda g: optimizer.apply_gradients([(g, variable)]))
    assert kernel in _op_types(apply.get_concrete_function(tf.TensorSpec((3, 2), tf.float32)))


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("shape", [(4, 3, 3, 2), (4, 2)])
def test_fused_batch_norm_runs_its_kernels(shape, precision):
    assert compat.fused_batch_norm() is not None
    layer = zoo.layers.BatchNormalization(dtype=precision)
    layer.build(shape)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
        return tape.gradient(y, [x, layer.gamma, layer.beta]), layer(x, training=False)

    ops = _op_types(step.get_concrete_function(tf.TensorSpec(shape, tf.float32)))
    assert {"FusedBatchNormV3", "FusedBatchNormGradV3"} <= ops


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_training_step_runs_fused_kernels(precision):
    """A whole compiled training step under a mixed policy: fused batch norm forward and
    backward, and no batch norm built from Keras's separate ops (its float32 upcast)."""
    from zoo.recipes import RunConfig
    from zoo.train import compile_model

    keras.mixed_precision.set_global_policy(precision)
    try:
        model = zoo.build("vgg_a", input_shape=(16, 16, 3), num_classes=10, bn=True, width=0.125)
        compile_model(model, RunConfig("vgg_a", optimizer="momentum", precision=precision), 1)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    x, y = np.zeros((4, 16, 16, 3), "float32"), np.zeros((4,), "int32")
    model.train_on_batch(x, y)  # builds the optimizer
    ops = _op_types(tf.function(model.train_step).get_concrete_function((x, y)))
    assert {"FusedBatchNormV3", "FusedBatchNormGradV3"} <= ops
    assert "Rsqrt" not in ops  # Keras's unfused batch norm normalizes with rsqrt
    assert "ResourceApplyKerasMomentum" in ops  # the fused update, on the float32 weights


def test_callback_counters_exist():
    assert compat.missing_callback_counters() == []
    assert set(compat.CALLBACK_COUNTERS) <= set(Backup.FIELDS)


def test_backup_skips_a_renamed_counter(tmp_path):
    stopping = keras.callbacks.EarlyStopping()
    stopping.on_train_begin()
    del stopping.best_epoch  # as if Keras had renamed it
    backup = Backup(tmp_path, [stopping], {"callbacks": {"EarlyStopping": {"best_epoch": 3}}})
    with pytest.warns(UserWarning, match="EarlyStopping.best_epoch"):
        backup.on_train_begin()
    assert not hasattr(stopping, "best_epoch")


def test_keras_reports_each_calls_last_step_and_running_mean():
    x = np.linspace(-1, 1, 27, dtype="float32").reshape(9, 3)
    y = np.arange(9, dtype="float32")[:, None]
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(
        optimizer=keras.optimizers.SGD(0.0), loss="mse", steps_per_execution=2, jit_compile=False
    )  # a rate of 0 keeps each step's loss computable afterwards
    reported = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: reported.append((batch, float(logs["loss"])))
    )
    model.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0, callbacks=[record])

    # 5 steps of 2, 2, 2, 2, 1 examples; the short last call still says 5
    assert [batch for batch, _ in reported] == [1, 3, 5]
    first, covered = 0, []
    for batch, _ in reported:
        covered.append(list(compat.call_steps(batch, first, 5)))
        first = covered[-1][-1] + 1
    assert covered == [[0, 1], [2, 3], [4]]
    errors = (keras.ops.convert_to_numpy(model(x))[:, 0] - y[:, 0]) ** 2
    means = [errors[: 2 * (batch + 1)].mean() for batch, _ in reported]  # weighted by batch size
    np.testing.assert_allclose([loss for _, loss in reported], means, rtol=1e-5)


def test_keras_tuner_project_files_are_written_atomically(tmp_path, monkeypatch):
    assert compat.keras_tuner_writes_atomically()
    from keras_tuner.src import utils
    from keras_tuner.src.engine import stateful

    assert stateful.utils.save_json is utils.save_json  # Keras Tuner's own saves go through it
    path = tmp_path / "oracle.json"
    utils.save_json(str(path), {"trials": 1})

    def killed(tmp, target):
        raise KeyboardInterrupt

    monkeypatch.setattr(files, "_replace", killed)
    with pytest.raises(KeyboardInterrupt):
        utils.save_json(str(path), {"trials": 2})
    assert json.loads(path.read_text()) == {"trials": 1}  # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["oracle.json"]  # no temporary left


def test_the_profilers_trace_format_is_readable():
    space = compat.xplane_space()
    assert space is not None and hasattr(space, "FromString")


def test_the_slurm_resolver_and_its_task_parser_are_found():
    slurm = compat.slurm_resolver()
    assert slurm is not None
    assert slurm.expand_tasks_per_node("2(x3),1") == [2, 2, 2, 1]


def test_a_moved_slurm_resolver_is_refused_with_a_way_out(monkeypatch):
    from zoo.train import distribute

    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "2")
    monkeypatch.setattr(compat, "slurm_resolver", lambda: None)
    with pytest.raises(RuntimeError, match="TF_CONFIG"):
        distribute.slurm_cluster()
