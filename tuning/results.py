"""A search project's results read back: one row per trial (through Keras Tuner's own
`Trial.load`), the best trial, and a summary."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import keras_tuner as kt
import pandas as pd

from tuning import OBJECTIVES
from zoo import runs as zoo_runs

_METRICS = ("val_accuracy", "accuracy", "val_loss", "loss", "epochs", "seconds", "rss_mib")


def trials(project: str | Path) -> pd.DataFrame:
    """One row per trial of a search project, in trial order.

    Columns: trial_id, status, every hyperparameter, score (the objective), val_accuracy,
    accuracy, val_loss, loss (of the trial's best weights, averaged over executions), epochs,
    seconds (of training), rss_mib (the search process's memory after the trial), runs (the
    trial's run folders).

    Raises:
        FileNotFoundError: No trials in `project`.
    """
    project = Path(project)
    files = sorted(project.glob("trial_*/trial.json"))
    if not files:
        raise FileNotFoundError(f"{project}: no trials (no trial_*/trial.json).")
    rows = []
    for file in files:
        trial = kt.engine.trial.Trial.load(str(file))
        row: dict[str, Any] = {"trial_id": trial.trial_id, "status": trial.status}
        row.update(trial.hyperparameters.values)
        row["score"] = trial.score
        for name in _METRICS:
            exists = trial.metrics.exists(name)
            row[name] = trial.metrics.get_last_value(name) if exists else None
        row["runs"] = ";".join(
            str(p.relative_to(project)) for p in zoo_runs.folders_in(file.parent)
        )
        rows.append(row)
    return pd.DataFrame(rows)


def best_trial(
    project: Path, table: pd.DataFrame, objective: str, hypermodel: Any
) -> dict[str, Any]:
    done = table[(table["status"] == "COMPLETED") & table["score"].notna()]
    if done.empty:
        return {}
    row = done.loc[
        done["score"].idxmax() if OBJECTIVES[objective] == "max" else done["score"].idxmin()
    ]
    trial = kt.engine.trial.Trial.load(str(project / f"trial_{row['trial_id']}" / "trial.json"))
    values = trial.hyperparameters.values
    return {
        "trial_id": row["trial_id"],
        "objective": objective,
        "score": row["score"],
        "hyperparameters": values,
        "config": dataclasses.asdict(hypermodel.config(held(values))),
        "runs": row["runs"].split(";") if row["runs"] else [],
    }


def summary(project: Path, table: pd.DataFrame, best: dict[str, Any], objective: str) -> str:
    """A few lines: counts by status, the best trial and the top five."""
    counts = ", ".join(f"{n} {s.lower()}" for s, n in table["status"].value_counts().items())
    lines = [f"{project}: {len(table)} trials ({counts})"]
    if best:
        values = ", ".join(f"{k}={v}" for k, v in best["hyperparameters"].items())
        lines.append(f"best: trial {best['trial_id']}, {objective} {best['score']:.4f} ({values})")
        if "retrained" in best and "test" in best["retrained"]:
            test = best["retrained"]["test"]["accuracy"]
            lines.append(f"retrained on all of train: test accuracy {test:.4f}")
        ascending = OBJECTIVES[objective] == "min"
        top = table.sort_values("score", ascending=ascending).head(5)
        columns = [c for c in top.columns if c not in ("status", "runs", "rss_mib")]
        lines.append(top[columns].to_string(index=False))
    lines.append(f"tables: {project / 'trials.csv'}, {project / 'best.json'}")
    return "\n".join(lines)


def held(values: dict[str, Any]) -> kt.HyperParameters:
    """Hyperparameters holding `values`."""
    hp = kt.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    return hp
