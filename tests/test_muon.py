"""zoo.optimizers.Muon on its own: Newton-Schulz orthogonalization, the update of a conv kernel
and of everything else, its configuration, and a run that trains with it on real CIFAR-10."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from zoo.optimizers import Muon, orthogonalize
from zoo.recipes import recipe
from zoo.train import train
from zoo.train.compiling import make_optimizer


def _spread(rows: int, cols: int, condition: float) -> tuple[np.ndarray, ...]:
    """A random (rows, cols) matrix with singular values from 1 down to 1 / condition."""
    rng = np.random.default_rng(0)
    u, _, vt = np.linalg.svd(rng.standard_normal((rows, cols)), full_matrices=False)
    s = np.geomspace(1, 1 / condition, min(rows, cols))
    return (u * s) @ vt, u, vt


@pytest.mark.parametrize("shape", [(64, 288), (288, 64)])
def test_newton_schulz_sends_singular_values_near_one_in_the_same_directions(shape):
    g, u, vt = _spread(*shape, condition=100)  # singular values over two decades
    x = keras.ops.convert_to_numpy(orthogonalize(keras.ops.convert_to_tensor(g, "float32"), 5))
    values = np.linalg.svd(x, compute_uv=False)
    assert 0.6 < values.min() and values.max() < 1.25  # Jordan's quintic: about 0.7 to 1.2
    # The same singular vectors: Uᵀ X V is diagonal.
    core = u.T @ x @ vt.T
    np.testing.assert_allclose(core, np.diag(np.diag(core)), atol=1e-4)
    # Three steps leave directions a hundred times weaker behind; five bring them up.
    three = keras.ops.convert_to_numpy(orthogonalize(keras.ops.convert_to_tensor(g, "float32"), 3))
    assert np.linalg.svd(three, compute_uv=False).min() < 0.3


def test_a_conv_kernel_steps_along_its_orthogonalized_momentum():
    rng = np.random.default_rng(1)
    kernel = keras.Variable(rng.standard_normal((3, 3, 8, 16)).astype("float32"))
    bias = keras.Variable(np.ones(16, "float32"))
    opt = Muon(learning_rate=0.1, momentum=0.6, other_lr=0.5, other_momentum=0.85)
    grads = [rng.standard_normal((3, 3, 8, 16)).astype("float32"), np.full(16, 2.0, "float32")]
    before = kernel.numpy()
    opt.apply([keras.ops.convert_to_tensor(g) for g in grads], [kernel, bias])
    # First step: the momentum buffer is the gradient, Nesterov's direction (1 + 0.6) · g.
    renormed = before * np.sqrt(16) / np.linalg.norm(before)
    step = (renormed - kernel.numpy()) / 0.1
    matrix = step.reshape(72, 16).T  # (out, kh·kw·in)
    values = np.linalg.svd(matrix, compute_uv=False)
    assert 0.6 < values.min() and values.max() < 1.25
    expected = keras.ops.convert_to_numpy(orthogonalize(grads[0].reshape(72, 16).T * 1.6))
    np.testing.assert_allclose(matrix, expected, atol=1e-4)
    # Everything else: PyTorch's Nesterov SGD at other_lr, b = 0.85 b + g, w -= lr (g + 0.85 b).
    np.testing.assert_allclose(bias.numpy(), 1 - 0.5 * (2 + 0.85 * 2), rtol=1e-6)
    opt.apply([keras.ops.convert_to_tensor(g) for g in grads], [kernel, bias])
    buffer = 0.85 * 2 + 2
    np.testing.assert_allclose(bias.numpy(), 1 - 0.5 * 3.7 - 0.5 * (2 + 0.85 * buffer), 1e-6)


def test_a_dense_kernel_steps_at_head_lr_and_the_rest_at_other_lr():
    head = keras.Variable(np.ones((4, 2), "float32"))
    bias = keras.Variable(np.ones(2, "float32"))
    opt = Muon(learning_rate=0.2, other_lr=0.5, head_lr=3.0, other_momentum=0.85)
    opt.apply([keras.ops.ones((4, 2)), keras.ops.ones(2)], [head, bias])
    np.testing.assert_allclose(head.numpy(), 1 - 3.0 * 1.85, rtol=1e-6)
    np.testing.assert_allclose(bias.numpy(), 1 - 0.5 * 1.85, rtol=1e-6)
    # Without head_lr a dense kernel takes other_lr, as before.
    head.assign(np.ones((4, 2), "float32"))
    Muon(learning_rate=0.2, other_lr=0.5).apply([keras.ops.ones((4, 2))], [head])
    np.testing.assert_allclose(head.numpy(), 1 - 0.5 * 1.85, rtol=1e-6)


def test_the_run_setting_builds_it_and_its_config_round_trips():
    opt = make_optimizer(recipe("airbench", optimizer="muon", lr=0.24, other_lr=0.05))
    assert isinstance(opt, Muon) and opt.momentum == 0.6 and opt.other_lr == 0.05
    assert opt.head_lr == 1340 and opt.weight_decay == pytest.approx(0.111)  # the recipe's
    again = Muon.from_config(opt.get_config())
    assert (again.momentum, again.other_lr, again.head_lr, again.ns_steps) == (0.6, 0.05, 1340, 5)
    # Saved after the schedule lowered the rate, the SGD part keeps its ratio to the first.
    decayed = Muon.from_config({**opt.get_config(), "learning_rate": 0.03})
    assert decayed._initial_lr == pytest.approx(0.24)
    assert recipe("airbench", optimizer="muon", momentum=0.6).momentum is None  # the default


def test_muon_trains_airbench_on_real_images(data_dir, tmp_path):
    cfg = recipe("airbench", data_dir=str(data_dir), subset=30, test_subset=10, epochs=3,
                 batch_size=50, optimizer="muon", lr=0.1, other_lr=0.01, head_lr=0.0,
                 decoupled_decay=0.0,
                 model_kwargs={"width": 0.125})  # fmt: skip
    run = train(cfg, tmp_path, verbose=0)
    losses = run.history["loss"].tolist()
    assert losses[-1] < losses[0] and np.isfinite(losses).all()
    assert run.metrics["test"]["accuracy"] > 0.15
