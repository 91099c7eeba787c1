"""The depth ablation of S3 on Tiny ImageNet: short / mid / long baselines with four toggles."""

from __future__ import annotations

from typing import Any, Literal

import keras

from zoo.layers import Activation, classifier, max_pool, residual_block, scaled
from zoo.registry import register

# Double-conv blocks each stage gains over the short baseline.
DEPTHS = {"short": 0, "mid": 1, "long": 2}


def _norm_names(toggles: dict[str, Any]) -> dict[str, Any]:
    """S3's `norm` (or `normalization`) normalized every layer: our `bn` and `head_bn`."""
    toggles = dict(toggles)
    for name in ("norm", "normalization"):
        if name in toggles:
            if {"bn", "head_bn"} & set(toggles):
                raise TypeError(f"give {name!r} or 'bn'/'head_bn', not both.")
            value = toggles.pop(name)
            toggles.update(bn=value, head_bn=value)
    return toggles


@register(
    dataset="tiny_imagenet",
    study="S3",
    aliases={"widths": "filters"},
    translate=_norm_names,
)
def tiny_baseline(
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    depth: Literal["short", "mid", "long"] = "short",
    bn: bool = False,
    head_bn: bool = False,
    dropout: float = 0.0,
    residual: bool = False,
    filters: tuple[int, ...] = (32, 64, 128, 256),
    width: float = 1.0,
    hidden: tuple[int, ...] = (512,),
    activation: Activation = "relu",
    weight_decay: float = 0.0,
    init: Literal["glorot_uniform", "he_normal"] = "glorot_uniform",
) -> keras.Model:
    """S3's baselines: per stage a conv, `depth`'s extra double-convs, and a 2x2 max-pool.

    Configuration: four stages at widths 32 / 64 / 128 / 256 (64x64 -> 4x4), each a conv3x3
    (+ BN) + ReLU followed by 0 (`short`), 1 (`mid`) or 2 (`long`) double-conv blocks, then
    flatten, dense 512 (+ dropout) and the classifier. `residual=True` turns the stage conv into a
    residual unit with a 1x1 projection and every double-conv into a basic block with an identity
    shortcut; S3's `all` is `bn=True, head_bn=True, dropout=0.5, residual=True` with plateau LR
    decay in the recipe. S3 reported 22.71 % test accuracy for the short baseline, 14.07 % for
    long, 43.02 % for short + all. The study drew its layers only in figures that did not
    survive; the widths here are ours.

    Args:
        input_shape: Input `(H, W, C)`.
        num_classes: Output logits.
        depth: `short`, `mid` or `long`.
        bn: BatchNormalization after every conv (S3's `norm` sets it and `head_bn`).
        head_bn: BatchNormalization after every hidden dense layer.
        dropout: Dropout rate after every hidden dense layer.
        residual: Shortcut connections around every conv unit.
        filters: Filters per stage, before `width` scaling (`widths`).
        width: Multiplier of every filter count.
        hidden: Hidden dense widths.
        activation: Activation of every conv and hidden layer.
        weight_decay: Weight decay of every kernel, as an L2 loss (see `zoo.layers`).
        init: Initializer of every kernel. With Glorot's the plain `long` net (20 ReLU
            convs, no BN) stays at chance under Adam: its signal shrinks layer by layer until
            only the logits' bias learns. He's keeps the signal's variance through ReLUs.

    Returns:
        The uncompiled model, outputting logits.
    """
    block = dict(residual=residual, bn=bn, activation=activation, weight_decay=weight_decay,
                 kernel_initializer=init)  # fmt: skip
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for s, count in enumerate(filters, start=1):
        count = scaled(count, width)
        # Convs keep their bias, as in S3's PyTorch layers, whether or not BN follows.
        x = residual_block(x, count, name=f"s{s}_b0", convs=1, use_bias=True, **block)
        for b in range(1, DEPTHS[depth] + 1):
            x = residual_block(x, count, name=f"s{s}_b{b}", convs=2, use_bias=True, **block)
        x = max_pool(x, name=f"s{s}_pool")
    outputs = classifier(
        x,
        num_classes,
        hidden=hidden,
        bn=head_bn,
        activation=activation,
        dropout=dropout,
        weight_decay=weight_decay,
        kernel_initializer=init,
    )
    return keras.Model(inputs, outputs, name="tiny_baseline")
