"""Blocks shared by the model families: functions from a tensor to a tensor.

Conventions every family follows:
- `weight_decay` is the coefficient of PyTorch's SGD `weight_decay` and of CS231n's `reg`: the loss
  gains `weight_decay / 2 * sum(w ** 2)` over kernels (never biases or BN parameters), so its
  gradient is `weight_decay * w`.
- Pooling pads like `padding="same"`: on even sizes this equals PyTorch's floor pooling, and odd
  sizes (28 -> 14 -> 7 -> 4) keep every model usable on MNIST-sized input.
- `bn=True` puts BatchNormalization between the convolution (or dense layer) and the activation.
"""

from __future__ import annotations

from typing import Any, Literal

import keras
from keras import layers

Activation = Literal["relu", "leaky_relu", "sigmoid", "tanh", "elu", "gelu", "silu"]


def l2(weight_decay: float) -> keras.regularizers.Regularizer | None:
    """Returns the kernel regularizer for a `weight_decay` coefficient, or None for 0."""
    return keras.regularizers.L2(weight_decay / 2) if weight_decay else None


def scaled(channels: int, width: float) -> int:
    """Scales a channel count by a width multiplier, keeping at least one channel."""
    return max(1, round(channels * width))


def act(x: Any, activation: str, name: str) -> Any:
    """Applies an activation by name; `leaky_relu` uses PyTorch's slope of 0.01."""
    if activation == "leaky_relu":
        return layers.LeakyReLU(negative_slope=0.01, name=name)(x)
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
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
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
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
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
