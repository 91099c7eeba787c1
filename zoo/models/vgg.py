"""Plain conv stacks, VGG style: 3x3 convs and 2x2 max-pools, then dense layers (S1, S4).

One family builder, `plain_cnn`; its variants are rows of `SPECS` (an int is a 3x3 conv of that
many filters before `width` scaling, "M" a 2x2 max-pool) with their own defaults over the
family's one signature.
"""

from __future__ import annotations

from typing import Any

import keras

from zoo.layers import Activation, classifier, conv_bn_act, max_pool, scaled
from zoo.registry import register, variant

SPECS: dict[str, tuple[Any, ...]] = {
    "basic_cnn": (32, "M", 64, "M", 128, "M"),
    "improved_cnn": (64, 128, "M", 256, 256, "M", 512, 512, "M"),
    "vgg_a": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
}


def plain_cnn(
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    spec: str,
    bn: bool = False,
    head_bn: bool = False,
    dropout: float = 0.0,
    hidden: tuple[int, ...] = (512,),
    width: float = 1.0,
    activation: Activation = "relu",
    weight_decay: float = 0.0,
) -> keras.Model:
    """A plain conv stack: the convs and pools of `SPECS[spec]`, then dense layers.

    Args:
        input_shape: Input `(H, W, C)`.
        num_classes: Output logits.
        bn: BatchNormalization after every conv, before the activation.
        head_bn: BatchNormalization after every hidden dense layer.
        dropout: Dropout rate after every hidden dense layer.
        hidden: Hidden dense widths.
        width: Multiplier of every conv's filter count.
        activation: Activation of every conv and hidden dense layer.
        weight_decay: Weight decay of every kernel, as an L2 loss (see `zoo.layers`).

    Returns:
        The uncompiled model, outputting logits.
    """
    inputs = keras.Input(input_shape, name="image")
    x, stage, conv = inputs, 1, 1
    for item in SPECS[spec]:
        if item == "M":
            x = max_pool(x, name=f"s{stage}_pool")
            stage, conv = stage + 1, 1
            continue
        x = conv_bn_act(
            x,
            scaled(item, width),
            3,
            name=f"s{stage}_{conv}",
            bn=bn,
            activation=activation,
            weight_decay=weight_decay,
        )
        conv += 1
    outputs = classifier(
        x,
        num_classes,
        hidden=hidden,
        bn=head_bn,
        activation=activation,
        dropout=dropout,
        weight_decay=weight_decay,
    )
    return keras.Model(inputs, outputs, name=spec)


basic_cnn = register(dataset="cifar10", study="S1")(
    variant(
        plain_cnn,
        "basic_cnn",
        """S1's BasicCNN: [conv3x3 -> ReLU -> 2x2 pool] x (32, 64, 128) -> fc 2048-512 -> fc 10.

    Configuration: convs with bias and "same" padding, flatten (4x4x128 = 2048), dense 512 + ReLU,
    dense 10: exactly 1,147,466 trainable parameters, as the study printed. It reported 82.91 %
    CIFAR-10 test accuracy (AdamW 1e-3, weight decay 5e-4, crop + flip).""",
        fixed={"spec": "basic_cnn"},
        hidden=(512,),
    )
)

improved_cnn = register(dataset="cifar10", study="S1")(
    variant(
        plain_cnn,
        "improved_cnn",
        """S1's ImprovedCNN: six conv3x3 + BN + ReLU, a pool after every second, fc 1024 + BN.

    Configuration: convs with bias at widths 64, 128 | 256, 256 | 512, 512 with a 2x2 max-pool
    after each pair, flatten (4x4x512), dense 1024 + BN + ReLU + dropout 0.5, dense 10: exactly
    12,906,250 trainable parameters, as the study printed. It reported 92.61 % CIFAR-10 test
    accuracy, the study's best (label smoothing 0.1, AdamW 1e-3, crop + flip).""",
        fixed={"spec": "improved_cnn"},
        bn=True,
        head_bn=True,
        dropout=0.5,
        hidden=(1024,),
    )
)

vgg_a = register(dataset="cifar10", study="S1")(
    variant(
        plain_cnn,
        "vgg_a",
        """VGG-A (VGG-11) for 32x32: conv 64-M-128-M-256-256-M-512-512-M-512-512-M, 3 dense layers.

    Configuration of S1 and S4: 3x3 convs with bias, five 2x2 max-pools (32x32 -> 1x1x512),
    dense 512 + ReLU, dense 512 + ReLU, dense 10 (9,750,922 trainable parameters). `bn=True`
    puts BN after every conv before the ReLU (S1's VGG-A-BN); S4's variant also normalizes the
    dense layers (`head_bn=True`). Reported CIFAR-10 test accuracy: VGG-A about 84 %, VGG-A-BN
    about 89 % (S1).""",
        fixed={"spec": "vgg_a"},
        hidden=(512, 512),
    )
)
