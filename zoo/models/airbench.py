"""S5's net: airbench94 (Jordan 2024), the fastest known CIFAR-10 recipe to 94 %.

A whitening first conv, three conv-pool-BN-GELU-conv-BN-GELU blocks and a scaled linear head.
Each of its architectural tricks is a toggle whose default is the full recipe, so S5's ladder
turns them on one at a time.
"""

from __future__ import annotations

from typing import Any, Literal

import keras
from keras import layers

from zoo.layers import (
    Activation,
    BatchNormalization,
    PartialIdentity,
    Whitening,
    act,
    conv_bn_act,
    scaled,
)
from zoo.registry import register


def _block(
    x: Any, filters: int, *, name: str, dirac: bool, bn: dict[str, Any], activation: str
) -> Any:
    """conv3x3 -> max-pool 2 -> BN -> act -> conv3x3 -> BN -> act, convs without bias."""
    for i in (1, 2):
        x = layers.Conv2D(
            filters, 3, padding="same", use_bias=False, name=f"{name}_c{i}_conv",
            kernel_initializer=PartialIdentity() if dirac else "glorot_uniform",
        )(x)  # fmt: skip
        if i == 1:
            # PyTorch's floor pooling (31 -> 15 -> 7 -> 3), as airbench's sizes assume.
            x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
        x = BatchNormalization(name=f"{name}_c{i}_bn", **bn)(x)
        x = act(x, activation, f"{name}_c{i}_act")
    return x


@register(dataset="cifar10", study="S5", aliases={"widths": "filters"})
def airbench(
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    whiten: bool = True,
    dirac: bool = True,
    bn_scale: bool = False,
    bn_momentum: float = 0.6,
    filters: tuple[int, ...] = (64, 256, 256),
    width: float = 1.0,
    head_scale: float = 1 / 256,
    head_init: Literal["unit", "glorot_uniform"] = "unit",
    activation: Activation = "gelu",
) -> keras.Model:
    """airbench94's net (Jordan, arXiv 2404.00498; 94.01 % on CIFAR-10 with its recipe).

    Configuration: a 2x2 valid conv to 24 channels (32x32 -> 31x31) and GELU, then three
    blocks of widths 64 / 256 / 256, each conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 ->
    BN -> GELU (31 -> 15 -> 7 -> 3), a 3x3 max-pool, and a bias-free linear head whose
    weights start at unit std, times 1/256 (airbench94_muon's; airbench94's SGD form scales by
    1/9). Every default is airbench94's, except BN's epsilon: 1e-5 against its 1e-12, the floor of
    TensorFlow's fused kernel, which no batch of real activations comes near.

    Args:
        input_shape: Input `(H, W, C)`.
        num_classes: Output logits.
        whiten: The first conv's filters whiten its 2x2 patches, set from the training images
            before training (`zoo.layers.Whitening`) and frozen; False: a trained 2x2 conv
            followed by BN, airbench's ablation baseline.
        dirac: Each block conv starts as the identity on its first input-channels filters
            (`zoo.layers.PartialIdentity`); False: Glorot's init.
        bn_scale: Learn BN's scale; airbench keeps it at 1 and learns only the offset.
        bn_momentum: Moving-statistics momentum, Keras's convention (PyTorch's 0.4 is 0.6).
        filters: Filters of each block (`widths`), before `width` scaling.
        width: Multiplier of every block's filters.
        head_scale: Constant multiplying the logits. With the head's weights at unit std, it
            sets how fast the head learns against its rate (`RunConfig.head_lr`).
        head_init: The head's initial weights: `unit` (uniform, std 1, airbench94_muon's) or
            Keras's `glorot_uniform` (with `head_scale=1/9`, airbench94's SGD form and this
            builder's defaults before the Muon form).
        activation: Activation of every layer.

    Returns:
        The uncompiled model, outputting logits.
    """
    bn = dict(momentum=bn_momentum, epsilon=1.001e-5, scale=bn_scale)
    inputs = keras.Input(input_shape, name="image")
    channels = 2 * 2 * 2 * input_shape[-1]
    if whiten:
        x = Whitening(2, name="whiten")(inputs)
        x = act(x, activation, "whiten_act")
    else:
        x = conv_bn_act(
            inputs, channels, 2, name="stem", padding="valid", bn=False, activation=None
        )
        x = BatchNormalization(name="stem_bn", **bn)(x)
        x = act(x, activation, "stem_act")
    for i, count in enumerate(filters, start=1):
        x = _block(x, scaled(count, width), name=f"b{i}", dirac=dirac, bn=bn,
                   activation=activation)  # fmt: skip
    x = layers.GlobalMaxPooling2D(name="pool")(x)  # 3x3 -> 1x1, PyTorch's MaxPool2d(3)
    x = layers.Dense(
        num_classes, use_bias=False, name="logits_unscaled",
        kernel_initializer=(
            keras.initializers.RandomUniform(-(3**0.5), 3**0.5) if head_init == "unit"
            else head_init
        ),
    )(x)  # fmt: skip
    outputs = layers.Rescaling(head_scale, name="logits")(x)
    return keras.Model(inputs, outputs, name="airbench")
