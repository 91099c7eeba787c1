"""Every registered builder: shapes, the studies' parameter counts, toggles, save and load."""

from __future__ import annotations

import inspect
import json
import typing

import keras
import numpy as np
import pytest

import zoo
from zoo.data import read
from zoo.recipes import recipe
from zoo.registry import HOME_SHAPES
from zoo.study import STUDIES, config

MODELS = zoo.list_models()

# A second shape per model: MNIST models on CIFAR shapes, the rest on MNIST's 28x28x1.
OTHER = {"mnist": ((32, 32, 3), 7), "cifar10": ((28, 28, 1), 5), "tiny_imagenet": ((32, 32, 3), 10)}


def _trainable(model: keras.Model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _count(model: keras.Model, kind: type) -> int:
    return sum(isinstance(layer, kind) for layer in model.layers)


@pytest.mark.parametrize("name", MODELS)
def test_home_shape_forward(name):
    info = zoo.describe(name)
    model = zoo.build(name)
    assert model.name == name
    x = np.random.default_rng(0).random((2, *info.input_shape), dtype=np.float32)
    out = model(x, training=False)
    assert tuple(out.shape) == (2, info.num_classes)
    assert np.isfinite(keras.ops.convert_to_numpy(out)).all()


@pytest.mark.parametrize("name", MODELS)
def test_other_shape_and_class_count(name):
    shape, classes = OTHER[zoo.describe(name).dataset]
    model = zoo.build(name, input_shape=shape, num_classes=classes)
    out = model(np.zeros((1, *shape), np.float32), training=False)
    assert tuple(out.shape) == (1, classes)


@pytest.mark.slow  # 20 s; the fast lane builds each model at its own shape and one other
@pytest.mark.parametrize("dataset", sorted(HOME_SHAPES))
def test_every_model_runs_on_every_home_shape(dataset):
    """The cheapest configuration of each model (narrow), on each home dataset's shape."""
    shape, classes = HOME_SHAPES[dataset]
    for name in MODELS:
        toggles = {"width": 0.125} if "width" in zoo.describe(name).toggles else {}
        model = zoo.build(name, input_shape=shape, num_classes=classes, **toggles)
        assert model.output_shape == (None, classes), name
        keras.utils.clear_session()


@pytest.mark.parametrize(
    "name, count",
    [("basic_cnn", 1_147_466), ("improved_cnn", 12_906_250), ("resnet_cnn", 2_816_074)],
)
def test_s1_parameter_counts_are_exact(name, count):
    assert _trainable(zoo.build(name)) == count


def test_s4_parameter_counts_are_its_published_codes():
    assert _trainable(zoo.build("inception_v1")) == 5_971_962
    assert _trainable(zoo.build("inception_v1", residual=True)) == 7_954_986
    assert _trainable(zoo.build("inception_v1", stem=(192,))) == 5_971_962 - 107_200


def test_other_known_parameter_counts():
    assert _trainable(zoo.build("vgg_a")) == 9_750_922
    assert _trainable(zoo.build("mlp_mnist")) == 784 * 1000 + 1000 + 1000 * 10 + 10
    lenet = zoo.build("lenet")
    assert lenet.get_layer("flatten").output.shape[-1] == 256  # S2's linear 256-128-64-10


def _alternative(value, hint):
    """A valid value different from a toggle's default."""
    hint_args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        return next(a for a in hint_args if a != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, tuple):
        return tuple(v * 2 for v in value)
    if isinstance(value, int):
        return value * 2
    if isinstance(value, float):
        return value * 2 if value else 0.25
    if isinstance(value, str):
        return "relu" if value != "relu" else "sigmoid"
    if value is None:
        return 1e-2
    raise AssertionError(f"no alternative for {value!r}")


TOGGLES = [(n, t) for n in MODELS for t in zoo.describe(n).toggles]
# Toggles that only act together with another one.
NEEDS = {"residual_scale": {"residual": True}}


@pytest.mark.parametrize("name, toggle", TOGGLES, ids=[f"{n}-{t}" for n, t in TOGGLES])
def test_every_toggle_changes_the_model(name, toggle):
    info = zoo.describe(name)
    hints = typing.get_type_hints(inspect.unwrap(zoo.registry._REGISTRY[name].fn))
    value = _alternative(info.toggles[toggle], hints[toggle])
    # Narrow widths keep this sweep fast; the toggle under test keeps its own value.
    small = {"width": 0.25} if "width" in info.toggles and toggle != "width" else {}
    small.update(NEEDS.get(toggle, {}))
    base = zoo.build(name, **small)
    changed = zoo.build(name, **small, **{toggle: value})
    base_json = json.dumps(base.get_config(), sort_keys=True, default=str)
    changed_json = json.dumps(changed.get_config(), sort_keys=True, default=str)
    assert base_json != changed_json, f"{name}: {toggle}={value!r} left the graph unchanged"


BN_MODELS = [n for n in MODELS if "bn" in zoo.describe(n).toggles]


@pytest.mark.parametrize("name", BN_MODELS)
def test_bn_toggle_adds_batch_norm(name):
    head = {"head_bn": False} if "head_bn" in zoo.describe(name).toggles else {}
    on = zoo.build(name, bn=True, **head)
    off = zoo.build(name, bn=False, **head)
    bn = keras.layers.BatchNormalization
    assert _count(off, bn) < _count(on, bn)
    convs = [layer.name for layer in on.layers if isinstance(layer, keras.layers.Conv2D)]
    names = {layer.name for layer in on.layers}
    assert all(conv.replace("_conv", "_bn") in names for conv in convs)  # BN after every conv
    off_names = {layer.name for layer in off.layers}
    assert not any(conv.replace("_conv", "_bn") in off_names for conv in convs)
    # One meaning in every family: `bn` normalizes the convs, and the dense head only in a
    # net without convs (the MLP); `head_bn` is the head's own toggle.
    dense = {n for n in names if n.startswith("fc") and n.endswith("_bn")}
    assert bool(dense) == (not convs), f"{name}: bn=True normalized {sorted(dense)}"


HEAD_BN_MODELS = [n for n in MODELS if "head_bn" in zoo.describe(n).toggles]


@pytest.mark.parametrize("name", HEAD_BN_MODELS)
def test_head_bn_normalizes_the_hidden_dense_layers_only(name):
    defaults = zoo.describe(name).toggles
    on = zoo.build(name, bn=False, head_bn=True, width=0.25) if "width" in defaults else (
        zoo.build(name, bn=False, head_bn=True))  # fmt: skip
    bns = [layer.name for layer in on.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(n.startswith("fc") for n in bns), bns


def test_vgg_a_bn_sits_between_conv_and_relu():
    model = zoo.build("vgg_a", bn=True)
    assert _count(model, keras.layers.BatchNormalization) == 8
    names = [layer.name for layer in model.layers]
    i = names.index("s1_1_conv")
    assert names[i : i + 3] == ["s1_1_conv", "s1_1_bn", "s1_1_act"]


@pytest.mark.parametrize("name", [n for n in MODELS if "residual" in zoo.describe(n).toggles])
def test_residual_toggle_adds_add_layers(name):
    small = {"width": 0.25}
    assert _count(zoo.build(name, residual=False, **small), keras.layers.Add) == 0
    assert _count(zoo.build(name, residual=True, **small), keras.layers.Add) > 0


def test_residual_scale_is_applied():
    model = zoo.build("inception_v1", residual=True, residual_scale=0.1, width=0.25)
    scales = [layer for layer in model.layers if isinstance(layer, keras.layers.Rescaling)]
    assert len(scales) == 9 and all(layer.scale == pytest.approx(0.1) for layer in scales)


@pytest.mark.parametrize("name", [n for n in MODELS if "dropout" in zoo.describe(n).toggles])
def test_dropout_toggle_adds_dropout(name):
    small = {"width": 0.25} if "width" in zoo.describe(name).toggles else {}
    model = zoo.build(name, dropout=0.3, **small)
    rates = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates and all(r == pytest.approx(0.3) for r in rates)
    assert _count(zoo.build(name, dropout=0.0, **small), keras.layers.Dropout) == 0


@pytest.mark.parametrize("name", [n for n in MODELS if "weight_decay" in zoo.describe(n).toggles])
def test_weight_decay_adds_l2_on_kernels(name):
    small = {"width": 0.25} if "width" in zoo.describe(name).toggles else {}
    model = zoo.build(name, weight_decay=1e-2, **small)
    kernels = [w for w in model.trainable_weights if w.path.endswith("kernel")]
    assert len(model.losses) == len(kernels) > 0
    assert not zoo.build(name, weight_decay=0.0, **small).losses


def test_weight_decay_is_half_l2_like_pytorch_sgd():
    model = zoo.build("mlp_mnist", hidden=(4,), weight_decay=0.1)
    kernels = [w for w in model.trainable_weights if w.path.endswith("kernel")]
    expected = sum(0.05 * float(np.sum(np.square(keras.ops.convert_to_numpy(k)))) for k in kernels)
    got = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
    assert got == pytest.approx(expected, rel=1e-5)


def test_weight_decay_gradient_is_decay_times_weight():
    import tensorflow as tf

    kernel = tf.Variable(np.random.default_rng(0).standard_normal((30, 20), dtype=np.float32))
    with tf.GradientTape() as tape:
        penalty = zoo.layers.l2(3e-2)(kernel)
    np.testing.assert_allclose(tape.gradient(penalty, kernel), 3e-2 * kernel.numpy(), rtol=1e-6)
    config = zoo.layers.l2(3e-2).get_config()
    assert keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(zoo.layers.WeightDecay(**config))
    ).weight_decay == pytest.approx(3e-2)


def test_tiny_baseline_depth_adds_double_convs():
    convs = {
        d: _count(zoo.build("tiny_baseline", depth=d, width=0.25), keras.layers.Conv2D)
        for d in ("short", "mid", "long")
    }
    assert convs == {"short": 4, "mid": 12, "long": 20}


def test_tiny_baseline_all_toggles_together():
    model = zoo.build("tiny_baseline", bn=True, dropout=0.5, residual=True, depth="mid", width=0.25)
    assert _count(model, keras.layers.Add) == 8
    assert _count(model, keras.layers.Dropout) == 1


def test_width_scales_filters():
    assert zoo.build("vgg_a", width=0.5).get_layer("s1_1_conv").filters == 32
    assert zoo.build("resnet_cnn", width=2.0).get_layer("stem_conv").filters == 128


def test_s0_init_is_normal_with_weight_scale():
    model = zoo.build("three_layer_convnet", init_std=1e-2)
    kernel = keras.ops.convert_to_numpy(model.get_layer("fc1").kernel)
    assert abs(kernel.std() - 1e-2) < 1e-3 and abs(kernel.mean()) < 1e-3


@pytest.mark.parametrize("name", MODELS)
def test_save_and_load_round_trip(name, tmp_path):
    info = zoo.describe(name)
    toggles = {
        k: v for k, v in {"bn": True, "dropout": 0.5, "residual": True}.items() if k in info.toggles
    }
    if "width" in info.toggles:
        toggles["width"] = 0.25
    model = zoo.build(name, **toggles)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).random((3, *info.input_shape), dtype=np.float32)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(x, training=False)),
        keras.ops.convert_to_numpy(loaded(x, training=False)),
        rtol=1e-6,
        atol=1e-6,
    )
    assert _trainable(loaded) == _trainable(model)


# Tolerances by policy: a bfloat16 output carries 8 significant bits, a float16 one 11.
_BN_TOLERANCE = {"float32": 1e-4, "mixed_float16": 4e-3, "mixed_bfloat16": 3e-2}


@pytest.mark.parametrize("precision", list(_BN_TOLERANCE))
@pytest.mark.parametrize("shape", [(16, 6, 6, 5), (16, 5)])
def test_fused_batch_norm_matches_keras(shape, precision):
    import tensorflow as tf

    from zoo.layers import BatchNormalization

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, shape), tf.float32)
    weights = tf.constant(rng.normal(size=shape), tf.float32)  # a loss with real gradients
    ours = BatchNormalization(momentum=0.9, dtype=precision)
    theirs = keras.layers.BatchNormalization(momentum=0.9, dtype=precision)
    for layer in (ours, theirs):
        layer.build(shape)
        layer.gamma.assign(np.linspace(0.5, 1.5, shape[-1]))
        layer.beta.assign(np.linspace(-1, 1, shape[-1]))
    results = []
    for layer in (ours, theirs):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results.append((y, *grads, layer.moving_mean, layer.moving_variance, layer(x)))
    tolerance = _BN_TOLERANCE[precision]
    for a, b in zip(*results, strict=True):
        assert a.dtype == b.dtype
        a, b = (np.asarray(tf.cast(v, tf.float32)) for v in (a, b))
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance)
    # Statistics and parameters stay float32 whatever the policy; outputs take its compute dtype.
    assert ours.moving_mean.dtype == ours.gamma.dtype == "float32"
    assert results[0][0].dtype == keras.mixed_precision.Policy(precision).compute_dtype
    assert ours._fusable(tf.cast(x, results[0][0].dtype), None)
    assert not ours._fusable(tf.cast(x, tf.float64), None)


def test_mixed_precision_logits_are_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = zoo.build("basic_cnn", width=0.25)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.name == "basic_cnn" and model.layers[-2].compute_dtype == "float16"
    assert model.layers[-1].name == "logits_float32" and model.outputs[0].dtype == "float32"
    assert zoo.build("basic_cnn", width=0.25).layers[-1].name != "logits_float32"


@pytest.mark.slow  # 10-14 s: the whole suite runs it, the fast lane not
def test_tiny_baseline_long_plain_net_trains_only_with_he_init(data_dir):
    """S3's recipe takes He's init: with Glorot's, 20 plain ReLU convs learn little beyond the
    class prior in the steps where He's fits the images (real MNIST, 512 images)."""
    mnist = read("mnist", data_dir=data_dir)
    x = (mnist.x_train[:512].astype("float32") / 255.0 - 0.13) / 0.31
    y = mnist.y_train[:512]
    final = {}
    for init in ("glorot_uniform", "he_normal"):
        keras.utils.set_random_seed(0)
        model = zoo.build(
            "tiny_baseline", depth="long", width=0.25, init=init,
            input_shape=x.shape[1:], num_classes=10,
        )  # fmt: skip
        model.compile(keras.optimizers.Adam(3e-4), keras.losses.SparseCategoricalCrossentropy(True))
        final[init] = model.fit(x, y, batch_size=64, epochs=6, verbose=0).history["loss"][-1]
    assert final["glorot_uniform"] > 2.0  # ln 10 = 2.30: little beyond the prior
    assert final["he_normal"] < 1.0
    assert recipe("tiny_baseline").model_kwargs["init"] == "he_normal"


def test_tiny_baseline_residual_net_without_bn_starts_sane_only_with_glorot_init(data_dir):
    """S3's +residual column takes Glorot's init: identity shortcuts without batch norm add each
    block's output to its input, and under He's the long net's first logits are hundreds of
    times too large (real MNIST, 64 images, no training)."""
    mnist = read("mnist", data_dir=data_dir)
    x = (mnist.x_train[:64].astype("float32") / 255.0 - 0.13) / 0.31
    spread = {}
    for init in ("glorot_uniform", "he_normal"):
        keras.utils.set_random_seed(0)
        model = zoo.build(
            "tiny_baseline", depth="long", width=0.25, init=init, residual=True,
            input_shape=x.shape[1:], num_classes=10,
        )  # fmt: skip
        spread[init] = float(np.std(model(x, training=True)))
    assert spread["glorot_uniform"] < 10 < 50 * spread["glorot_uniform"] < spread["he_normal"]
    run = STUDIES["S3"].run("long +residual")
    assert config(STUDIES["S3"], run, "cpu").model_kwargs["init"] == "glorot_uniform"


def test_leaky_relu_matches_keras_in_value_and_gradient_and_fuses_cleanly():
    import tensorflow as tf

    from zoo.layers import LeakyReLU

    x = tf.constant(np.random.default_rng(0).normal(size=(4, 6, 6, 3)), "float32")
    ours, theirs = LeakyReLU(negative_slope=0.01), keras.layers.LeakyReLU(negative_slope=0.01)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        a, b = ours(x), theirs(x)
        loss_a, loss_b = tf.reduce_sum(a * x), tf.reduce_sum(b * x)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(tape.gradient(loss_a, x), tape.gradient(loss_b, x))
    assert ours.get_config()["negative_slope"] == 0.01
    assert isinstance(zoo.build("lenet").get_layer("conv1_act"), LeakyReLU)


@pytest.mark.parametrize("shape", [(4, 5, 5, 8), (4, 5, 5, 16), (6, 8)])
def test_bfloat16_batch_norm_matches_keras_whichever_kernel_it_takes(shape, monkeypatch):
    import tensorflow as tf

    from zoo import layers as zl

    monkeypatch.setattr(zl, "_on_gpu", lambda: False)  # the CPU's choice, on any machine
    x = tf.constant(np.random.default_rng(1).normal(2.0, 3.0, shape), "bfloat16")
    # 8 channels take the float32 kernel (bfloat16's is 1.4-3.4x slower), 16 the bfloat16 one.
    assert zl._slow_bfloat16(x) == (shape[-1] % 16 != 0)
    ours = zl.BatchNormalization(momentum=0.6, dtype="mixed_bfloat16")
    theirs = keras.layers.BatchNormalization(momentum=0.6, dtype="mixed_bfloat16")
    for training in (True, False):
        a, b = ours(x, training=training), theirs(x, training=training)
        assert a.dtype == b.dtype == tf.bfloat16
        np.testing.assert_allclose(tf.cast(a, "float32"), tf.cast(b, "float32"), atol=0.05)
    np.testing.assert_allclose(ours.moving_mean, theirs.moving_mean, rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(ours.moving_variance, theirs.moving_variance, rtol=1e-2)
    # In a traced graph too: a head's 2-D input keeps its channel count through the reshape.
    traced = tf.function(lambda v: ours(v, training=True))
    assert traced(x).dtype == tf.bfloat16
