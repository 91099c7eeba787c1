"""Loss surfaces around a trained model (Li et al. 2018, "Visualizing the Loss Landscape of
Neural Nets"): filter-normalized random directions, a 1-D line and a 2-D grid of losses.

    from reports.surface import surface
    result = surface("runs/basic_cnn-cifar10-1a2b3c4d", points=21, images=1000)

A direction has the shape of every trainable weight. Each filter of a kernel (the last axis
of a Keras Conv2D or Dense kernel) is rescaled to the norm of the matching filter of the
trained weights; one-dimensional weights (biases, BN's scale and offset) get no perturbation,
and BN's moving statistics are not trainable and stay as trained, as in the paper.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from zoo import runs as zoo_runs
from zoo.files import save_figure, write_csv
from zoo.recipes import RunConfig


@dataclasses.dataclass
class Surface:
    """Losses around a trained model.

    Attributes:
        alphas: Coordinates along each direction (the trained weights at 0).
        line: Loss along the first direction, one per alpha.
        grid: Loss at (alpha_i along the first, alpha_j along the second) or None for 1-D.
        seconds: Time spent evaluating.
        files: What was written.
    """

    alphas: np.ndarray
    line: np.ndarray
    grid: np.ndarray | None
    seconds: float
    files: list[Path]


def filter_normalized(weights: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """A random Gaussian direction with every filter scaled to its weight filter's norm."""
    direction = []
    for w in weights:
        if w.ndim <= 1:
            direction.append(np.zeros_like(w))
            continue
        d = rng.standard_normal(w.shape).astype(w.dtype)
        axes = tuple(range(w.ndim - 1))  # all but the filter axis
        w_norm = np.sqrt((w.astype(np.float64) ** 2).sum(axis=axes, keepdims=True))
        d_norm = np.sqrt((d.astype(np.float64) ** 2).sum(axis=axes, keepdims=True))
        direction.append((d * (w_norm / np.maximum(d_norm, 1e-12))).astype(w.dtype))
    return direction


def evaluate_grid(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    directions: list[list[np.ndarray]],
    alphas: np.ndarray,
    batch_size: int = 500,
    verbose: bool = True,
) -> np.ndarray:
    """Loss at every point `w + a·d1 (+ b·d2)` of the grid; the model's weights are restored.

    The model must be compiled with its loss. The loss is the one `model.evaluate` reports (the
    compiled loss with the model's regularization, averaged over the images), computed by one
    compiled function that moves the weights to a point and evaluates them in a single call:
    `model.evaluate` per point spent about as long on its own set-up as on the forward passes.
    """
    loss_at = _loss_at(model, x, y, directions, batch_size)
    variables = model.trainable_variables
    origin = [v.numpy() for v in variables]
    shape = (len(alphas),) * len(directions)
    losses = np.empty(shape)
    total, begun = losses.size, time.perf_counter()
    try:
        for n, index in enumerate(np.ndindex(shape), 1):
            losses[index] = float(loss_at(np.asarray([alphas[i] for i in index], np.float32)))
            if verbose and (n % max(1, total // 10) == 0 or n == total):
                print(f"  {n}/{total} points, {time.perf_counter() - begun:.1f} s", flush=True)
    finally:
        for v, w in zip(variables, origin, strict=True):
            v.assign(w)
    return losses


def _loss_at(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    directions: list[list[np.ndarray]],
    batch_size: int,
) -> Any:
    """A compiled `loss_at(coefficients)`: the weights moved to `origin + Σ c_i · d_i`, then
    the batch-size-weighted mean of `model.compute_loss` over the images, as evaluate reports."""
    import tensorflow as tf

    variables = model.trainable_variables
    origin = [tf.constant(v.numpy()) for v in variables]
    steps = [[tf.constant(d, v.dtype) for d, v in zip(ds, variables, strict=True)]
             for ds in directions]  # fmt: skip
    batches = [(tf.constant(x[i : i + batch_size]), tf.constant(y[i : i + batch_size]))
               for i in range(0, len(x), batch_size)]  # fmt: skip

    @tf.function
    def loss_at(coefficients: tf.Tensor) -> tf.Tensor:
        for k, (variable, start) in enumerate(zip(variables, origin, strict=True)):
            moved = start
            for i, step in enumerate(steps):
                moved = moved + coefficients[i] * step[k]
            variable.assign(moved)
        total = tf.constant(0.0)
        for xb, yb in batches:
            predicted = model(xb, training=False)
            loss = model.compute_loss(x=xb, y=yb, y_pred=predicted, training=False)
            total += tf.cast(loss, tf.float32) * tf.cast(tf.shape(xb)[0], tf.float32)
        return total / len(x)

    return loss_at


def surface(
    run: str | Path,
    *,
    points: int = 21,
    span: float = 1.0,
    images: int = 1000,
    dims: int = 2,
    split: str = "test",
    seed: int = 0,
    out: str | Path | None = None,
    verbose: bool = True,
) -> Surface:
    """Evaluates the loss around a run's best weights along filter-normalized directions.

    Args:
        run: A finished run folder.
        points: Grid points per direction, from -span to span.
        span: Extent of each direction, in units of the filter-normalized direction.
        images: Images of `split` to evaluate on (a seeded random subset).
        dims: 1 for a line, 2 for a line and a grid.
        split: `test`, `val` or `train` (without augmentation).
        seed: Seed of the directions and the image subset.
        out: Folder for surface.csv and the figures; default `<run>/landscape`.
        verbose: Print progress.

    Returns:
        The `Surface`.

    Raises:
        FileNotFoundError: Not a finished run (no best.keras).
    """
    from zoo.train import compile_model

    run = Path(run)
    model = zoo_runs.best_model(run)
    config = zoo_runs.read_config(run)
    compile_model(model, config)
    x, y = _images(config, split, images, seed)
    rng = np.random.default_rng(seed)
    weights = [v.numpy() for v in model.trainable_variables]
    directions = [filter_normalized(weights, rng) for _ in range(dims)]
    alphas = np.linspace(-span, span, points)
    begun = time.perf_counter()
    if verbose:
        print(f"{run.name}: line of {points} points on {len(x)} {split} images")
    line = evaluate_grid(model, x, y, directions[:1], alphas, verbose=verbose)
    grid = None
    if dims == 2:
        if verbose:
            print(f"{run.name}: {points}x{points} grid")
        grid = evaluate_grid(model, x, y, directions, alphas, verbose=verbose)
    seconds = time.perf_counter() - begun
    out = Path(out) if out else run / "landscape"
    files = _write(out, alphas, line, grid, f"{config.model} ({run.name})")
    if verbose:
        print(f"{out}: {seconds:.1f} s of evaluation")
    return Surface(alphas, line, grid, seconds, files)


def _images(config: RunConfig, split: str, images: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`images` seeded random images of a split, prepared as the run's pipeline prepares them,
    with labels as its loss takes them."""
    train, val, test, _ = zoo_runs.data(
        config, batch_size=images, augment=False, shuffle=False, test_subset=None
    )
    chosen = {"train": train, "val": val, "test": test}[split]
    xs, ys = [], []
    for x, y in chosen:
        xs.append(x.numpy())
        ys.append(y.numpy())
    x, y = np.concatenate(xs), np.concatenate(ys)
    pick = np.random.default_rng(seed).permutation(len(x))[:images]
    return x[pick], y[pick]


def line_figure(alphas: np.ndarray, line: np.ndarray, title: str = "") -> Figure:
    """Loss along one filter-normalized direction."""
    fig = Figure(figsize=(5.5, 4), layout="constrained")
    ax = fig.subplots()
    ax.plot(alphas, line, "o-", ms=3)
    ax.set(xlabel="step along the direction", ylabel="loss", title=title or "1-D loss")
    ax.grid(alpha=0.3)
    return fig


def contour_figure(alphas: np.ndarray, grid: np.ndarray, title: str = "") -> Figure:
    """Contours of the loss over two filter-normalized directions; the trained model at 0."""
    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.subplots()
    levels = np.quantile(grid[np.isfinite(grid)], np.linspace(0, 1, 16))
    shown = ax.contour(alphas, alphas, grid.T, levels=np.unique(levels), cmap="viridis")
    ax.clabel(shown, fontsize=6, fmt="%.2f")
    ax.plot(0, 0, "r*", ms=10, label="trained weights")
    ax.set(xlabel="direction 1", ylabel="direction 2", title=title or "2-D loss contours")
    ax.legend(loc="upper right")
    return fig


def _write(
    out: Path, alphas: np.ndarray, line: np.ndarray, grid: np.ndarray | None, title: str
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "line.csv", out / "line.png"]
    write_csv(files[0], pd.DataFrame({"alpha": alphas, "loss": line}), index=False)
    figures = {files[1]: line_figure(alphas, line, title)}
    if grid is not None:
        files += [out / "surface.csv", out / "contour.png"]
        frame = pd.DataFrame(
            [(a, b, grid[i, j]) for i, a in enumerate(alphas) for j, b in enumerate(alphas)],
            columns=["alpha", "beta", "loss"],
        )
        write_csv(files[2], frame, index=False)
        figures[files[3]] = contour_figure(alphas, grid, title)
    for path, fig in figures.items():
        save_figure(path, fig, dpi=120)
        save_figure(path.with_suffix(".svg"), fig)
        files.append(path.with_suffix(".svg"))
    return files
