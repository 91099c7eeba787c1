"""Residual convnets with basic blocks (S1)."""

from __future__ import annotations

import keras
from keras import layers

from zoo.layers import Activation, classifier, conv_bn_act, residual_block, scaled
from zoo.registry import register


@register(dataset="cifar10", study="S1", aliases={"widths": "filters"})
def resnet_cnn(
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    residual: bool = True,
    bn: bool = True,
    dropout: float = 0.0,
    blocks: tuple[int, ...] = (2, 2, 2),
    filters: tuple[int, ...] = (64, 128, 256),
    width: float = 1.0,
    activation: Activation = "relu",
    weight_decay: float = 0.0,
) -> keras.Model:
    """S1's ResidualCNN: conv stem, stages of basic blocks, 2x2 average pool, dense.

    Configuration: stem conv3x3 64 (no bias) + BN + ReLU; three stages of two basic blocks at
    widths 64 / 128 / 256, stride 2 at the first block of stages 2 and 3 with a 1x1 conv + BN
    projection there, convs without bias; 2x2 average pooling of the 8x8 map, flatten, dense 10:
    exactly 2,816,074 trainable parameters, as the study printed. It reported 91.57 % CIFAR-10
    test accuracy (AdamW 1e-3, weight decay 5e-4, crop + flip).

    Args:
        input_shape: Input `(H, W, C)`.
        num_classes: Output logits.
        residual: Shortcut connections; False gives the same convs as a plain stack.
        bn: BatchNormalization after every conv (convs get a bias when it is off).
        dropout: Dropout rate before the dense layer.
        blocks: Basic blocks per stage.
        filters: Filters per stage (same length as `blocks`), before `width` scaling (`widths`).
        width: Multiplier of every filter count.
        activation: Activation after every block and the stem.
        weight_decay: Weight decay of every kernel, as an L2 loss (see `zoo.layers`).

    Returns:
        The uncompiled model, outputting logits.

    Raises:
        ValueError: If `blocks` and `filters` differ in length.
    """
    if len(blocks) != len(filters):
        raise ValueError(
            f"resnet_cnn: blocks {blocks} and filters {filters} must have the same length."
        )
    inputs = keras.Input(input_shape, name="image")
    x = conv_bn_act(
        inputs,
        scaled(filters[0], width),
        3,
        name="stem",
        bn=bn,
        activation=activation,
        use_bias=not bn,
        weight_decay=weight_decay,
    )
    for s, (count, stage) in enumerate(zip(blocks, filters, strict=True), start=1):
        for b in range(1, count + 1):
            x = residual_block(
                x,
                scaled(stage, width),
                name=f"s{s}_b{b}",
                strides=2 if (s > 1 and b == 1) else 1,
                residual=residual,
                bn=bn,
                activation=activation,
                use_bias=not bn,
                weight_decay=weight_decay,
            )
    x = layers.AveragePooling2D(2, padding="same", name="pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="drop")(x)
    outputs = classifier(x, num_classes, weight_decay=weight_decay)
    return keras.Model(inputs, outputs, name="resnet_cnn")
