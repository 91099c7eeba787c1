"""Blocks shared by the model families: functions from a tensor to a tensor.

Conventions every family follows:
- `weight_decay` is the coefficient of PyTorch's SGD `weight_decay` and of CS231n's `reg`: the loss
  gains `weight_decay / 2 * sum(w ** 2)` over kernels (never biases or BN parameters), so its
  gradient is `weight_decay * w`.
- Pooling pads like `padding="same"`: on even sizes this equals PyTorch's floor pooling, and odd
  sizes (28 -> 14 -> 7 -> 4) keep every model usable on MNIST-sized input.
- `bn=True` puts BatchNormalization between the convolution (or dense layer) and the activation.
  It is `zoo.layers.BatchNormalization`: Keras's layer, computed with TensorFlow's fused kernel
  when Keras runs on TensorFlow (see that class).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Literal

import keras
from keras import layers

from zoo import compat, machine

Activation = Literal["relu", "leaky_relu", "sigmoid", "tanh", "elu", "gelu", "silu"]
# The input dtypes of TensorFlow's FusedBatchNormV3 (and its gradient) with float32 statistics.
_FUSED_DTYPES = ("float32", "bfloat16", "float16")


@functools.cache
def _on_gpu() -> bool:
    return bool(machine.gpu_capabilities())


def _slow_bfloat16(x: Any) -> bool:
    """Whether the fused kernel would take `x` in bfloat16 on CPU with a channel count that is
    not a multiple of 16. oneDNN's bfloat16 kernel is then 1.4-3.4x slower than casting to
    float32 and back around its float32 kernel (8 channels of 64x64, batch 64, forward and
    gradient: 72 against 21 ms on a 2-core AMX Xeon; at 16, 48 or 64 channels bfloat16 is the
    faster), which made batch norm 4x the cost of S3's quarter-width nets (docs/speed.md)."""
    return keras.backend.standardize_dtype(x.dtype) == "bfloat16" and bool(
        x.shape[-1] % 16
    ) and not _on_gpu()  # fmt: skip


@keras.saving.register_keras_serializable(package="zoo")
class BatchNormalization(layers.BatchNormalization):
    """Keras's BatchNormalization, computed by TensorFlow's fused batch-norm kernel.

    Keras 3 normalizes on TensorFlow with separate moment, normalization and gradient ops;
    TensorFlow's fused kernel (oneDNN on CPU, cuDNN on GPU) does it in one, which trained
    VGG-A-BN twice as fast on the measured CPU (docs/speed.md). Same weights, same moving
    statistics (the biased batch variance, as Keras keeps them) and the same outputs within
    float tolerance; any case the kernel does not cover (another backend, a mask, an axis
    other than the last, synchronized or renormalized BN, a TensorFlow without the op, see
    `zoo.compat.fused_batch_norm`) takes Keras's own path.

    Under a mixed policy the kernel takes the bfloat16 or float16 input as it is and keeps
    scale, offset and statistics in float32, as PyTorch's autocast does; Keras's own layer
    instead casts the input up to float32 and back, two extra passes over every activation.
    The one exception is bfloat16 on CPU with channels not a multiple of 16 (`_slow_bfloat16`),
    where the casts cost less than the kernel's slow path.
    """

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        fused = compat.fused_batch_norm() if self._fusable(inputs, mask) else None
        if fused is None:
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        shape = tf.shape(inputs)
        x = inputs if len(inputs.shape) == 4 else tf.reshape(inputs, [-1, 1, 1, shape[-1]])
        upcast = _slow_bfloat16(inputs)
        if upcast:
            x = tf.cast(x, "float32")
        # Without a learned scale (or offset) the kernel takes a constant 1 (or 0) in its place.
        ones = tf.ones_like(self.moving_variance)
        gamma = self.gamma if self.scale else ones
        beta = self.beta if self.center else 0.0 * ones
        if training and self.trainable:
            y, mean, variance = fused(x, gamma, beta, epsilon=self.epsilon, is_training=True)
            count = tf.cast(tf.size(x) // tf.shape(x)[-1], variance.dtype)
            variance = variance * (count - 1) / tf.maximum(count, 1.0)  # the op's is unbiased
            for stat, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
                stat.assign(stat * self.momentum + batch * (1.0 - self.momentum))
        else:
            y, _, _ = fused(
                x, gamma, beta, self.moving_mean, self.moving_variance,
                epsilon=self.epsilon, is_training=False,
            )  # fmt: skip
        if upcast:
            y = tf.cast(y, inputs.dtype)
        return y if len(inputs.shape) == 4 else tf.reshape(y, shape)

    def _fusable(self, inputs: Any, mask: Any) -> bool:
        rank = len(inputs.shape)
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and rank in (2, 4)
            and self.axis in (-1, rank - 1)
            and not self.synchronized
            and not getattr(self, "renorm", False)
            and keras.backend.standardize_dtype(inputs.dtype) in _FUSED_DTYPES
            and self.epsilon >= 1.001e-5  # the kernel's floor
        )


@keras.saving.register_keras_serializable(package="zoo")
class WeightDecay(keras.regularizers.Regularizer):
    """The L2 penalty `weight_decay / 2 * sum(w ** 2)`, as one TensorFlow op when it can be.

    `keras.regularizers.L2` is a square, a sum and, in the backward pass, a broadcast and two
    multiplies, each a pass over the kernel; TensorFlow's `l2_loss` is one pass forward and its
    gradient one multiply: 5-8 % faster training of the S2 MLP, whose 784,000-weight kernel is
    most of its memory traffic (docs/speed.md). Other backends get the same value from
    `keras.ops`.
    """

    def __init__(self, weight_decay: float) -> None:
        self.weight_decay = float(weight_decay)

    def __call__(self, x: Any) -> Any:
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            return self.weight_decay * tf.nn.l2_loss(x)
        return self.weight_decay / 2 * keras.ops.sum(keras.ops.square(x))

    def get_config(self) -> dict[str, float]:
        return {"weight_decay": self.weight_decay}


@keras.saving.register_keras_serializable(package="zoo")
class PartialIdentity(keras.initializers.Initializer):
    """A conv kernel that starts as the identity on the first `min(in, out)` channels, the
    rest PyTorch's default (uniform in ±1/√fan-in), as `torch.nn.init.dirac_` on the first
    in-channels filters leaves it (airbench's Dirac init). Square convs start as the identity.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> Any:
        kh, kw, cin, cout = shape
        base = keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform", seed=self.seed)
        kernel = keras.ops.convert_to_numpy(base(shape, dtype="float32"))
        n = min(cin, cout)
        kernel[:, :, :, :n] = 0.0
        kernel[kh // 2, kw // 2, range(n), range(n)] = 1.0
        return keras.ops.convert_to_tensor(kernel, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}


@keras.saving.register_keras_serializable(package="zoo")
class Whitening(layers.Layer):
    """A `size`x`size` valid convolution whose filters whiten the input's patches: each is an
    eigenvector of the patches' (uncentered) covariance divided by √(eigenvalue + eps), and
    its negation, so `2 · size² · channels` filters. The filters are set from training images
    by `adapt` and never trained; the bias is trained (airbench's first layer, Jordan 2024).
    """

    def __init__(self, size: int = 2, eps: float = 5e-4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size, self.eps = size, eps

    def build(self, input_shape: tuple[int, ...]) -> None:
        channels = input_shape[-1]
        filters = 2 * self.size * self.size * channels
        self.kernel = self.add_weight(
            shape=(self.size, self.size, channels, filters), initializer="zeros",
            trainable=False, name="kernel",
        )  # fmt: skip
        self.bias = self.add_weight(shape=(filters,), initializer="zeros", name="bias")

    def call(self, inputs: Any) -> Any:
        kernel = keras.ops.cast(self.kernel, inputs.dtype)
        return keras.ops.conv(inputs, kernel, padding="valid") + keras.ops.cast(
            self.bias, inputs.dtype
        )

    def adapt(self, images: Any) -> None:
        """Sets the filters from `images` `(N, H, W, C)`, normalized as training feeds them."""
        import numpy as np

        images = np.asarray(images, dtype=np.float64)
        k, n, c = self.size, len(images), images.shape[-1]
        if not self.built:
            self.build(images.shape)
        covariance = np.zeros((k * k * c, k * k * c))
        count = 0
        for start in range(0, n, 500):  # bounded memory: 500 images' patches at a time
            chunk = images[start : start + 500]
            # (B, H-k+1, W-k+1, k, k, C): every stride-1 patch, flattened as the kernel is.
            patches = np.lib.stride_tricks.sliding_window_view(chunk, (k, k), axis=(1, 2))
            patches = patches.transpose(0, 1, 2, 4, 5, 3).reshape(-1, k * k * c)
            covariance += patches.T @ patches
            count += len(patches)
        values, vectors = np.linalg.eigh(covariance / count)
        filters = (vectors / np.sqrt(values + self.eps)).T.reshape(-1, k, k, c)
        kernel = np.concatenate([filters, -filters]).transpose(1, 2, 3, 0)
        self.kernel.assign(kernel.astype("float32"))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": self.size, "eps": self.eps}


def adapt(model: keras.Model, images: Any) -> bool:
    """Adapts every `Whitening` layer of `model` to `images`; whether there was one."""
    found = [layer for layer in model.layers if isinstance(layer, Whitening)]
    for layer in found:
        layer.adapt(images)
    return bool(found)


def l2(weight_decay: float) -> WeightDecay | None:
    """Returns the kernel regularizer for a `weight_decay` coefficient, or None for 0."""
    return WeightDecay(weight_decay) if weight_decay else None


def scaled(channels: int, width: float) -> int:
    """Scales a channel count by a width multiplier, keeping at least one channel."""
    return max(1, round(channels * width))


@functools.cache
def _gelu() -> Any:
    """The exact GELU and its gradient, each one XLA-compiled float32 loop."""
    import tensorflow as tf

    def compiled(f: Any) -> Any:
        return tf.function(f, jit_compile=True, autograph=False, reduce_retracing=True)

    @compiled
    def forward(x: Any) -> Any:
        x32 = tf.cast(x, tf.float32)
        return tf.cast(0.5 * x32 * (1.0 + tf.math.erf(x32 * 0.5**0.5)), x.dtype)

    @compiled
    def backward(x: Any, dy: Any) -> Any:
        x32 = tf.cast(x, tf.float32)
        cdf = 0.5 * (1.0 + tf.math.erf(x32 * 0.5**0.5))
        pdf = tf.exp(-0.5 * x32 * x32) * (2.0 * math.pi) ** -0.5
        return tf.cast(tf.cast(dy, tf.float32) * (cdf + x32 * pdf), x.dtype)

    @tf.custom_gradient
    def gelu(x: Any) -> Any:
        # Only the input is kept for the gradient, in its own dtype.
        return forward(x), lambda dy: backward(x, dy)

    return gelu


@keras.saving.register_keras_serializable(package="zoo")
class GELU(layers.Layer):
    """The exact GELU, `x·Φ(x)`, as `layers.Activation("gelu")` computes it; on a CPU
    with TensorFlow, in float32 whatever the input's dtype.

    On TensorFlow, Keras's gelu is about six elementwise ops (erfc, exp, products), each a
    pass over memory, and in bfloat16 they run element by element on CPU: on a 2-core Xeon
    they were half of airbench's training step and three quarters of its inference
    (docs/speed.md). On CPU the function and its gradient are here each one XLA-compiled loop
    in float32, and the gradient keeps only the input. GPUs take Keras's own ops, which were
    not measured slow. No weights, so a checkpoint loads into a model built with either layer.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs: Any) -> Any:
        if keras.backend.backend() == "tensorflow" and not _on_gpu():
            return _gelu()(inputs)
        return keras.activations.gelu(inputs, approximate=False)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return input_shape


@keras.saving.register_keras_serializable(package="zoo")
class LeakyReLU(layers.LeakyReLU):
    """Keras's LeakyReLU, its gradient read from the output instead of the input (the same
    gradient: both are positive at the same places).

    TensorFlow's graph optimizer fuses conv -> bias -> LeakyRelu into one op, after which the
    bias's output, the input that `LeakyReluGrad` reads, no longer exists: it logs
    `remapper failed: ... missing node ... BiasAdd` and trains the graph without any of its
    fusions. Read from the output, which the fused op still produces, the fusion holds.
    """

    def call(self, inputs: Any) -> Any:
        if keras.backend.backend() != "tensorflow":
            return super().call(inputs)
        import tensorflow as tf

        alpha = self.negative_slope

        @tf.custom_gradient
        def leaky(x: Any) -> Any:
            y = tf.nn.leaky_relu(x, alpha)

            def grad(dy: Any) -> Any:
                return tf.raw_ops.LeakyReluGrad(gradients=dy, features=y, alpha=alpha)

            return y, grad

        return leaky(inputs)


def act(x: Any, activation: str, name: str) -> Any:
    """Applies an activation by name; `leaky_relu` uses PyTorch's slope of 0.01, `gelu` is
    the exact GELU (`GELU`)."""
    if activation == "leaky_relu":
        return LeakyReLU(negative_slope=0.01, name=name)(x)
    if activation == "gelu":
        return GELU(name=name)(x)
    return layers.Activation(activation, name=name)(x)


def conv_bn_act(
    x: Any,
    filters: int,
    kernel_size: int = 3,
    *,
    name: str,
    strides: int = 1,
    padding: str = "same",
    bn: bool = False,
    activation: str | None = "relu",
    use_bias: bool = True,
    weight_decay: float = 0.0,
    kernel_initializer: Any = "glorot_uniform",
) -> Any:
    """Conv2D, then BatchNormalization if `bn`, then the activation (None: linear).

    Layers are named `{name}_conv`, `{name}_bn` and `{name}_act`.
    """
    if padding == "valid":
        _check_spatial(x, kernel_size, f"{name}_conv")
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer=kernel_initializer,
        kernel_regularizer=l2(weight_decay),
        name=f"{name}_conv",
    )(x)
    if bn:
        x = BatchNormalization(name=f"{name}_bn")(x)
    return act(x, activation, f"{name}_act") if activation else x


def dense_bn_act(
    x: Any,
    units: int,
    *,
    name: str,
    bn: bool = False,
    activation: str = "relu",
    dropout: float = 0.0,
    weight_decay: float = 0.0,
    kernel_initializer: Any = "glorot_uniform",
) -> Any:
    """Dense, then BatchNormalization if `bn`, the activation, and Dropout if `dropout > 0`.

    Layers are named `{name}`, `{name}_bn`, `{name}_act` and `{name}_drop`.
    """
    x = layers.Dense(
        units,
        kernel_initializer=kernel_initializer,
        kernel_regularizer=l2(weight_decay),
        name=name,
    )(x)
    if bn:
        x = BatchNormalization(name=f"{name}_bn")(x)
    x = act(x, activation, f"{name}_act")
    return layers.Dropout(dropout, name=f"{name}_drop")(x) if dropout else x


def max_pool(x: Any, *, name: str, pool_size: int = 2, strides: int | None = None) -> Any:
    """Max pooling with "same" padding (see the module docstring)."""
    return layers.MaxPooling2D(pool_size, strides=strides, padding="same", name=name)(x)


def residual_block(
    x: Any,
    filters: int,
    *,
    name: str,
    convs: int = 2,
    strides: int = 1,
    residual: bool = True,
    bn: bool = True,
    activation: str = "relu",
    use_bias: bool = False,
    weight_decay: float = 0.0,
    kernel_initializer: Any = "glorot_uniform",
) -> Any:
    """A chain of `convs` 3x3 convolutions with an optional shortcut (He et al. 2016).

    With `residual=True`: `act(F(x) + shortcut(x))`, where F ends in a linear conv (+ BN) and the
    shortcut is the identity, or a 1x1 conv (+ BN) projection when the stride or width changes.
    With `residual=False` the same convolutions form a plain conv-BN-act stack.
    Layers are named `{name}_c{i}_*`, `{name}_proj_*`, `{name}_add` and `{name}_out`.
    """
    shortcut = x
    for i in range(1, convs + 1):
        last = i == convs
        x = conv_bn_act(
            x,
            filters,
            3,
            name=f"{name}_c{i}",
            strides=strides if i == 1 else 1,
            bn=bn,
            activation=None if (last and residual) else activation,
            use_bias=use_bias,
            weight_decay=weight_decay,
            kernel_initializer=kernel_initializer,
        )
    if not residual:
        return x
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = conv_bn_act(
            shortcut,
            filters,
            1,
            name=f"{name}_proj",
            strides=strides,
            bn=bn,
            activation=None,
            use_bias=use_bias,
            weight_decay=weight_decay,
            kernel_initializer=kernel_initializer,
        )
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return act(x, activation, f"{name}_out")


def classifier(
    x: Any,
    num_classes: int,
    *,
    hidden: tuple[int, ...] = (),
    bn: bool = False,
    activation: str = "relu",
    dropout: float = 0.0,
    weight_decay: float = 0.0,
    kernel_initializer: Any = "glorot_uniform",
) -> Any:
    """Flatten, hidden dense layers `fc1, fc2, ...`, and the `logits` layer."""
    if len(x.shape) > 2:
        x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(hidden, start=1):
        x = dense_bn_act(
            x,
            units,
            name=f"fc{i}",
            bn=bn,
            activation=activation,
            dropout=dropout,
            weight_decay=weight_decay,
            kernel_initializer=kernel_initializer,
        )
    return layers.Dense(
        num_classes,
        kernel_initializer=kernel_initializer,
        kernel_regularizer=l2(weight_decay),
        name="logits",
    )(x)


def _check_spatial(x: Any, needed: int, layer: str) -> None:
    height, width = x.shape[1], x.shape[2]
    if height < needed or width < needed:
        raise ValueError(
            f"Input too small: layer {layer!r} needs at least {needed}x{needed} pixels but gets "
            f"{height}x{width}; use a larger input_shape."
        )
