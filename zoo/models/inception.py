"""GoogLeNet (Inception v1) adapted to small images, with an optional residual form (S4)."""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from zoo.layers import Activation, act, classifier, conv_bn_act, max_pool, scaled
from zoo.registry import register

# GoogLeNet's blocks 3a..5b: (1x1, (3x3 reduce, 3x3), (5x5 reduce, 5x5), pool proj); "M" is a
# 3x3 stride-2 max-pool.
SPEC: tuple[Any, ...] = (
    ("3a", 64, (96, 128), (16, 32), 32),
    ("3b", 128, (128, 192), (32, 96), 64),
    "M",
    ("4a", 192, (96, 208), (16, 48), 64),
    ("4b", 160, (112, 224), (24, 64), 64),
    ("4c", 128, (128, 256), (24, 64), 64),
    ("4d", 112, (144, 288), (32, 64), 64),
    ("4e", 256, (160, 320), (32, 128), 128),
    "M",
    ("5a", 256, (160, 320), (32, 128), 128),
    ("5b", 384, (192, 384), (48, 128), 128),
)


def _inception_block(
    x: Any,
    c1: int,
    c3: tuple[int, int],
    c5: tuple[int, int],
    pool_proj: int,
    *,
    name: str,
    residual: bool,
    residual_scale: float,
    **conv: Any,
) -> Any:
    """Four parallel branches concatenated; with `residual`, added to the (projected) input.

    The residual form follows Inception-ResNet (Szegedy et al. 2017): the branches' sum is scaled
    by `residual_scale` before the addition, which that paper found necessary for stability.
    """
    b1 = conv_bn_act(x, c1, 1, name=f"{name}_1x1", **conv)
    b3 = conv_bn_act(x, c3[0], 1, name=f"{name}_3x3r", **conv)
    b3 = conv_bn_act(b3, c3[1], 3, name=f"{name}_3x3", **conv)
    b5 = conv_bn_act(x, c5[0], 1, name=f"{name}_5x5r", **conv)
    b5 = conv_bn_act(b5, c5[1], 5, name=f"{name}_5x5", **conv)
    bp = max_pool(x, name=f"{name}_pool", pool_size=3, strides=1)
    bp = conv_bn_act(bp, pool_proj, 1, name=f"{name}_poolproj", **conv)
    out = layers.Concatenate(name=f"{name}_concat")([b1, b3, b5, bp])
    if not residual:
        return out
    channels = out.shape[-1]
    shortcut = x
    if x.shape[-1] != channels:
        shortcut = conv_bn_act(x, channels, 1, name=f"{name}_proj", **{**conv, "activation": None})
    out = layers.Rescaling(residual_scale, name=f"{name}_scale")(out)
    out = layers.Add(name=f"{name}_add")([shortcut, out])
    return act(out, conv["activation"], f"{name}_out")


@register(
    dataset="cifar10",
    study="S4",
)
def inception_v1(
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    residual: bool = False,
    residual_scale: float = 0.2,
    bn: bool = False,
    dropout: float = 0.0,
    width: float = 1.0,
    stem: tuple[int, ...] = (64, 192),
    activation: Activation = "relu",
    weight_decay: float = 0.0,
) -> keras.Model:
    """GoogLeNet without auxiliary heads, adapted to 32x32 input (S4).

    Configuration: the ImageNet stem (7x7/2 conv, pools) would shrink 32x32 to 4x4 before the
    first Inception block, so two conv3x3 of 64 and 192 filters replace it, as in S4's code
    (5,971,962 trainable parameters, S4's count; 7,954,986 residual); then GoogLeNet's nine
    blocks 3a-5b with their published widths and 3x3/2 max-pools after 3b and 4e (32 -> 16 -> 8),
    global average pooling to 1024 features and a dense layer. S4 trained it with Adam lr 1e-4
    for 200 epochs (85 %); its residual form with scaled branches reached about 87 %.

    Args:
        input_shape: Input `(H, W, C)`.
        num_classes: Output logits.
        residual: Add each block's input (1x1-projected where widths differ) to its output.
        residual_scale: Factor applied to the branches before the residual addition.
        bn: BatchNormalization after every conv, before the activation.
        dropout: Dropout rate before the dense layer (GoogLeNet used 0.4).
        width: Multiplier of every filter count.
        stem: Filters of each stem conv3x3, before `width` scaling (`(192,)`: one conv).
        activation: Activation after every conv.
        weight_decay: Weight decay of every kernel, as an L2 loss (see `zoo.layers`).

    Returns:
        The uncompiled model, outputting logits.
    """
    conv = dict(bn=bn, activation=activation, use_bias=not bn, weight_decay=weight_decay)
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for i, filters in enumerate(stem, start=1):
        x = conv_bn_act(x, scaled(filters, width), 3, name=f"stem{i}", **conv)
    for i, item in enumerate(SPEC):
        if item == "M":
            x = max_pool(x, name=f"pool{i}", pool_size=3, strides=2)
            continue
        name, c1, c3, c5, cp = item
        x = _inception_block(
            x,
            scaled(c1, width),
            (scaled(c3[0], width), scaled(c3[1], width)),
            (scaled(c5[0], width), scaled(c5[1], width)),
            scaled(cp, width),
            name=f"inc{name}",
            residual=residual,
            residual_scale=residual_scale,
            **conv,
        )
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = layers.Dropout(dropout, name="drop")(x)
    outputs = classifier(x, num_classes, weight_decay=weight_decay)
    return keras.Model(inputs, outputs, name="inception_v1")
