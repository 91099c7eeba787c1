"""A search project's folder: the settings it was started with (search.json), which a rerun
must match to continue it, and the precision its trials ran in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zoo import runs as zoo_runs
from zoo.files import write_json
from zoo.recipes import RunConfig

# Settings that must match for a rerun to continue a project rather than mix two searches.
_KEPT = ("space", "tuner", "objective", "max_trials", "epochs", "subset", "executions_per_trial",
         "seed", "fixed")  # fmt: skip
# What the space trains, kept too: the hyperparameters it declares and the run it builds from
# their defaults. A project started before they were kept is checked on its space's name only,
# except for the spaces whose meaning changed when the run setting weight_decay became
# decoupled_decay: their old trials trained something the space no longer describes.
_RENAMED_SPACES = ("vgg_a", "resnet_cnn", "inception_v1")


def project_precision(project: Path) -> str | None:
    """The precision a search project's trials ran in: float32 for a project from before
    the `auto` default; None for a new project."""
    try:
        saved = json.loads((project / "search.json").read_text())
    except (OSError, ValueError):
        return None
    return (saved.get("default_run") or {}).get("precision", "float32")


def _same_default(saved: dict[str, Any], default_run: dict[str, Any]) -> bool:
    """Whether a project's recorded default run is this space's, read in today's names (a
    record from before `config_format` was kept is format 2's)."""
    record = {"format": saved.get("config_format", 2), "config": saved["default_run"]}
    try:
        then = RunConfig(**zoo_runs.migrate(record)["config"])
    except (TypeError, ValueError):
        return False
    return zoo_runs.same_run(then, RunConfig(**default_run))


def claim_project(project: Path, settings: dict[str, Any], overwrite: bool) -> None:
    file = project / "search.json"
    if file.exists() and not overwrite:
        saved = json.loads(file.read_text())
        changed = [f"{k} {saved.get(k)!r} -> {settings[k]!r}" for k in _KEPT
                   if saved.get(k) != json.loads(json.dumps(settings[k]))]  # fmt: skip
        if "hyperparameters" in saved and saved["hyperparameters"] != json.loads(
            json.dumps(settings["hyperparameters"], default=str)
        ):
            changed.append("the space's hyperparameters")
        if "default_run" in saved and not _same_default(saved, settings["default_run"]):
            changed.append("the space's default run")
        if "hyperparameters" not in saved and settings["space"] in _RENAMED_SPACES:
            changed.append("the space's weight_decay, now decoupled_decay")
        if changed:
            raise ValueError(
                f"{project} holds a search with other settings ({'; '.join(changed)}); "
                "rerun with its settings to continue it, or use --overwrite or another --out."
            )
    elif project.exists() and overwrite:
        import shutil

        shutil.rmtree(project)
    project.mkdir(parents=True, exist_ok=True)
    write_json(file, settings)
