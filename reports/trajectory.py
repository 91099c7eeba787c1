"""The training trajectory on the loss surface (Li et al. 2018, section 7 and figures 9-10).

    from reports.trajectory import trajectory
    result = trajectory("runs/basic_cnn-cifar10-1a2b3c4d", points=21, images=1000)

A run trained with `keep_epochs=True` (`--keep-epochs`) keeps its weights after every epoch.
The plane is spanned by the first two principal directions of `θ_epoch - θ_final` over the
epochs, the path is each epoch's projection onto it (the final epoch at the origin), and the
contours are the loss at `θ_final + a·d1 + b·d2` over a grid that covers the path.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reports.surface import _images, evaluate_grid
from zoo import runs as zoo_runs
from zoo.files import save_figure, write_csv, write_json


@dataclasses.dataclass
class Trajectory:
    """A run's epochs projected on the plane of their two principal directions.

    Attributes:
        path: `(epochs, 2)` coordinates of each kept epoch; the last one is `(0, 0)`.
        explained: The fraction of the epochs' variance each direction explains.
        alphas: `(2, points)` grid coordinates along each direction.
        grid: Loss at `(alphas[0][i], alphas[1][j])`.
        seconds: Time spent evaluating.
        files: What was written.
    """

    path: np.ndarray
    explained: np.ndarray
    alphas: np.ndarray
    grid: np.ndarray
    seconds: float
    files: list[Path]


def principal_plane(
    epochs: list[list[np.ndarray]],
) -> tuple[list[list[np.ndarray]], np.ndarray, np.ndarray]:
    """The two principal directions of `θ_e - θ_final`, each epoch's coordinates on them, and
    the fraction of variance each explains.

    Args:
        epochs: Every epoch's trainable weights, in order; the last is the final one.

    Returns:
        `(directions, path, explained)`: two unit directions shaped like the weights, the
        `(epochs, 2)` coordinates (the last row 0), and the two explained-variance fractions.

    Raises:
        ValueError: Fewer than three epochs (two differences are needed for a plane).
    """
    if len(epochs) < 3:
        raise ValueError(f"a trajectory needs at least 3 kept epochs, got {len(epochs)}.")
    flat = np.stack([np.concatenate([w.ravel() for w in ws]) for ws in epochs]).astype(np.float64)
    differences = flat[:-1] - flat[-1]
    _, singular, rows = np.linalg.svd(differences, full_matrices=False)
    variance = singular**2
    explained = variance[:2] / variance.sum()
    path = np.vstack([differences @ rows[:2].T, np.zeros((1, 2))])
    shapes, directions = [w.shape for w in epochs[-1]], []
    for row in rows[:2]:
        parts = np.split(row, np.cumsum([int(np.prod(s)) for s in shapes])[:-1])
        directions.append(
            [p.reshape(s).astype(np.float32) for p, s in zip(parts, shapes, strict=True)]
        )
    return directions, path, explained


def trajectory(
    run: str | Path,
    *,
    points: int = 21,
    images: int = 1000,
    split: str = "test",
    seed: int = 0,
    out: str | Path | None = None,
    verbose: bool = True,
) -> Trajectory:
    """Draws a run's training path on the loss contours of its principal plane.

    Raises:
        FileNotFoundError: Not a finished run, or one that kept no epochs (saying how to).
        ValueError: Fewer than three kept epochs.
    """
    from zoo.train import compile_model

    run = Path(run)
    model = zoo_runs.best_model(run)
    kept = zoo_runs.kept_epochs(run)
    if not kept:
        raise FileNotFoundError(
            f"{run}: no epochs were kept; train with --keep-epochs (keep_epochs=True) to draw "
            "the trajectory."
        )
    config = zoo_runs.read_config(run)
    epochs = []
    for file in kept:
        model.load_weights(file)
        epochs.append([v.numpy() for v in model.trainable_variables])
    directions, path, explained = principal_plane(epochs)
    compile_model(model, config)  # at the final epoch's weights, the origin
    x, y = _images(config, split, images, seed)
    # One grid from -1 to 1 over directions scaled to cover the path with a margin.
    reach = np.maximum(np.abs(path).max(axis=0) * 1.25, 1e-12)
    scaled = [[d * r for d in ds] for ds, r in zip(directions, reach, strict=True)]
    unit = np.linspace(-1.0, 1.0, points)
    begun = time.perf_counter()
    grid = evaluate_grid(model, x, y, scaled, unit, verbose=verbose)
    seconds = time.perf_counter() - begun
    alphas = np.stack([unit * r for r in reach])
    out = Path(out) if out else run / "landscape"
    files = _write(out, path, explained, alphas, grid, f"{config.model} ({run.name})")
    if verbose:
        print(
            f"{out}: {len(kept)} epochs; directions explain {explained[0]:.1%} and "
            f"{explained[1]:.1%} of their variance; {seconds:.1f} s of evaluation"
        )
    return Trajectory(path, explained, alphas, grid, seconds, files)


def trajectory_figure(
    path: np.ndarray, explained: np.ndarray, alphas: np.ndarray, grid: np.ndarray, title: str = ""
) -> Figure:
    """Loss contours of the principal plane with the epochs' path; the final epoch at 0."""
    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.subplots()
    levels = np.unique(np.quantile(grid[np.isfinite(grid)], np.linspace(0, 1, 16)))
    shown = ax.contour(alphas[0], alphas[1], grid.T, levels=levels, cmap="viridis")
    ax.clabel(shown, fontsize=6, fmt="%.2f")
    ax.plot(path[:, 0], path[:, 1], "o-", color="tab:red", ms=3, label="epochs")
    ax.plot(0, 0, "r*", ms=10, label="final weights")
    ax.set(
        xlabel=f"1st principal direction ({explained[0]:.1%})",
        ylabel=f"2nd principal direction ({explained[1]:.1%})",
        title=title or "training trajectory",
    )
    ax.legend(loc="upper right")
    return fig


def _write(
    out: Path,
    path: np.ndarray,
    explained: np.ndarray,
    alphas: np.ndarray,
    grid: np.ndarray,
    title: str,
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "trajectory.csv", out / "trajectory_surface.csv", out / "trajectory.json"]
    frame = pd.DataFrame({"epoch": np.arange(1, len(path) + 1), "x": path[:, 0], "y": path[:, 1]})
    write_csv(files[0], frame, index=False)
    write_json(files[2], {"explained_variance": explained.tolist(), "epochs": len(path)})
    surface = pd.DataFrame(
        [(a, b, grid[i, j]) for i, a in enumerate(alphas[0]) for j, b in enumerate(alphas[1])],
        columns=["x", "y", "loss"],
    )
    write_csv(files[1], surface, index=False)
    fig = trajectory_figure(path, explained, alphas, grid, title)
    for suffix in (".png", ".svg"):
        files.append(out / f"trajectory{suffix}")
        save_figure(files[-1], fig, dpi=120)
    return files
