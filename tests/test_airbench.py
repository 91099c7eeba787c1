"""S5's net: the whitening layer, the partial-identity init, BN without a scale, and the
trainer's adapting of the whitening filters, on real CIFAR-10 images."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import zoo
from zoo import layers as zl
from zoo.data import load
from zoo.recipes import recipe
from zoo.runs import best_model
from zoo.train import train


@pytest.fixture(scope="module")
def images(data_dir):
    """400 CIFAR-10 training images, normalized as training feeds them, unaugmented."""
    train_ds, *_ = load("cifar10", data_dir=data_dir, subset=40, augment=False, shuffle=False)
    return np.concatenate([x.numpy() for x, _ in train_ds])[:400]


def _patches(images: np.ndarray) -> np.ndarray:
    windows = np.lib.stride_tricks.sliding_window_view(images, (2, 2), axis=(1, 2))
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, 12).astype(np.float64)


def test_whitening_filters_give_patches_about_unit_covariance(images):
    layer = zl.Whitening(2, eps=5e-4)
    layer.adapt(images)
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    assert kernel.shape == (2, 2, 3, 24)
    np.testing.assert_array_equal(kernel[..., 12:], -kernel[..., :12])  # the ± pairs
    out = keras.ops.convert_to_numpy(layer(images))[..., :12].reshape(-1, 12).astype(np.float64)
    covariance = out.T @ out / len(out)  # uncentered, as the filters were computed
    values = np.linalg.eigvalsh(_patches(images).T @ _patches(images) / len(out))
    # Each direction's variance is λ / (λ + eps): 1 where the patches vary, less in the few
    # directions flatter than eps; no two directions correlate.
    np.testing.assert_allclose(np.diag(covariance), values / (values + 5e-4), atol=2e-3)
    assert np.abs(covariance - np.diag(np.diag(covariance))).max() < 2e-3
    # Half the directions are near 1; the flattest (fine colour detail, which this JPEG copy
    # of CIFAR-10 partly lost) are damped by eps.
    assert (np.diag(covariance) > 0.9).sum() >= 6
    assert layer.trainable_weights == [layer.bias]  # the filters never train


def test_partial_identity_passes_the_first_channels_through(images):
    x = keras.ops.convert_to_tensor(images[:8])
    square = keras.layers.Conv2D(3, 3, padding="same", use_bias=False,
                                 kernel_initializer=zl.PartialIdentity(seed=0))  # fmt: skip
    np.testing.assert_allclose(keras.ops.convert_to_numpy(square(x)), images[:8], atol=1e-6)
    wider = keras.layers.Conv2D(16, 3, padding="same", use_bias=False,
                                kernel_initializer=zl.PartialIdentity(seed=0))  # fmt: skip
    out = keras.ops.convert_to_numpy(wider(x))
    np.testing.assert_allclose(out[..., :3], images[:8], atol=1e-6)
    kernel = keras.ops.convert_to_numpy(wider.kernel)[..., 3:]
    bound = 1 / np.sqrt(3 * 3 * 3)  # PyTorch's default: uniform in ±1/√fan-in
    assert 0.8 * bound < np.abs(kernel).max() <= bound


def test_batch_norm_without_a_scale_matches_keras(images):
    x = keras.ops.convert_to_tensor(images[:16])
    ours = zl.BatchNormalization(scale=False, momentum=0.6, epsilon=1.001e-5)
    theirs = keras.layers.BatchNormalization(scale=False, momentum=0.6, epsilon=1.001e-5)
    for layer in (ours, theirs):
        layer.build(x.shape)
        layer.beta.assign(np.linspace(-1, 1, 3).astype("float32"))
    for training in (True, False):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(ours(x, training=training)),
            keras.ops.convert_to_numpy(theirs(x, training=training)), atol=1e-4,
        )  # fmt: skip
    np.testing.assert_allclose(ours.moving_variance.numpy(), theirs.moving_variance.numpy(), 1e-5)
    assert [w.name for w in ours.trainable_weights] == ["beta"]


@pytest.mark.parametrize("gpu", [False, True])
def test_gelu_is_keras_exact_gelu_in_value_and_gradient_at_each_precision(images, gpu, monkeypatch):
    import tensorflow as tf

    monkeypatch.setattr(zl, "_on_gpu", lambda: gpu)  # the CPU's kernel, and Keras's ops
    x32 = tf.constant(images[:4] * 3)  # spans the curve, tails included
    for policy, tol in (("float32", 1e-6), ("mixed_bfloat16", 1e-2)):
        layer = zl.GELU(dtype=policy)
        x = tf.cast(x32, layer.compute_dtype)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            ours = layer(x)
            theirs = keras.layers.Activation("gelu", dtype="float32")(tf.cast(x, "float32"))
        assert ours.dtype == layer.compute_dtype
        # Both sides as float32 numpy arrays: numpy 1.26 cannot promote bfloat16 against anything.
        f32 = lambda t: tf.cast(t, "float32").numpy()  # noqa: E731
        np.testing.assert_allclose(f32(ours), f32(theirs), rtol=tol, atol=tol)
        np.testing.assert_allclose(
            f32(tape.gradient(ours, x)), f32(tape.gradient(theirs, x)), atol=tol
        )
    model = zoo.build("airbench")
    assert isinstance(model.get_layer("b1_c1_act"), zl.GELU)
    # Weightless: a checkpoint's weights do not depend on which GELU layer built the model.
    assert not zl.GELU().weights


def test_every_trick_is_a_toggle_and_the_full_net_has_airbenchs_shape():
    full = zoo.build("airbench")
    assert full.get_layer("b3_c2_act").output.shape == (None, 3, 3, 256)
    assert full.count_params() == 1_971_640 + 2 * 1_152  # airbench's, + BN moving statistics
    plain = zoo.build("airbench", whiten=False, dirac=False, bn_scale=True)
    assert "whiten" not in [layer.name for layer in plain.layers]
    assert plain.get_layer("stem_bn").scale and not full.get_layer("b1_c1_bn").scale


def test_training_adapts_the_whitening_filters_once_and_keeps_them(data_dir, tmp_path):
    cfg = recipe("airbench", data_dir=str(data_dir), subset=20, test_subset=10, epochs=2,
                 batch_size=50, model_kwargs={"width": 0.125})  # fmt: skip
    run = train(cfg, tmp_path, verbose=0)
    model = best_model(run.path)
    kernel = keras.ops.convert_to_numpy(model.get_layer("whiten").kernel)
    assert np.abs(kernel).max() > 1  # whitening filters: eigenvectors over √(λ + eps)
    # Set before training from the first training images and never trained.
    fresh = zoo.build("airbench", width=0.125)
    train_ds, *_ = load("cifar10", data_dir=data_dir, subset=20, val_split=cfg.val_split,
                        augment=False, shuffle=False)  # fmt: skip
    zl.adapt(fresh, np.concatenate([x.numpy() for x, _ in train_ds]))
    np.testing.assert_allclose(
        kernel, keras.ops.convert_to_numpy(fresh.get_layer("whiten").kernel), rtol=1e-5
    )
    assert np.abs(keras.ops.convert_to_numpy(model.get_layer("whiten").bias)).max() > 0
    assert run.metrics["test"]["accuracy"] > 0.1


def test_tta_views_and_weights_are_airbenchs(images):
    from zoo.train.tta import _views

    x = keras.ops.convert_to_tensor(images[:4])
    assert [w for w, _ in _views(x, 0)] == [1.0]
    one = _views(x, 1)
    assert [w for w, _ in one] == [0.5, 0.5]
    np.testing.assert_array_equal(np.asarray(one[1][1]), images[:4, :, ::-1])
    two = _views(x, 2)
    assert [w for w, _ in two] == [0.25, 0.25] + [0.125] * 4
    padded = np.pad(images[:4], ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(np.asarray(two[2][1]), padded[:, :32, :32])
    np.testing.assert_array_equal(np.asarray(two[4][1]), padded[:, 2:, 2:])
    np.testing.assert_array_equal(np.asarray(two[5][1]), padded[:, 2:, 2:][:, :, ::-1])


def test_a_run_reports_tta_accuracy_beside_the_plain_one(data_dir, tmp_path):
    from zoo.train import tta

    cfg = recipe("airbench", data_dir=str(data_dir), subset=20, test_subset=20, epochs=1,
                 batch_size=50, tta=2, precision="float32",
                 model_kwargs={"width": 0.125})  # fmt: skip
    run = train(cfg, tmp_path, verbose=0)
    assert run.metrics["test_tta"]["level"] == 2
    assert 0.0 <= run.metrics["test_tta"]["accuracy"] <= 1.0
    # Level 0 is plain test accuracy.
    _, _, test_ds, _ = load("cifar10", data_dir=data_dir, subset=20, test_subset=20,
                            val_split=cfg.val_split)  # the same normalization  # fmt: skip
    model = best_model(run.path)
    plain = tta.accuracy(model, test_ds, 0)
    assert plain == pytest.approx(run.metrics["test"]["accuracy"], abs=1e-6)
