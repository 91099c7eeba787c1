"""Keras Tuner searches whose trials are `zoo.train` runs.

    from tuning import run_search, trials
    result = run_search("mlp_mnist", "searches", tuner="grid", subset=0.1, epochs=1)
    result.trials                       # one row per trial, also in trials.csv
    trials("searches/mlp_mnist-grid")   # the same table, read back from disk

Each trial trains its space's `RunConfig` with `zoo.train.train` into a run folder inside the
trial's own folder, so it builds the registered model, compiles and fits it as the training
CLI does, and a trial killed mid-way resumes from its last finished epoch when the search is
rerun (Keras Tuner hands an unfinished trial back under the same id). The project folder
holds Keras Tuner's files, `search.json` (the settings), `trials.csv`, `best.json` and
TensorBoard HParams logs (`tensorboard --logdir PROJECT/tensorboard`).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import resource
from pathlib import Path
from typing import Any, Literal

import keras
import keras_tuner as kt
import pandas as pd

import zoo
import zoo.data
from tuning import OBJECTIVES, TUNERS  # noqa: F401  (defined there: the CLI parses with them)
from tuning.project import claim_project, project_precision
from tuning.results import best_trial, held, summary, trials
from tuning.spaces import get_space, hyperparameters
from zoo import compat
from zoo import runs as zoo_runs
from zoo.files import write_csv, write_json
from zoo.recipes import RunConfig, recipe
from zoo.runs import Run
from zoo.train import compile_model, train

compat.keras_tuner_writes_atomically()

TunerName = Literal["grid", "random", "hyperband", "bayesian"]


@dataclasses.dataclass
class Search:
    """A finished (or, on a worker, joined) search.

    Attributes:
        path: The project folder.
        trials: One row per trial (see `trials`).
        best: The contents of best.json (empty on a worker).
        tuner: The Keras Tuner tuner (`tuner.get_best_models()` loads best.keras files).
    """

    path: Path
    trials: pd.DataFrame
    best: dict[str, Any]
    tuner: kt.Tuner | None = None


class ZooHyperModel(kt.HyperModel):
    """A space's model, compiled as a training run of the trial's configuration compiles it.

    Args:
        space: Registered space name.
        overrides: Run settings applied over every trial's configuration (epochs, subset, ...).
    """

    def __init__(self, space: str, overrides: dict[str, Any]) -> None:
        super().__init__(name=space)
        self.space = get_space(space)
        self.overrides = overrides

    def config(self, hp: kt.HyperParameters) -> RunConfig:
        """The trial's run configuration: the space's, the overrides, Hyperband's epochs."""
        config = dataclasses.replace(self.space(hp), **self.overrides)
        if "tuner/epochs" in hp.values:
            config = dataclasses.replace(config, epochs=int(hp.values["tuner/epochs"]))
        return config

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        config = self.config(hp)
        return compile_model(zoo.build(config.model, **config.model_kwargs), config)


class ZooTuner(kt.Tuner):
    """Runs each trial (and each execution, seed + i) as a `zoo.train` run in the trial folder.

    Hyperband's promoted trials train from scratch for their new epoch budget.

    Args:
        oracle: Any Keras Tuner oracle.
        hypermodel: The space's `ZooHyperModel`.
        isolate: Train each trial in a fresh process, so nothing one trial allocates can stay.
        **kwargs: `kt.Tuner`'s arguments (directory, project_name, executions_per_trial, ...).
    """

    def __init__(
        self, oracle: kt.Oracle, hypermodel: ZooHyperModel, isolate: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(oracle, hypermodel, **kwargs)
        self.isolate = isolate

    def run_trial(self, trial: kt.engine.trial.Trial, *args: Any, **kwargs: Any) -> list[dict]:
        config = self.hypermodel.config(trial.hyperparameters)
        folder = Path(self.get_trial_dir(trial.trial_id))
        results = []
        for execution in range(self.executions_per_trial):
            seeded = dataclasses.replace(config, seed=config.seed + execution)
            run = _train(seeded, folder, self.isolate)
            _log_hparams(
                Path(self.project_dir) / "tensorboard",
                f"trial_{trial.trial_id}" + (f"_{execution}" if execution else ""),
                trial.hyperparameters,
                run,
            )
            results.append(_metrics(run))
        return results

    def load_model(self, trial: kt.engine.trial.Trial) -> keras.Model:
        """The best weights of the trial's first run (its best.keras)."""
        done = zoo_runs.finished_in(self.get_trial_dir(trial.trial_id))
        if not done:
            raise FileNotFoundError(f"trial {trial.trial_id}: no finished run to load.")
        return zoo_runs.best_model(done[0])

    def save_model(self, trial_id: str, model: keras.Model, step: int = 0) -> None:
        """Nothing to do: every run keeps its own best.keras."""


def _train(config: RunConfig, folder: Path, isolate: bool = False) -> Run:
    if not isolate:
        keras.utils.clear_session(free_memory=True)
        with compat.forgetting_custom_gradients():
            return train(config, folder, verbose=0)
    process = multiprocessing.get_context("spawn").Process(
        target=train, args=(config, folder), kwargs={"verbose": 0}
    )
    process.start()
    process.join()
    if process.exitcode:
        raise RuntimeError(f"{folder}: the trial's process exited with status {process.exitcode}.")
    path = zoo_runs.find(config, folder)
    if path is not None:
        return Run.read(path)
    raise RuntimeError(f"{folder}: the trial's process finished without a run folder.")


def _metrics(run: Run) -> dict[str, float]:
    m = run.metrics
    if "val" not in m:
        raise kt.errors.FatalValueError(
            f"{run.path}: the run has no validation images (subset {run.config.subset!r}, "
            f"val_split {run.config.val_split!r}), so a search cannot score it; give a larger "
            "subset."
        )
    return {
        "val_accuracy": m["val"]["accuracy"],
        "val_loss": m["val"]["loss"],
        "accuracy": m["train"]["accuracy"],
        "loss": m["train"]["loss"],
        "epochs": m["epochs_run"],
        "seconds": m["train_seconds"],
        "rss_mib": _rss_mib(),
    }


def _rss_mib() -> float:
    """This process's resident memory now (Linux), else its peak."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _log_hparams(root: Path, name: str, hp: kt.HyperParameters, run: Run) -> None:
    """One TensorBoard HParams session per run: its values and its per-epoch metrics."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hparams_api

    with tf.summary.create_file_writer(str(root / name)).as_default():
        hparams_api.hparams(
            {k: v for k, v in hp.values.items() if isinstance(v, (bool, int, float, str))},
            trial_id=name,
        )
        for _, row in run.history.iterrows():
            for metric in OBJECTIVES:
                if metric in row and pd.notna(row[metric]):
                    tf.summary.scalar(metric, float(row[metric]), step=int(row["epoch"]))


def _log_hparams_config(root: Path, hp: kt.HyperParameters) -> None:
    """The HParams dashboard's columns: every hyperparameter's domain and the four metrics."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hparams_api

    params = []
    for item in hp.space:
        config = item.get_config()
        if isinstance(item, kt.engine.hyperparameters.Boolean):
            domain = hparams_api.Discrete([False, True])
        elif isinstance(item, kt.engine.hyperparameters.Choice):
            domain = hparams_api.Discrete(list(config["values"]))
        elif isinstance(item, kt.engine.hyperparameters.Int):
            domain = hparams_api.IntInterval(config["min_value"], config["max_value"])
        elif isinstance(item, kt.engine.hyperparameters.Float):
            domain = hparams_api.RealInterval(config["min_value"], config["max_value"])
        else:
            domain = None
        params.append(hparams_api.HParam(item.name, domain))
    with tf.summary.create_file_writer(str(root)).as_default():
        hparams_api.hparams_config(
            hparams=params, metrics=[hparams_api.Metric(m) for m in OBJECTIVES]
        )


# --- the search ----------------------------------------------------------------------------------


def run_search(
    space: str,
    out: str | Path = "searches",
    *,
    tuner: TunerName = "grid",
    max_trials: int | None = None,
    epochs: int | None = None,
    subset: float | int | None = None,
    objective: str = "val_accuracy",
    executions_per_trial: int = 1,
    data_dir: str | None = None,
    seed: int = 0,
    precision: str = "auto",
    fixed: dict[str, Any] | None = None,
    isolate: bool = False,
    overwrite: bool = False,
    train_best: bool = False,
    best_epochs: int | None = None,
    test_subset: float | int | None = None,
    verbose: bool = True,
) -> Search:
    """Searches a space into `out/<space>-<tuner>`, continuing the project if it exists.

    With KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT set, this
    process is the chief (tuner id `chief`: serves the oracle, writes the results) or a worker
    of a distributed search; every process gets the same arguments and the same `out`.

    Args:
        space: Registered space name (`tuning.list_spaces()`).
        out: Folder of search projects.
        tuner: `grid` (every combination), `random`, `hyperband` or `bayesian`.
        max_trials: Trials to run at most; None: all of the grid, 10 for random and bayesian
            (Hyperband sizes itself from `epochs`).
        epochs: Epochs per trial (Hyperband's largest budget); None: the space's.
        subset: Fraction or per-class count of train each trial uses; None: the space's.
        objective: `val_accuracy`, `val_loss`, `accuracy` or `loss`.
        executions_per_trial: Runs per trial with seeds seed, seed + 1, ...; metrics averaged.
        data_dir: Folder with the data (see `zoo.data.load`).
        seed: Seed of the tuner and of the trials' training.
        precision: Keras dtype policy of every trial; `auto` continues a project in the
            precision it was started with, and starts a new one in this machine's fastest.
        fixed: Hyperparameters to hold at a value, by name.
        isolate: Train every trial in a fresh process.
        overwrite: Start the project afresh instead of continuing it.
        train_best: Afterwards, retrain the best configuration on all of train through
            `zoo.train` (into `<project>/best`) and record its test accuracy in best.json.
        best_epochs: Epochs of that retraining; None: the space's own.
        test_subset: Fraction or per-class count of test that retraining is scored on; None:
            all of it. Trials never evaluate on test.
        verbose: Print Keras Tuner's progress and a summary.

    Returns:
        The `Search`.

    Raises:
        ValueError: Unknown space, tuner, objective or fixed hyperparameter, or a project that
            was started with other settings.
    """
    if tuner not in TUNERS:
        raise ValueError(f"Unknown tuner {tuner!r}. Valid tuners: {', '.join(TUNERS)}.")
    if objective not in OBJECTIVES:
        raise ValueError(f"Unknown objective {objective!r}. Valid: {', '.join(OBJECTIVES)}.")
    _check_fixed(space, fixed or {})
    hp = held(fixed or {})
    project = Path(out) / f"{space}-{tuner}"
    if precision == "auto" and not overwrite:
        precision = project_precision(project) or precision
    overrides: dict[str, Any] = {"seed": seed, "evaluate_test": False, "precision": precision}
    for key, value in (("epochs", epochs), ("subset", subset), ("data_dir", data_dir)):
        if value is not None:
            overrides[key] = value
    hypermodel = ZooHyperModel(space, overrides)
    default = hypermodel.config(kt.HyperParameters())
    hypermodel.config(hp.copy())  # a held value of a wrong type fails before any file is written
    settings = dict(space=space, tuner=tuner, objective=objective, max_trials=max_trials,
                    epochs=epochs, subset=subset, executions_per_trial=executions_per_trial,
                    seed=seed, fixed=fixed or {},
                    hyperparameters=[h.get_config() for h in hyperparameters(space).space],
                    default_run=dataclasses.asdict(dataclasses.replace(default, data_dir=None)),
                    config_format=zoo_runs.CONFIG_FORMAT)  # fmt: skip
    role = _role()
    if role != "chief":  # missing data fails here, once, rather than in every trial
        zoo.data.read(default.home_dataset, data_dir=default.data_dir)
    if role != "worker":
        claim_project(project, settings, overwrite)
    oracle = _oracle(tuner, objective, max_trials, default.epochs, seed, hp)
    keras_tuner = ZooTuner(
        oracle, hypermodel, isolate=isolate, directory=str(Path(out)), project_name=project.name,
        executions_per_trial=executions_per_trial, overwrite=False,  # claim_project cleared it
    )  # fmt: skip
    if role != "worker":
        _log_hparams_config(project / "tensorboard", keras_tuner.oracle.get_space())
    keras_tuner.search(verbose=verbose)
    table = trials(project)
    if role == "worker":
        return Search(project, table, {}, keras_tuner)
    write_csv(project / "trials.csv", table, index=False)
    best = best_trial(project, table, objective, hypermodel)
    if train_best and best:
        # All of train, for the recipe's epochs: the search's subset and budget were a proxy.
        config = hypermodel.space(held(best["hyperparameters"]))
        config = dataclasses.replace(
            config, seed=seed, data_dir=data_dir, subset=None, precision=precision,
            epochs=best_epochs or recipe(config.model).epochs, test_subset=test_subset,
        )  # fmt: skip
        run = train(config, project / "best", verbose=None if verbose else 0)
        best["retrained"] = {"run": str(run.path), **{k: run.metrics.get(k) for k in
                             ("train", "val", "test", "epochs_run", "train_seconds")}}  # fmt: skip
    write_json(project / "best.json", best)
    if verbose:
        print(summary(project, table, best, objective))
    return Search(project, table, best, keras_tuner)


def _role() -> str:
    """`chief` or `worker` of a distributed search, else `alone`."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "alone"
    return "chief" if "chief" in os.environ.get("KERASTUNER_TUNER_ID", "") else "worker"


def _check_fixed(space: str, fixed: dict[str, Any]) -> None:
    """Fails unless every name in `fixed` is one of the space's hyperparameters."""
    names = [item.name for item in hyperparameters(space).space]
    unknown = sorted(set(fixed) - set(names))
    if unknown:
        raise ValueError(
            f"Space {space!r} has no hyperparameter {', '.join(map(repr, unknown))}. "
            f"Its hyperparameters: {', '.join(names)}."
        )


class _GridOracle(kt.oracles.GridSearchOracle):
    """The grid oracle, resumable: Keras Tuner 1.4.8's forgets its place in the grid when a
    project is reloaded and fails on the next trial (KeyError in `populate_space`)."""

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), **compat.grid_oracle_state(self)}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        compat.restore_grid_oracle_state(self, state)


def _oracle(
    tuner: str, objective: str, max_trials: int | None, epochs: int, seed: int,
    hp: kt.HyperParameters,
) -> kt.Oracle:  # fmt: skip
    common = dict(
        objective=kt.Objective(objective, OBJECTIVES[objective]), seed=seed,
        hyperparameters=hp, tune_new_entries=True, allow_new_entries=True,
    )  # fmt: skip
    if tuner == "grid":
        return _GridOracle(max_trials=max_trials, **common)
    if tuner == "random":
        return kt.oracles.RandomSearchOracle(max_trials=max_trials or 10, **common)
    if tuner == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(max_trials=max_trials or 10, **common)
    return kt.oracles.HyperbandOracle(max_epochs=epochs, **common)
