"""How a run compiles its model: optimizer, loss, metrics and steps per call."""

from __future__ import annotations

import contextlib
import math

import keras

from zoo import optimizers
from zoo.recipes import DEFAULT_MOMENTUM, RunConfig


def compile_model(
    model: keras.Model, config: RunConfig, steps_per_execution: int | None = None
) -> keras.Model:
    """Compiles `model` the way a run of `config` does (optimizer, loss, accuracy, XLA).

    `steps_per_execution` defaults to the config's, or 1 where that is 0 (chosen per run).
    """
    model.compile(
        optimizer=make_optimizer(config),
        loss=make_loss(config),
        metrics=["accuracy"],
        jit_compile=config.jit,
        steps_per_execution=steps_per_execution or config.steps_per_execution or 1,
    )
    return model


def forward_flops(model: keras.Model) -> int:
    """Floating-point operations of one image's forward pass through the convolution and dense
    layers (2 per multiply-add); pooling, normalization and activations are not counted.

    A training step costs about three times this per image: the forward pass and the two
    gradients, of the layer inputs and of the weights.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += forward_flops(layer)
            continue
        kernel = getattr(layer, "kernel", None)
        if kernel is None or not hasattr(kernel, "shape") or len(kernel.shape) < 2:
            continue
        with contextlib.suppress(AttributeError, ValueError):  # a layer called more than once
            outputs = math.prod(layer.output.shape[1:])
            if isinstance(layer, keras.layers.DepthwiseConv2D):
                per_output = math.prod(kernel.shape[:2])
            else:
                per_output = math.prod(kernel.shape) // kernel.shape[-1]
            total += 2 * outputs * per_output
    return total


def forward_activations(model: keras.Model) -> int:
    """Values one image's forward pass writes: the output elements of every layer.

    What the FLOP count misses: batch norm, activations, pooling and additions move these values
    through memory at a rate of their own, which decides the time of thin nets over large
    images (a quarter-width net on 64x64 Tiny ImageNet) where their arithmetic is small.

    Returns:
        The count for a functional model, its nested models included; a layer called more
        than once counts once (Keras keeps its first call's output), and a layer never called
        in a graph (a subclassed model's) counts nothing.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += forward_activations(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            with contextlib.suppress(AttributeError, ValueError):  # never called in a graph
                outputs = layer.output
                for output in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
                    total += math.prod(d or 1 for d in output.shape[1:])
    return total


# Work per call into the backend that hides its fixed cost: about 40 ms on the measured CPU.
CALL_FLOPS = 4e9
MAX_STEPS_PER_EXECUTION = 32


def steps_per_execution(
    model: keras.Model, batch_size: int, steps_per_epoch: int, gpu: bool | None = None
) -> int:
    """Training steps per call for a run: enough for `CALL_FLOPS` of work, at most 32.

    Keras runs a fixed number of steps per call and would carry the last call of an epoch into
    the next epoch's batches, so this is the largest divisor of `steps_per_epoch` that fits.
    On a GPU (`gpu` None: whether TensorFlow sees one) every model here is far below the work
    that hides a call's fixed cost: on an H200, S1's BasicCNN took 3.6 ms a step at float32 and
    3.7 at bfloat16, the same time for half the arithmetic, so the most steps are taken.
    """
    if gpu is None:
        import tensorflow as tf

        gpu = bool(tf.config.list_logical_devices("GPU"))
    step = 3 * forward_flops(model) * batch_size
    wanted = MAX_STEPS_PER_EXECUTION if not step or gpu else math.ceil(CALL_FLOPS / step)
    wanted = min(wanted, MAX_STEPS_PER_EXECUTION, steps_per_epoch)
    return max(n for n in range(1, wanted + 1) if steps_per_epoch % n == 0)


def make_optimizer(config: RunConfig) -> keras.optimizers.Optimizer:
    """The Keras optimizer a run configuration names.

    `momentum` None is the optimizer's default (`zoo.recipes.DEFAULT_MOMENTUM`): 0.9 for
    `momentum`, none for `rmsprop`.
    """
    wd = config.decoupled_decay or None
    momentum = DEFAULT_MOMENTUM.get(config.optimizer, 0.0)
    momentum = momentum if config.momentum is None else config.momentum
    if config.optimizer == "sgd":
        return optimizers.SGD(config.lr, weight_decay=wd)
    if config.optimizer == "momentum":
        return optimizers.SGD(config.lr, momentum=momentum, weight_decay=wd)
    if config.optimizer == "adam":
        return optimizers.Adam(config.lr, weight_decay=wd)
    if config.optimizer == "muon":
        return optimizers.Muon(config.lr, momentum=momentum, other_lr=config.other_lr or None,
                               head_lr=config.head_lr or None, weight_decay=wd)  # fmt: skip
    if config.optimizer == "adamw":
        return optimizers.AdamW(config.lr, weight_decay=config.decoupled_decay)
    return keras.optimizers.RMSprop(config.lr, rho=config.rho, momentum=momentum, weight_decay=wd)


def make_loss(config: RunConfig) -> keras.losses.Loss:
    """Cross-entropy on logits; one-hot labels when label smoothing is on."""
    if config.label_smoothing:
        return keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=config.label_smoothing
        )
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
