"""Search spaces: plain functions from Keras Tuner hyperparameters to a run configuration.

    @space
    def mlp_mnist(hp: kt.HyperParameters) -> RunConfig:
        return recipe("mlp_mnist", lr=hp.Choice("lr", [0.1, 0.01, 0.001]), ...)

A space starts from its model's study recipe and returns the `RunConfig` one trial trains
through `zoo.train`, so a trial builds the registered model and fits it exactly as
`python -m zoo.train` does. Each hyperparameter is named after the recipe setting or builder
toggle it feeds (`lr`, `hidden`, `weight_decay` (the model's L2), `decoupled_decay` (the
optimizer's), `bn`, ...), and no two values of them give the same run.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import TYPE_CHECKING

from zoo.recipes import RunConfig, recipe

if TYPE_CHECKING:  # Keras Tuner (and TensorFlow) load when a space is first searched
    import keras_tuner as kt

Space = Callable[["kt.HyperParameters"], RunConfig]

SPACES: dict[str, Space] = {}


def space(fn: Space) -> Space:
    """Registers a search space under its function name."""
    SPACES[fn.__name__] = fn
    return fn


def list_spaces() -> list[str]:
    """Names of every registered search space, sorted."""
    return sorted(SPACES)


def get_space(name: str) -> Space:
    """The search space registered as `name`.

    Raises:
        ValueError: Unknown name, listing the valid ones.
    """
    if name in SPACES:
        return SPACES[name]
    close = difflib.get_close_matches(name, SPACES, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"Unknown space {name!r}.{hint} Valid spaces: {', '.join(list_spaces())}.")


def hyperparameters(name: str) -> kt.HyperParameters:
    """The hyperparameters a space declares, each at its default."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    get_space(name)(hp)
    return hp


# --- S2: MLP on MNIST ---------------------------------------------------------------------------

# S2 searched on a random 10 % of train for 20 epochs at batch 32.
_S2_SEARCH = dict(subset=0.1, epochs=20)


@space
def mlp_mnist(hp: kt.HyperParameters) -> RunConfig:
    """S2's grid: lr × hidden × weight decay, 27 points (`weight_decay` is the model's L2)."""
    return recipe(
        "mlp_mnist",
        lr=hp.Choice("lr", [1e-1, 1e-2, 1e-3]),
        model_kwargs=dict(
            hidden=(hp.Choice("hidden", [500, 1000, 2000], default=1000),),
            weight_decay=hp.Choice("weight_decay", [1e-2, 1e-3, 1e-4], default=1e-3),
        ),
        **_S2_SEARCH,
    )


@space
def mlp_mnist_gamma(hp: kt.HyperParameters) -> RunConfig:
    """S2's second sweep: the StepLR decay factor at its chosen point (lr 0.1, hidden 1000)."""
    return recipe(
        "mlp_mnist",
        gamma=hp.Choice("gamma", [1.0, 0.5, 0.1, 0.05], default=0.1),
        model_kwargs=dict(weight_decay=1e-3),
        **_S2_SEARCH,
    )


@space
def mlp_mnist_wide(hp: kt.HyperParameters) -> RunConfig:
    """S2's grid widened with its activation and optimizer choices, lr on a log scale."""
    return recipe(
        "mlp_mnist",
        optimizer=hp.Choice("optimizer", ["momentum", "sgd", "adam"]),
        lr=hp.Float("lr", 1e-4, 0.3, sampling="log", default=0.1),
        model_kwargs=dict(
            hidden=(hp.Choice("hidden", [500, 1000, 2000], default=1000),),
            activation=hp.Choice("activation", ["leaky_relu", "relu", "sigmoid", "tanh"]),
            weight_decay=hp.Choice("weight_decay", [1e-2, 1e-3, 1e-4, 0.0], default=1e-3),
        ),
        **_S2_SEARCH,
    )


# --- S0: CS231n convnets on CIFAR-10 -------------------------------------------------------------


@space
def deeper_convnet(hp: kt.HyperParameters) -> RunConfig:
    """S0's trial and error as a search: hidden_dim, weight_scale, reg, lr, batch norm, dropout.

    `weight_decay` is the model's L2 (S0's `reg`); `dropout` 0.2 and 0.5 are S0's keep ratios
    0.8 and 0.5.
    """
    return recipe(
        "deeper_convnet",
        lr=hp.Choice("lr", [1e-3, 5e-4, 1e-4], default=5e-4),
        model_kwargs=dict(
            hidden=(hp.Choice("hidden", [100, 128, 256, 512], default=256),),
            init_std=hp.Choice("init_std", [1e-3, 1e-2], default=1e-2),
            weight_decay=hp.Choice("weight_decay", [1e-3, 5e-4, 1e-4], default=5e-4),
            **_every_layer_bn(hp.Boolean("bn", default=True)),
            dropout=hp.Choice("dropout", [0.0, 0.2, 0.5]),
        ),
    )


def _every_layer_bn(on: bool) -> dict[str, bool]:
    """S0's use_batchnorm and S3's norm: batch norm after the convs and the dense head."""
    return {"bn": on, "head_bn": on}


# --- S1 / S4: VGG-A and the residual CNN ---------------------------------------------------------


def _s1(model: str, hp: kt.HyperParameters, bn_default: bool) -> RunConfig:
    return recipe(
        model,
        lr=hp.Float("lr", 1e-4, 1e-2, sampling="log", default=1e-3),
        decoupled_decay=hp.Choice("decoupled_decay", [0.0, 1e-4, 5e-4, 1e-3], default=5e-4),
        label_smoothing=hp.Choice("label_smoothing", [0.0, 0.1], default=0.0),
        model_kwargs=dict(bn=hp.Boolean("bn", default=bn_default)),
    )


@space
def vgg_a(hp: kt.HyperParameters) -> RunConfig:
    """VGG-A with and without BN (S1, S4): lr, decoupled weight decay, label smoothing, bn.

    The recipe's Adam with a decoupled decay is AdamW (Keras's Adam and AdamW share the rule).
    """
    return _s1("vgg_a", hp, bn_default=False)


@space
def resnet_cnn(hp: kt.HyperParameters) -> RunConfig:
    """S1's residual CNN: lr, AdamW's decoupled weight decay, label smoothing, bn."""
    return _s1("resnet_cnn", hp, bn_default=True)


# --- S4: GoogLeNet -------------------------------------------------------------------------------


@space
def inception_v1(hp: kt.HyperParameters) -> RunConfig:
    """S4's optimizer study: Adam / AdamW / RMSprop (alpha 0.99), lr, L2, the residual form.

    `weight_decay` is the model's L2 (S4's 1e-4, coupled, as PyTorch's Adam and RMSprop apply
    it). AdamW decays by S4's 1e-4 decoupled: without a decay it would be Adam, the same run.
    """
    optimizer = hp.Choice("optimizer", ["adam", "adamw", "rmsprop"])
    return recipe(
        "inception_v1",
        optimizer=optimizer,
        lr=hp.Choice("lr", [1e-3, 5e-4, 1e-4, 5e-5], default=1e-4),
        decoupled_decay=1e-4 if optimizer == "adamw" else 0.0,
        model_kwargs=dict(
            weight_decay=hp.Choice("weight_decay", [0.0, 1e-4], default=1e-4),
            residual=hp.Boolean("residual", default=False),
        ),
    )


# --- S3: depth ablation on Tiny ImageNet ---------------------------------------------------------


@space
def tiny_baseline(hp: kt.HyperParameters) -> RunConfig:
    """S3's 13-run ablation as a space: depth and its four toggles (decay is `schedule`)."""
    return recipe(
        "tiny_baseline",
        schedule=hp.Choice("schedule", ["constant", "plateau"]),
        model_kwargs=dict(
            depth=hp.Choice("depth", ["short", "mid", "long"]),
            **_every_layer_bn(hp.Boolean("bn", default=False)),
            dropout=hp.Choice("dropout", [0.0, 0.5]),
            residual=hp.Boolean("residual", default=False),
        ),
    )
