"""The GPU path: precisions, XLA, cuDNN's batch norm, one-GPU mirrored training, landscapes.

Every test here is marked `gpu` and skips on a machine without one (conftest). The training
tests check that the model's weights lived on the GPU, not only that the run finished: a
silent fall-back to the CPU would pass every functional assertion.
"""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from reports.__main__ import main as reports_main
from zoo import layers as zlayers
from zoo.recipes import recipe
from zoo.train import train

pytestmark = pytest.mark.gpu


def _tiny_cnn(data_dir, **overrides):
    settings = dict(
        data_dir=str(data_dir), subset=20, test_subset=10, epochs=2, batch_size=64,
        model_kwargs={"width": 0.25, "bn": True},
    )  # fmt: skip
    return recipe("vgg_a", dataset="cifar10", **{**settings, **overrides})


def _on_gpu(model: keras.Model) -> bool:
    return all("GPU" in v.value.device for v in model.trainable_weights)


def _finished(run) -> dict:
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert math.isfinite(metrics["test"]["loss"])
    history = pd.read_csv(run.path / "history.csv")
    assert len(history) == 2 and np.isfinite(history["loss"]).all()
    return metrics


@pytest.mark.parametrize("precision", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_training_runs_on_the_gpu(data_dir, tmp_path, precision):
    run = train(_tiny_cnn(data_dir, precision=precision), tmp_path, verbose=0)
    _finished(run)
    model = keras.models.load_model(run.path / "best.keras")
    assert _on_gpu(model)
    if precision != "float32":
        assert model.dtype_policy.name == precision
        assert model.layers[-1].compute_dtype == "float32"  # logits stay float32 for the loss


def test_xla_compiled_training(data_dir, tmp_path):
    plain = _finished(train(_tiny_cnn(data_dir), tmp_path / "plain", verbose=0))
    run = train(_tiny_cnn(data_dir, jit=True), tmp_path / "jit", verbose=0)
    jit = _finished(run)
    assert _on_gpu(keras.models.load_model(run.path / "best.keras"))
    # Same seed and data: XLA reorders float sums, so the two agree closely, not exactly.
    assert abs(plain["test"]["loss"] - jit["test"]["loss"]) < 0.05


def test_fused_batch_norm_runs_cudnn_and_matches_keras():
    x = tf.random.stateless_normal((32, 16, 16, 8), seed=(1, 2)) * 3.0 + 1.0
    weights = tf.random.stateless_normal(x.shape, seed=(3, 4))  # a loss with real gradients
    ours, theirs = zlayers.BatchNormalization(), keras.layers.BatchNormalization()
    ours.build(x.shape)
    theirs.build(x.shape)

    def step(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * weights)
        return y, tape.gradient(loss, [x, layer.gamma, layer.beta])

    with tf.device("/GPU:0"):
        (y1, g1), (y2, g2) = step(ours), step(theirs)
        np.testing.assert_allclose(y1.numpy(), y2.numpy(), atol=1e-4)
        for a, b in zip(g1, g2, strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-3)
        for stat in ("moving_mean", "moving_variance"):
            np.testing.assert_allclose(
                getattr(ours, stat).numpy(), getattr(theirs, stat).numpy(), atol=1e-5
            )
        assert "GPU" in y1.device  # the layer's own output, computed on the GPU
    graph = tf.function(lambda t: step(ours)).get_concrete_function(
        tf.TensorSpec(x.shape, tf.float32)
    )
    # On a GPU, TensorFlow's FusedBatchNormV3 kernels are cuDNN's.
    assert "FusedBatchNormV3" in {op.type for op in graph.graph.get_operations()}


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_fused_batch_norm_in_half_precision_runs_on_the_gpu(precision):
    """cuDNN's batch norm takes the half-precision input with float32 statistics: the fused
    op and its gradient run on the GPU, not on the CPU by soft placement."""
    x = tf.random.stateless_normal((32, 16, 16, 8), seed=(1, 2)) * 3.0 + 1.0
    ours = zlayers.BatchNormalization(dtype=precision)
    theirs = keras.layers.BatchNormalization(dtype=precision)
    ours.build(x.shape)
    theirs.build(x.shape)
    with tf.device("/GPU:0"):
        results = []
        for layer in (ours, theirs):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, training=True)
                loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
            results.append((y, tape.gradient(loss, x)))
    (y1, g1), (y2, g2) = results
    assert "GPU" in y1.device and "GPU" in g1.device
    assert y1.dtype == keras.mixed_precision.Policy(precision).compute_dtype
    np.testing.assert_allclose(
        tf.cast(y1, tf.float32).numpy(), tf.cast(y2, tf.float32).numpy(), atol=5e-2
    )
    np.testing.assert_allclose(ours.moving_mean.numpy(), theirs.moving_mean.numpy(), atol=1e-4)


def test_mirrored_on_one_gpu(data_dir, tmp_path):
    run = train(_tiny_cnn(data_dir, strategy="mirrored"), tmp_path, verbose=0)
    metrics = _finished(run)
    assert metrics["replicas"] == len(tf.config.list_physical_devices("GPU"))
    assert _on_gpu(keras.models.load_model(run.path / "best.keras"))


def test_surface_and_landscape_on_the_gpu(data_dir, tmp_path):
    run = train(_tiny_cnn(data_dir), tmp_path / "runs", verbose=0)
    assert reports_main(["surface", str(run.path), "--points", "5", "--images", "64",
                         "--out", str(tmp_path / "surface"), "--quiet"]) == 0  # fmt: skip
    grid = pd.read_csv(tmp_path / "surface" / "surface.csv")
    assert len(grid) == 25 and np.isfinite(grid["loss"]).all()
    assert reports_main(["landscape", "mlp_mnist", "--compare", "bn=True", "--lrs", "0.1,0.01",
                         "--epochs", "1", "--out", str(tmp_path / "band"), "--data-dir",
                         str(data_dir), "--subset", "10", "--batch-size", "16"]) == 0  # fmt: skip
    assert (tmp_path / "band" / "bands.csv").exists()
