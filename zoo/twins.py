"""PyTorch twins of the zoo's MLP and S1 models, for `python -m zoo.bench MODEL --torch`.

Benchmark-only (`pip install -e ".[bench]"`; the default CI does not install PyTorch, so the
tests of this module skip there). Each twin computes the same function as the Keras model with
the same toggles, built from the same spec table: the same layers and trainable-parameter count,
the same padding (Keras's "same" pads a strided 3x3 convolution on the bottom and right only),
BatchNormalization with Keras's epsilon (1e-3) and momentum (0.99, PyTorch's 0.01), and its
modules named after the Keras layers (`s1_b1.c1_conv` is `s1_b1_c1_conv`). `copy_weights` loads
a Keras model's weights into its twin; the tests check that both then output the same logits.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import zoo
from zoo.models.vgg import SPECS

TWINS = ("mlp_mnist", "basic_cnn", "improved_cnn", "resnet_cnn", "vgg_a")
# Keras's BatchNormalization defaults; PyTorch's momentum weighs the new batch, Keras's the old.
_BN = {"eps": 1e-3, "momentum": 0.01}


def build_twin(model: str, toggles: dict[str, Any] | None = None) -> Any:
    """The PyTorch `nn.Module` twin of a zoo model (channels-first input, logits out).

    Raises:
        ValueError: No twin for `model`, or a toggle the twin does not mirror.
    """
    from torch import nn

    toggles = dict(toggles or {})
    # The model's L2 changes no layer: the twin's optimizer takes it (PyTorch's coupled
    # weight_decay is the same gradient as the Keras model's L2 penalty).
    supported = {"bn", "weight_decay"}
    if model not in TWINS or set(toggles) - supported:
        raise ValueError(
            f"No PyTorch twin for {model!r} with {toggles}; twins: {', '.join(TWINS)} "
            f"(toggles: {', '.join(sorted(supported))})."
        )
    # The Keras builder's own defaults and home shape: the twin copies no number of its own.
    info = zoo.describe(model)
    settings = {**info.toggles, **toggles}
    shape, classes = info.input_shape, info.num_classes
    if model == "mlp_mnist":
        layers, features = [("flatten", nn.Flatten())], int(np.prod(shape))
        for i, units in enumerate(settings["hidden"], start=1):
            layers += _dense(nn, f"fc{i}", features, units, settings["bn"], nn.LeakyReLU(0.01))
            features = units
        return nn.Sequential(OrderedDict([*layers, ("logits", nn.Linear(features, classes))]))
    if model == "resnet_cnn":
        return _resnet(nn, settings["bn"], settings["blocks"], settings["filters"], shape, classes)
    head = (settings["hidden"], settings["head_bn"], settings["dropout"])
    return _plain(nn, model, settings["bn"], *head, shape, classes)


def _conv(nn: Any, name: str, cin: int, cout: int, bn: bool, act: Any = None, **conv: Any) -> list:
    layers = [(f"{name}_conv", nn.Conv2d(cin, cout, **conv))]
    layers += [(f"{name}_bn", nn.BatchNorm2d(cout, **_BN))] if bn else []
    return layers + ([(f"{name}_act", act)] if act is not None else [])


def _dense(nn: Any, name: str, cin: int, units: int, bn: bool, act: Any) -> list:
    layers = [(name, nn.Linear(cin, units))]
    layers += [(f"{name}_bn", nn.BatchNorm1d(units, **_BN))] if bn else []
    return layers + [(f"{name}_act", act)]


def _plain(
    nn: Any, name: str, bn: bool, hidden: tuple, head_bn: bool, dropout: float,
    shape: tuple[int, int, int], classes: int,
) -> Any:  # fmt: skip
    layers, channels, size, stage, conv = [], shape[2], shape[0], 1, 1
    for item in SPECS[name]:
        if item == "M":
            layers.append((f"s{stage}_pool", nn.MaxPool2d(2, ceil_mode=True)))  # Keras "same"
            size, stage, conv = math.ceil(size / 2), stage + 1, 1
            continue
        layers += _conv(nn, f"s{stage}_{conv}", channels, item, bn, nn.ReLU(),
                        kernel_size=3, padding=1)  # fmt: skip
        channels, conv = item, conv + 1
    layers.append(("flatten", nn.Flatten()))
    features = channels * size * size
    for i, units in enumerate(hidden, start=1):
        layers += _dense(nn, f"fc{i}", features, units, head_bn, nn.ReLU())
        layers += [(f"fc{i}_drop", nn.Dropout(dropout))] if dropout else []
        features = units
    layers.append(("logits", nn.Linear(features, classes)))
    return nn.Sequential(OrderedDict(layers))


def _resnet(
    nn: Any, bn: bool, blocks: tuple[int, ...], filters: tuple[int, ...],
    shape: tuple[int, int, int], classes: int,
) -> Any:  # fmt: skip
    def conv(name: str, cin: int, cout: int, size: int, stride: int, act: bool) -> list:
        # Keras's "same" pads a strided 3x3 convolution by one row and column, bottom and right.
        pad = [(f"{name}_pad", nn.ZeroPad2d((0, 1, 0, 1)))] if stride == 2 and size == 3 else []
        relu = nn.ReLU() if act else None
        return pad + _conv(nn, name, cin, cout, bn, relu, kernel_size=size, stride=stride,
                           padding=0 if pad else size // 2, bias=not bn)  # fmt: skip

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(OrderedDict(
                conv("c1", cin, cout, 3, stride, True) + conv("c2", cout, cout, 3, 1, False)
            ))  # fmt: skip
            project = stride != 1 or cin != cout
            self.shortcut = nn.Sequential(
                OrderedDict(conv("proj", cin, cout, 1, stride, False) if project else [])
            )
            self.out = nn.ReLU()

        def forward(self, x: Any) -> Any:
            return self.out(self.body(x) + self.shortcut(x))

    layers = conv("stem", shape[2], filters[0], 3, 1, True)
    channels, size = filters[0], shape[0]
    for s, (count, width) in enumerate(zip(blocks, filters, strict=True), start=1):
        for b in range(1, count + 1):
            stride = 2 if s > 1 and b == 1 else 1
            layers.append((f"s{s}_b{b}", Block(channels, width, stride)))
            channels, size = width, math.ceil(size / stride)
    size = math.ceil(size / 2)  # the 2x2 average pool, "same" as in Keras
    layers += [("pool", nn.AvgPool2d(2, ceil_mode=True)), ("flatten", nn.Flatten()),
               ("logits", nn.Linear(channels * size * size, classes))]  # fmt: skip
    return nn.Sequential(OrderedDict(layers))


def _keras_name(module_path: str) -> str:
    # "s1_b1.body.c1_conv" -> "s1_b1_c1_conv": the twin's containers are not Keras layers.
    parts = [p for p in module_path.split(".") if p not in ("body", "shortcut")]
    return "_".join(parts)


def copy_weights(keras_model: Any, module: Any) -> None:
    """Copies a Keras model's weights into its PyTorch twin, so both compute the same logits.

    Convolution kernels go from Keras's (H, W, in, out) to PyTorch's (out, in, H, W), dense
    kernels are transposed, and BatchNormalization copies gamma, beta, the moving statistics,
    epsilon and momentum. Keras flattens a (H, W, C) feature map in that order, PyTorch a
    (C, H, W) one, so the rows of the dense kernel after the flatten are permuted to match.

    Args:
        keras_model: A zoo model, as `zoo.build` returns it.
        module: Its twin, as `build_twin` returns it for the same model and toggles.

    Raises:
        ValueError: A twin module without a Keras layer of its name, weights of another
            shape, or a Keras layer with weights that the twin lacks.
    """
    import keras
    import torch
    from torch import nn

    def put(target: Any, value: Any, where: str) -> None:
        value = torch.from_numpy(np.ascontiguousarray(keras.ops.convert_to_numpy(value)))
        if tuple(target.shape) != tuple(value.shape):
            raise ValueError(
                f"{where}: the twin's weight has shape {tuple(target.shape)}, the Keras "
                f"layer's (converted) {tuple(value.shape)}."
            )
        target.copy_(value)

    names = {layer.name for layer in keras_model.layers}
    flatten = keras_model.get_layer("flatten") if "flatten" in names else None
    copied = set()
    with torch.no_grad():
        for path, child in module.named_modules():
            if not isinstance(child, (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)):
                continue
            name = _keras_name(path)
            if name not in names:
                raise ValueError(f"The twin's {path!r} has no Keras layer {name!r}.")
            layer = keras_model.get_layer(name)
            if isinstance(child, nn.Conv2d):
                put(child.weight, keras.ops.transpose(layer.kernel, (3, 2, 0, 1)), name)
            elif isinstance(child, nn.Linear):
                kernel = layer.kernel
                if flatten is not None and layer.input is flatten.output:
                    height, width, channels = flatten.input.shape[1:]  # Keras: rows (h, w, c)
                    kernel = keras.ops.reshape(kernel, (height, width, channels, -1))
                    kernel = keras.ops.reshape(
                        keras.ops.transpose(kernel, (2, 0, 1, 3)), (height * width * channels, -1)
                    )  # PyTorch: rows (c, h, w)
                put(child.weight, keras.ops.transpose(kernel), name)
            else:
                put(child.weight, layer.gamma, name)
                put(child.running_mean, layer.moving_mean, name)
                put(child.running_var, layer.moving_variance, name)
                child.eps, child.momentum = layer.epsilon, 1.0 - layer.momentum
            if child.bias is not None:
                put(child.bias, layer.beta if hasattr(layer, "gamma") else layer.bias, name)
            copied.add(name)
    missed = {layer.name for layer in keras_model.layers if layer.weights} - copied
    if missed:
        raise ValueError(f"The twin has no module for the Keras layers {sorted(missed)}.")


def trainable_params(module: Any) -> int:
    """Trainable parameters of a PyTorch module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@dataclass(frozen=True)
class Setting:
    """How a twin trains: its device, autocast precision and memory layout.

    Attributes:
        precision: `float32`, or `mixed_bfloat16` / `mixed_float16` for `torch.autocast` to
            bfloat16 / float16 (float16 with a gradient scaler), as Keras's policies name them.
        channels_last: Convolution inputs and weights in NHWC memory order.
        device: `cpu` or `cuda`.
    """

    precision: str = "float32"
    channels_last: bool = False
    device: str = "cpu"

    def __str__(self) -> str:
        amp = {"mixed_bfloat16": "autocast bfloat16", "mixed_float16": "autocast float16"}
        parts = [amp.get(self.precision, "float32")]
        return " + ".join(parts + (["channels_last"] if self.channels_last else []))


def best_setting(precision: str, device: str = "cpu") -> Setting:
    """PyTorch's fastest sound setting on `device` where Keras's auto policy is `precision`.

    The same hardware rule picks both (`zoo.machine.choose_precision`): half precision where
    the CPU or GPU computes in it, with channels_last, the layout oneDNN's and cuDNN's fast
    convolutions take; float32 in PyTorch's default layout elsewhere.
    """
    return Setting(precision, precision != "float32", device)


def trainer(
    module: Any, shape: tuple[int, int, int], batch: int, optimizer: str, lr: float,
    label_smoothing: float = 0.0, weight_decay: float = 0.0, *, decoupled_decay: float = 0.0,
    momentum: float | None = None, rho: float = 0.99, setting: Setting | None = None,
) -> Callable[[int], None]:  # fmt: skip
    """A function `train(steps)` that trains a twin for `steps` steps on one random batch.

    It returns once the last step has finished; `zoo.bench` times it. `shape` is the Keras
    model's (H, W, C). The optimizer follows the run's settings as `zoo.train` builds Keras's:
    `weight_decay` is the model's L2 (PyTorch's coupled decay), `decoupled_decay` AdamW's,
    `momentum` None the optimizer's default (0.9 for momentum SGD, none for RMSprop).
    `setting` (default: float32 on the CPU) is the device, precision and layout.

    Raises:
        ValueError: A decoupled decay for an optimizer whose PyTorch class has none.
    """
    import torch

    setting = setting or Setting()
    device = torch.device(setting.device)
    module.to(device)
    # channels_last concerns convolutions only; an MLP's input stays as it is.
    layout = setting.channels_last and any(isinstance(m, torch.nn.Conv2d) for m in module.modules())
    if layout:
        module.to(memory_format=torch.channels_last)
    amp = {"mixed_bfloat16": torch.bfloat16, "mixed_float16": torch.float16}.get(setting.precision)
    scaler = torch.amp.GradScaler(device.type) if amp is torch.float16 else None

    if decoupled_decay and optimizer != "adamw":
        raise ValueError(
            f"the PyTorch twin has no decoupled weight decay for {optimizer}; "
            "compare with decoupled_decay=0 or optimizer adamw."
        )
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    height, width, channels = shape
    x = torch.from_numpy(rng.standard_normal((batch, channels, height, width), dtype=np.float32))
    x = x.to(device, memory_format=torch.channels_last if layout else torch.contiguous_format)
    y = torch.from_numpy(rng.integers(0, 10, batch)).to(device)
    wd = weight_decay
    beta = {"momentum": 0.9, "rmsprop": 0.0}.get(optimizer, 0.0) if momentum is None else momentum
    make = {"sgd": lambda p: torch.optim.SGD(p, lr, weight_decay=wd),
            "adam": lambda p: torch.optim.Adam(p, lr, weight_decay=wd),
            "momentum": lambda p: torch.optim.SGD(p, lr, momentum=beta, weight_decay=wd),
            "adamw": lambda p: torch.optim.AdamW(p, lr, weight_decay=decoupled_decay),
            "rmsprop": lambda p: torch.optim.RMSprop(p, lr, alpha=rho, momentum=beta,
                                                     weight_decay=wd)}  # fmt: skip
    opt = make[optimizer](module.parameters())
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    module.train()

    def train(steps: int) -> None:
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                loss = loss_fn(module(x), y)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
        loss.item()  # waits for the last step

    return train
