"""PyTorch twins of the zoo's MLP and S1 models, for `python -m zoo.bench MODEL --torch`.

Benchmark-only (`pip install torch`): each twin has the same layers and exactly the same
trainable-parameter count as the Keras model with its default toggles, built from the same
spec table, so the two frameworks' training speed can be compared side by side in one run.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import numpy as np

from zoo.models.vgg import SPECS

TWINS = ("mlp_mnist", "basic_cnn", "improved_cnn", "resnet_cnn", "vgg_a")


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
    if model == "mlp_mnist":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 1000), nn.LeakyReLU(0.01),
                             nn.Linear(1000, 10))  # fmt: skip
    if model == "resnet_cnn":
        return _resnet(nn)
    head = {"basic_cnn": ((512,), False, 0.0), "improved_cnn": ((1024,), True, 0.5),
            "vgg_a": ((512, 512), False, 0.0)}[model]  # fmt: skip
    bn = toggles.get("bn", model == "improved_cnn")
    return _plain(nn, model, bn, *head)


def _plain(nn: Any, name: str, bn: bool, hidden: tuple, head_bn: bool, dropout: float) -> Any:
    layers, channels, size = [], 3, 32
    for item in SPECS[name]:
        if item == "M":
            layers.append(nn.MaxPool2d(2, ceil_mode=True))  # Keras "same" pooling
            size = math.ceil(size / 2)
            continue
        layers += [nn.Conv2d(channels, item, 3, padding=1)]
        layers += [nn.BatchNorm2d(item)] if bn else []
        layers += [nn.ReLU()]
        channels = item
    layers.append(nn.Flatten())
    features = channels * size * size
    for units in hidden:
        layers.append(nn.Linear(features, units))
        layers += [nn.BatchNorm1d(units)] if head_bn else []
        layers.append(nn.ReLU())
        layers += [nn.Dropout(dropout)] if dropout else []
        features = units
    layers.append(nn.Linear(features, 10))
    return nn.Sequential(*layers)


def _resnet(nn: Any) -> Any:
    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
            )  # fmt: skip
            self.shortcut = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                if stride != 1 or cin != cout
                else nn.Identity()
            )
            self.act = nn.ReLU()

        def forward(self, x: Any) -> Any:
            return self.act(self.body(x) + self.shortcut(x))

    layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    channels = 64
    for stage, width in enumerate((64, 128, 256)):
        for block in range(2):
            layers.append(Block(channels, width, 2 if stage and not block else 1))
            channels = width
    layers += [nn.AvgPool2d(2), nn.Flatten(), nn.Linear(256 * 4 * 4, 10)]
    return nn.Sequential(*layers)


def trainable_params(module: Any) -> int:
    """Trainable parameters of a PyTorch module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def measure_twin(
    module: Any, shape: tuple[int, int, int], batch: int, steps: int, windows: int,
    optimizer: str, lr: float, label_smoothing: float = 0.0, weight_decay: float = 0.0,
) -> dict[str, float]:  # fmt: skip
    """Training images/s of a twin: the median of `windows` timed windows after a warm-up.

    `weight_decay` is the model's L2 (PyTorch's coupled decay); AdamW keeps its own 5e-4.
    """
    import torch

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    height, width, channels = shape
    x = torch.from_numpy(rng.standard_normal((batch, channels, height, width), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, 10, batch))
    wd = weight_decay
    make = {"sgd": lambda p: torch.optim.SGD(p, lr, weight_decay=wd),
            "adam": lambda p: torch.optim.Adam(p, lr, weight_decay=wd),
            "momentum": lambda p: torch.optim.SGD(p, lr, momentum=0.9, weight_decay=wd),
            "adamw": lambda p: torch.optim.AdamW(p, lr, weight_decay=5e-4),
            "rmsprop": lambda p: torch.optim.RMSprop(p, lr, weight_decay=wd)}  # fmt: skip
    opt = make[optimizer](module.parameters())
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    module.train()
    times = []
    for _ in range(windows + 1):
        start = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(module(x), y)
            loss.backward()
            opt.step()
        loss.item()
        times.append(time.perf_counter() - start)
    median = statistics.median(times[1:])
    return {"images_per_second": batch * steps / median, "ms_per_step": 1000 * median / steps}
