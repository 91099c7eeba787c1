"""LeNet-5-style convnets (S2)."""

from __future__ import annotations

import keras

from zoo.layers import Activation, classifier, conv_bn_act, max_pool
from zoo.registry import register


@register(dataset="mnist", study="S2", aliases={"channels": "filters"})
def lenet(
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    filters: tuple[int, ...] = (6, 16),
    kernels: tuple[int, ...] = (5, 5),
    hidden: tuple[int, ...] = (128, 64),
    activation: Activation = "leaky_relu",
    weight_decay: float = 1e-3,
    bn: bool = False,
    head_bn: bool = False,
    dropout: float = 0.0,
) -> keras.Model:
    """LeNet-5-like: [conv (no padding) -> act -> 2x2 max-pool] per channel, then dense (S2).

    Defaults are S2's CNN: conv5x5(6) and conv5x5(16) without padding, linear 256-128-64-10,
    leaky ReLU, weight decay 1e-3 everywhere; it reported 98.36 % MNIST test accuracy. On 28x28
    input the flattened features are 4x4x16 = 256, as in the study.

    Args:
        input_shape: Input `(H, W, C)`.
        num_classes: Output logits.
        filters: Filters of each conv layer (`channels`).
        kernels: Kernel size of each conv layer (same length as `filters`).
        hidden: Hidden dense widths after flattening.
        activation: Activation after every conv and hidden dense layer.
        weight_decay: Weight decay of every kernel.
        bn: BatchNormalization after every conv.
        head_bn: BatchNormalization after every hidden dense layer.
        dropout: Dropout rate after each hidden dense layer.

    Returns:
        The uncompiled model, outputting logits.

    Raises:
        ValueError: If `filters` and `kernels` differ in length, or the input is too small.
    """
    if len(filters) != len(kernels):
        raise ValueError(
            f"lenet: filters {filters} and kernels {kernels} must have the same length."
        )
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for i, (count, size) in enumerate(zip(filters, kernels, strict=True), start=1):
        x = conv_bn_act(
            x,
            count,
            size,
            name=f"conv{i}",
            padding="valid",
            bn=bn,
            activation=activation,
            weight_decay=weight_decay,
        )
        x = max_pool(x, name=f"pool{i}")
    outputs = classifier(
        x,
        num_classes,
        hidden=hidden,
        bn=head_bn,
        activation=activation,
        dropout=dropout,
        weight_decay=weight_decay,
    )
    return keras.Model(inputs, outputs, name="lenet")
