"""CS231n-style convnets on CIFAR-10 (S0).

Both builders take the study's CS231n argument names too: `num_filters`, `filter_size`,
`hidden_dim`, `weight_scale`, `reg`, `use_batchnorm` (our `bn` and `head_bn`), `use_dropout`
and `dropout_keep_ratio`.
"""

from __future__ import annotations

from typing import Any

import keras

from zoo.layers import Activation, classifier, conv_bn_act, max_pool
from zoo.registry import register

_ALIASES = {
    "num_filters": "filters",
    "filter_size": "kernel_size",
    "hidden_dim": "hidden",
    "weight_scale": "init_std",
    "reg": "weight_decay",
}


def _cs231n_names(toggles: dict[str, Any]) -> dict[str, Any]:
    """CS231n's `use_batchnorm` normalized every layer (our `bn` and `head_bn`), and it gives
    dropout as `use_dropout` plus a keep probability, where we take a drop rate."""
    toggles = dict(toggles)
    if "use_batchnorm" in toggles:
        if {"bn", "head_bn"} & set(toggles):
            raise TypeError("give 'use_batchnorm' or 'bn'/'head_bn', not both.")
        value = toggles.pop("use_batchnorm")
        toggles.update(bn=value, head_bn=value)
    use = toggles.pop("use_dropout", None)
    keep = toggles.pop("dropout_keep_ratio", None)
    if use is None and keep is None:
        return toggles
    if "dropout" in toggles:
        raise TypeError("give 'dropout' or 'use_dropout'/'dropout_keep_ratio', not both.")
    if use is False:
        toggles["dropout"] = 0.0
    else:
        toggles["dropout"] = 1.0 - (0.5 if keep is None else keep)
    return toggles


def _cs231n(
    name: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    filters: tuple[int, ...],
    kernel_size: int,
    hidden: tuple[int, ...],
    init_std: float | None,
    weight_decay: float,
    activation: str,
    bn: bool,
    head_bn: bool,
    dropout: float,
) -> keras.Model:
    """[conv -> (BN) -> act] per filter count -> 2x2 max-pool -> affine -> (BN) -> act -> affine."""
    init = "glorot_uniform" if init_std is None else keras.initializers.RandomNormal(0.0, init_std)
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for i, width in enumerate(filters, start=1):
        x = conv_bn_act(
            x,
            width,
            kernel_size,
            name=f"conv{i}",
            bn=bn,
            activation=activation,
            weight_decay=weight_decay,
            kernel_initializer=init,
        )
    x = max_pool(x, name="pool1")
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
    return keras.Model(inputs, outputs, name=name)


@register(
    dataset="cifar10",
    study="S0",
    aliases=_ALIASES,
    translate=_cs231n_names,
)
def three_layer_convnet(
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    filters: tuple[int, ...] = (32,),
    kernel_size: int = 7,
    hidden: tuple[int, ...] = (100,),
    init_std: float | None = 1e-3,
    weight_decay: float = 0.0,
    activation: Activation = "relu",
    bn: bool = False,
    head_bn: bool = False,
    dropout: float = 0.0,
) -> keras.Model:
    """CS231n ThreeLayerConvNet: conv -> ReLU -> 2x2 max-pool -> affine -> ReLU -> affine (S0).

    Defaults are CS231n's: 32 filters of 7x7 with "same" padding, hidden 100, weights drawn from
    N(0, 1e-3), no regularization.

    Args:
        input_shape: Input `(H, W, C)`.
        num_classes: Output logits.
        filters: Filters of each conv layer before the pool (`num_filters`); CS231n's has one.
        kernel_size: Conv kernel size (`filter_size`).
        hidden: Hidden affine widths (`hidden_dim`).
        init_std: Std of the N(0, std) weight init (`weight_scale`); None: Glorot uniform.
        weight_decay: L2 coefficient `reg` (loss += reg / 2 * sum(w ** 2)).
        activation: Activation of the conv and hidden layers.
        bn: BatchNormalization after every conv (`use_batchnorm` sets it and `head_bn`).
        head_bn: BatchNormalization after every hidden affine layer.
        dropout: Dropout rate after the hidden layer.

    Returns:
        The uncompiled model, outputting logits.
    """
    return _cs231n(
        "three_layer_convnet",
        input_shape,
        num_classes,
        filters=filters,
        kernel_size=kernel_size,
        hidden=hidden,
        init_std=init_std,
        weight_decay=weight_decay,
        activation=activation,
        bn=bn,
        head_bn=head_bn,
        dropout=dropout,
    )


@register(
    dataset="cifar10",
    study="S0",
    aliases=_ALIASES,
    translate=_cs231n_names,
)
def deeper_convnet(
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    filters: tuple[int, ...] = (32, 64),
    kernel_size: int = 3,
    hidden: tuple[int, ...] = (100,),
    init_std: float | None = 1e-3,
    weight_decay: float = 1e-3,
    activation: Activation = "relu",
    bn: bool = False,
    head_bn: bool = False,
    dropout: float = 0.0,
) -> keras.Model:
    """S0's DeeperConvNet: [conv -> (BN) -> ReLU] x2 -> pool -> affine -> (BN) -> ReLU -> affine.

    Defaults are the study's baseline (filters (32, 64), 3x3, hidden 100, N(0, 1e-3), reg 1e-3,
    no BN, no dropout), which reported 63.2 % CIFAR-10 test accuracy. Its final model, hidden 256,
    weight_scale 1e-2, reg 5e-4 and batch norm, reported 69.2 %; the wider variant is
    `filters=(64, 128)`. BN and dropout together collapsed in the study (13.8 %).

    Args:
        input_shape: Input `(H, W, C)`.
        num_classes: Output logits.
        filters: Filters of each conv layer before the pool (`num_filters`).
        kernel_size: Conv kernel size (`filter_size`).
        hidden: Hidden affine widths (`hidden_dim`).
        init_std: Std of the N(0, std) weight init (`weight_scale`); None: Glorot uniform.
        weight_decay: L2 coefficient `reg` (loss += reg / 2 * sum(w ** 2)).
        activation: Activation of the conv and hidden layers.
        bn: BatchNormalization after every conv (`use_batchnorm` sets it and `head_bn`).
        head_bn: BatchNormalization after every hidden affine layer.
        dropout: Dropout rate after the hidden layer (`1 - dropout_keep_ratio`).

    Returns:
        The uncompiled model, outputting logits.
    """
    return _cs231n(
        "deeper_convnet",
        input_shape,
        num_classes,
        filters=filters,
        kernel_size=kernel_size,
        hidden=hidden,
        init_std=init_std,
        weight_decay=weight_decay,
        activation=activation,
        bn=bn,
        head_bn=head_bn,
        dropout=dropout,
    )
