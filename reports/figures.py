"""Figures: each function takes plain data (DataFrames, arrays) and returns a matplotlib Figure.

Reading run folders and saving files are `reports.build`'s job; nothing here touches disk.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter


def curves(history: pd.DataFrame, steps: pd.DataFrame | None = None, title: str = "") -> Figure:
    """Loss and accuracy per epoch (train and val), and the loss of every step when given."""
    panels = 3 if steps is not None and len(steps) else 2
    fig = Figure(figsize=(5 * panels, 3.8), layout="constrained")
    axes = fig.subplots(1, panels)
    epochs = history["epoch"]
    for ax, metric in zip(axes[:2], ("loss", "accuracy"), strict=True):
        ax.plot(epochs, history[metric], "o-", label=f"train {metric}")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], "s-", label=f"val {metric}")
        ax.set(xlabel="epoch", ylabel=metric, title=metric)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if metric == "accuracy":  # in %, as the tables show it
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.legend()
        ax.grid(alpha=0.3)
    if panels == 3:
        ax = axes[2]
        ax.plot(np.arange(1, len(steps) + 1), steps["loss"], lw=0.6, label="step loss")
        ax.set(xlabel="step", ylabel="loss", title="training loss per step", yscale="log")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def overlay(
    histories: dict[str, pd.DataFrame],
    metric: str = "val_accuracy",
    datasets: dict[str, str] | None = None,
) -> Figure:
    """One metric per epoch for several runs, labelled by run: one axes per dataset (`datasets`
    maps a run's label to its dataset), since MNIST's and CIFAR's curves share no scale. The
    legend sits under each axes, its long labels wrapped, so it never squeezes the plot."""
    groups: dict[str, list[str]] = {}
    for label in histories:
        groups.setdefault((datasets or {}).get(label, ""), []).append(label)
    wrapped = {label: textwrap.fill(label, 90) for label in histories}
    legend_lines = [sum(wrapped[label].count("\n") + 1 for label in g) for g in groups.values()]
    heights = [3.2 + 0.2 * lines for lines in legend_lines]
    fig = Figure(figsize=(7.5, sum(heights)), layout="constrained")
    axes = fig.subplots(len(groups), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, (dataset, labels) in zip(axes, groups.items(), strict=True):
        for label in labels:
            history = histories[label]
            if metric in history:
                ax.plot(history["epoch"], history[metric], marker=".", label=wrapped[label])
        title = f"{metric} by run" + (f", {dataset}" if dataset else "")
        ax.set(xlabel="epoch", ylabel=metric.replace("_", " "), title=title)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole, from 1
        if "accuracy" in metric:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(0, -0.18), frameon=False)
    return fig


def confusion(matrix: pd.DataFrame, title: str = "test confusion matrix") -> Figure:
    """A confusion matrix (rows true, columns predicted) with class names and counts."""
    names = [str(c) for c in matrix.columns]
    legible = len(names) <= 30  # names and counts fit; above, the matrix is drawn as an image
    # A cell per 0.45 inch only while cells carry names: Tiny ImageNet's 200 classes would
    # make a 92-inch figure, a 10,000-pixel square PNG.
    size = max(4.0, 0.45 * len(names) + 2) if legible else 8.0
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.subplots()
    values = matrix.to_numpy()
    image = ax.imshow(values, cmap="Blues")
    fig.colorbar(image, ax=ax, label="images")
    if legible:
        ax.set_xticks(range(len(names)), names, rotation=90)
        ax.set_yticks(range(len(names)), names)
        limit = values.max() / 2
        for (i, j), count in np.ndenumerate(values):
            color = "white" if count > limit else "black"
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color=color)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return fig


def filters(kernel: np.ndarray, title: str = "first-layer filters") -> Figure:
    """A conv kernel `(kh, kw, in, out)` as a grid of `out` tiles.

    Three input channels are drawn as RGB, otherwise the first channel in grey; each tile is
    scaled to its own range, so shapes show and absolute scales do not.
    """
    kh, kw, channels, count = kernel.shape
    tiles = np.moveaxis(kernel, -1, 0)  # (out, kh, kw, in)
    tiles = tiles if channels == 3 else tiles[..., :1]
    low = tiles.min(axis=(1, 2, 3), keepdims=True)
    high = tiles.max(axis=(1, 2, 3), keepdims=True)
    tiles = (tiles - low) / np.maximum(high - low, 1e-12)
    return _grid(tiles, title, f"{count} filters, {kh}x{kw}x{channels}")


def dense_tiles(
    kernel: np.ndarray, shape: tuple[int, int] = (28, 28), limit: int = 100, title: str = ""
) -> Figure:
    """The first Dense layer's kernel `(H*W, units)`: each unit's weights as an image."""
    units = min(kernel.shape[1], limit)
    tiles = kernel[:, :units].T.reshape(units, *shape, 1)
    scale = np.abs(tiles).max(axis=(1, 2, 3), keepdims=True)
    tiles = 0.5 + 0.5 * tiles / np.maximum(scale, 1e-12)  # 0 weight is mid-grey
    return _grid(tiles, title or "first dense layer weights", f"first {units} units")


def _grid(tiles: np.ndarray, title: str, subtitle: str) -> Figure:
    count = len(tiles)
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    fig = Figure(figsize=(cols * 0.8, rows * 0.8 + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, tile in zip(axes.flat, tiles, strict=False):
        ax.imshow(tile[..., 0] if tile.shape[-1] == 1 else tile, cmap="gray", vmin=0, vmax=1)
    fig.suptitle(f"{title}\n{subtitle}", fontsize=9)
    return fig


def lr_schedule(history: pd.DataFrame, title: str = "learning rate") -> Figure:
    """The learning rate of every epoch."""
    fig = Figure(figsize=(5, 3.5), layout="constrained")
    ax = fig.subplots()
    ax.step(history["epoch"], history["lr"], where="post", marker="o")
    ax.set(xlabel="epoch", ylabel="learning rate", title=title, yscale="log")
    ax.grid(alpha=0.3)
    return fig
