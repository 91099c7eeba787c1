"""Run folders into one pandas DataFrame, read through `zoo.runs` (their one reader).

frame, skipped = gather(find_runs(["runs/*"]))
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pandas as pd

import zoo
from zoo import runs
from zoo.recipes import RunConfig, recipe
from zoo.runs import find_runs  # noqa: F401  (reports' entry point to the run folders)

# Run settings that make a variant when they differ from the recipe (the others, such as the
# data folder, seed, epochs or subset, say how long, where or on how much, not what).
# Not precision: `auto` picks it per machine, so it is a column of its own, and a table cell
# never averages two precisions (`reports.tables` tells such runs apart by their settings).
_VARIANT_SETTINGS = ("optimizer", "lr", "momentum", "decoupled_decay", "schedule", "step_size",
                     "gamma", "label_smoothing", "augment", "normalize", "batch_size")  # fmt: skip


# What may differ between runs of one identity (`zoo.runs.identity`) that a table still
# averages as one configuration: the seed, and whether test was looked at.
_NOT_SETTINGS = ("seed", "evaluate_test")


def variant(config: RunConfig, base: RunConfig | None = None) -> str:
    """What a run changed from its recipe, e.g. `bn+dropout=0.5`; `baseline` when nothing did.

    Toggles differing from the recipe's (the builder's defaults where the recipe sets none) and
    a few run settings differing from the recipe's; the data, seed, epochs, subset and the like
    say where, how long or on how much, not what.

    Args:
        config: The run's settings.
        base: The recipe the run was derived from (config.json's "recipe"); default today's
            recipe of the model in the run's precision.
    """
    base = base or recipe(config.model, precision=config.precision)
    return _changes(config, base, base.model_kwargs)


def _changes(config: RunConfig, base: RunConfig, toggles: dict[str, Any]) -> str:
    """`variant`'s label of the toggles differing from `toggles` (over the builder's defaults)
    and the run settings differing from `base`."""
    defaults = zoo.describe(config.model).toggles
    ours, theirs = {**defaults, **config.model_kwargs}, {**defaults, **toggles}
    parts = [toggle_label(k, v) for k, v in ours.items() if not _same(v, theirs.get(k))]
    for name in _VARIANT_SETTINGS:
        if getattr(config, name) != getattr(base, name):
            parts.append(toggle_label(name, getattr(config, name)))
    return "+".join(sorted(parts)) or "baseline"


def _same(a: Any, b: Any) -> bool:
    """Equal, counting a list and a tuple of the same items as equal (JSON has no tuples)."""
    sequences = isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))
    return tuple(a) == tuple(b) if sequences else a == b


def toggle_label(name: str, value: Any) -> str:
    """`bn` for True, `no_bn` for False, `name=value` otherwise (floats in short form)."""
    if value is True:
        return name
    if value is False:
        return f"no_{name}"
    if isinstance(value, (list, tuple)):
        value = "x".join(map(str, value))
    return f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"


def study_figure(model: str, label: str) -> tuple[str | None, float | None]:
    """The study and test accuracy it reported for this model and variant, if it did.

    Args:
        model: Registry name.
        label: What the configuration changed from the builder's defaults (toggles) and the
            recipe (run settings), as `variant` labels it; `baseline` for neither.
    """
    return study_figures().get((model, label), (None, None))


@functools.cache
def study_figures() -> dict[tuple[str, str], tuple[str, float]]:
    """`(model, label) -> (study, test accuracy)` for every run the studies reported a figure
    for, read from `zoo.study.catalog` (their one source), at the study's own settings and
    labelled as `study_figure` labels. Were two studies to report the same configuration,
    the first would be kept."""
    from zoo.study.catalog import STUDIES, config

    figures: dict[tuple[str, str], tuple[str, float]] = {}
    for study in STUDIES.values():
        for run in study.runs:
            if run.reported is not None:
                label = _changes(config(study, run, "full"), recipe(run.model), {})
                figures.setdefault((run.model, label), (study.name, run.reported))
    return figures


def read_run(path: Path) -> dict[str, Any]:
    """One row: what was trained, how, and how well (from config.json and metrics.json)."""
    saved = runs.read_record(path)
    metrics = runs.read_metrics(path)
    if metrics is None:
        raise ValueError(f"{path}: metrics.json is damaged.")
    config = RunConfig(**saved["config"])
    # Format 1 folders did not record their recipe: today's stands in.
    # Without a recorded recipe, today's in the run's own precision (`auto` is per machine).
    base = (RunConfig(**saved["recipe"]) if "recipe" in saved
            else recipe(config.model, precision=config.precision))  # fmt: skip
    label = variant(config, base)
    # Figures are keyed by the studies' terms: toggles against the builder's defaults.
    study, reported = study_figure(config.model, _changes(config, base, {}))
    row: dict[str, Any] = {
        "run": path.name,
        "path": str(path),
        "model": config.model,
        "variant": label,
        "dataset": saved.get("dataset", config.home_dataset),
        "optimizer": config.optimizer,
        "lr": config.lr,
        "schedule": config.schedule,
        "batch_size": config.batch_size,
        "precision": config.precision,
        "epochs": config.epochs,
        "epochs_run": metrics.get("epochs_run"),
        "seed": config.seed,
        "subset": config.subset,
        "params": metrics.get("trainable_params"),
    }
    for split in ("train", "val", "test"):
        for key in ("accuracy", "loss"):
            row[f"{split}_{key}"] = metrics.get(split, {}).get(key)
    row.update(
        study=study,
        study_test_accuracy=reported,
        seconds=metrics.get("train_seconds"),
        images_per_second=metrics.get("train_images_per_second"),
        stop_reason=metrics.get("stop_reason"),
        toggles=json.dumps(config.model_kwargs, sort_keys=True, default=str),
        settings=json.dumps(
            {k: v for k, v in runs.identity(config).items() if k not in _NOT_SETTINGS},
            sort_keys=True,
            default=str,
        ),  # fmt: skip
    )
    return row


def gather(paths: list[Path]) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """A DataFrame with one row per readable run, and `(path, reason)` for the unreadable."""
    rows, skipped = [], []
    for path in paths:
        try:
            rows.append(read_run(path))
        except (OSError, ValueError, TypeError, KeyError) as err:
            skipped.append((str(path), f"unreadable: {err}"))
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["run"] = _unique_names([Path(p) for p in frame["path"]])
    return frame, skipped


def _unique_names(paths: list[Path]) -> list[str]:
    """Folder names, with as many parent folders as it takes to tell them apart.

    Equal settings in two searches give two run folders of the same name.
    """
    for depth in range(1, max(len(p.parts) for p in paths) + 1):
        names = ["_".join(p.parts[-depth:]) for p in paths]
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in paths]
