"""The studies' loss landscape (S1, S4; Santurkar et al. 2018, figure 4): train a model and its
ablation once per learning rate, take each step's min and max training loss across the rates,
and draw the two bands on one figure.

    from reports.landscape import study_landscape
    result = study_landscape("vgg_a", {"bn": True}, lrs=[1e-3, 2e-3, 1e-4, 5e-4], epochs=5)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reports.runs import toggle_label
from zoo import runs as zoo_runs
from zoo.files import save_figure, write_csv
from zoo.recipes import recipe
from zoo.study.catalog import S1, S4

S1_LRS = S1.landscape.lrs
S4_LRS = S4.landscape.lrs


@dataclasses.dataclass
class Landscape:
    """The bands and the runs behind them.

    Attributes:
        bands: One row per step: `step`, and `<variant> min` / `<variant> max` per variant.
        runs: Variant -> the run folders it was computed from, one per learning rate.
        files: The figure and table files written.
    """

    bands: pd.DataFrame
    runs: dict[str, list[Path]]
    files: list[Path]


def loss_band(losses: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each step's min and max over several runs' per-step losses (cut to the shortest run)."""
    steps = min(len(loss) for loss in losses)
    stacked = np.stack([np.asarray(loss[:steps], dtype=float) for loss in losses])
    return stacked.min(axis=0), stacked.max(axis=0)


def band_figure(bands: dict[str, tuple[np.ndarray, np.ndarray]], title: str = "") -> Figure:
    """Filled min-max bands of training loss per step, one colour per variant."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    for label, (low, high) in bands.items():
        steps = np.arange(1, len(low) + 1)
        ax.fill_between(steps, low, high, alpha=0.45, label=label, lw=0.3)
    ax.set(xlabel="training step", ylabel="training loss", title=title or "loss landscape")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def study_landscape(
    model: str,
    compare: dict[str, Any],
    *,
    lrs: tuple[float, ...] | list[float] = S1_LRS,
    epochs: int = 5,
    out: str | Path = "landscape",
    verbose: bool = True,
    **settings: Any,
) -> Landscape:
    """Trains what is missing and draws the bands of `model` and `model(**compare)`.

    Runs go to `out/runs` through `zoo.train` (the model's recipe at each learning rate, no
    early stopping, so every run has the same number of steps); a finished run of the same
    settings there is reused, an interrupted one resumed.

    Args:
        model: Registered model name.
        compare: The ablation's toggles, e.g. `{"bn": True}`.
        lrs: Learning rates, one run each per variant.
        epochs: Epochs per run.
        out: Folder for the runs, the figure (landscape.png / .svg) and bands.csv.
        verbose: Print progress.
        **settings: Other run settings for every run (data_dir, subset, batch_size, ...).

    Returns:
        The `Landscape`.

    Raises:
        ValueError: No toggle to compare, or an unknown model.
        TypeError: An unknown toggle or setting (listing the valid ones).
    """
    from zoo.train import train

    out = Path(out)
    # The band is over every step's own loss, so one step per call; the test set, which the
    # figure does not use, is not evaluated (it was most of a short band run's time).
    base = recipe(model, epochs=epochs, early_stopping=0,
                  **{**settings, "steps_per_execution": 1, "evaluate_test": False})  # fmt: skip
    ablation = "+".join(toggle_label(k, v) for k, v in sorted(compare.items()))
    if not ablation:
        raise ValueError("compare needs at least one toggle, e.g. {'bn': True}.")
    variants = {"baseline": dict(base.model_kwargs), ablation: {**base.model_kwargs, **compare}}
    # Every configuration first, so a bad toggle fails before anything trains.
    configs = {
        name: [dataclasses.replace(base, lr=lr, model_kwargs=dict(toggles)) for lr in lrs]
        for name, toggles in variants.items()
    }
    runs: dict[str, list[Path]] = {}
    bands: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, group in configs.items():
        losses = []
        for config in group:
            path = zoo_runs.find(config, out / "runs")
            if path is None:
                if verbose:
                    print(f"training {model} {name} lr {config.lr:g} for {epochs} epochs")
                path = train(config, out / "runs", verbose=0).path
            runs.setdefault(name, []).append(path)
            losses.append(zoo_runs.read_steps(path)["loss"].to_numpy())
        bands[f"{model} {name}"] = loss_band(losses)
    frame = pd.DataFrame({"step": np.arange(1, min(len(b[0]) for b in bands.values()) + 1)})
    for label, (low, high) in bands.items():
        frame[f"{label} min"] = low[: len(frame)]
        frame[f"{label} max"] = high[: len(frame)]
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "bands.csv", out / "landscape.png", out / "landscape.svg"]
    write_csv(files[0], frame, index=False)
    fig = band_figure(
        bands, f"{model}: training loss range over lr {', '.join(f'{x:g}' for x in lrs)}"
    )
    for file in files[1:]:
        save_figure(file, fig, dpi=120)
    if verbose:
        print(f"{files[1]}: {', '.join(bands)} over {len(frame)} steps")
    return Landscape(frame, runs, files)
