"""Training: `train(config, out)` runs a recipe into a self-describing, resumable run folder.

    from zoo.recipes import recipe
    from zoo.train import train
    run = train(recipe("resnet_cnn", epochs=5, data_dir="~/data"), out="runs")
    run.history, run.metrics, run.path

A run folder holds `config.json` (every resolved setting; enough to rebuild the model),
`history.csv` (per epoch), `steps.csv` (per step), `best.keras`, `metrics.json` (train / val /
test of the best weights), `confusion_matrix.csv`, and while training, `backup/` for resuming.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import functools
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

import zoo
import zoo.data
from zoo import files
from zoo.recipes import CONFIG_FORMAT, RunConfig, migrate, recipe
from zoo.train.callbacks import (
    Backup,
    BestCheckpoint,
    EpochEstimate,
    EpochExtras,
    EpochLog,
    KeepEpochs,
    StepLosses,
    TimeLimit,
    TimeLimitReached,
    schedule_fn,
)
from zoo.train.compiling import (  # noqa: F401  (exported by zoo.train)
    compile_model,
    forward_flops,
    make_loss,
    make_optimizer,
    steps_per_execution,
)


@dataclasses.dataclass
class Run:
    """A finished run, read back from its folder.

    Attributes:
        path: The run folder.
        config: The resolved settings.
        history: One row per epoch (loss, accuracy, val_loss, val_accuracy, lr, seconds).
        metrics: The contents of metrics.json.
        trained: False for a run read back, finished earlier, without training.
    """

    path: Path
    config: RunConfig
    history: pd.DataFrame
    metrics: dict[str, Any]
    trained: bool = True

    @classmethod
    def read(cls, path: str | Path, trained: bool = True) -> Run:
        """Reads a finished run folder."""
        path = Path(path)
        history = (
            pd.read_csv(path / "history.csv") if (path / "history.csv").exists() else pd.DataFrame()
        )
        metrics = _read_metrics(path)
        if metrics is None:
            raise ValueError(f"{path}: metrics.json is missing or damaged.")
        return cls(path, load_config(path), history, metrics, trained)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run. `path` is the run folder to resume, or None when no epoch had
    finished and the folder was removed."""

    def __init__(self, path: Path | None) -> None:
        super().__init__(str(path))
        self.path = path


def train(config: RunConfig, out: str | Path = "runs", *, verbose: int | None = None) -> Run:
    """Trains `config` into a folder under `out`; the same settings again resume or reuse it.

    A folder is named after the model, dataset and a digest of the settings. Rerunning the same
    settings into the same `out` continues an unfinished run of them from its last finished
    epoch, re-evaluates a finished one whose metrics.json is damaged, and reads a finished one
    back without training it again (to repeat a run, change its seed or `out`). A folder that
    another process is training is left alone, and the run gets a fresh one (`-2`, `-3`, ...).

    Args:
        config: The run's settings.
        out: Folder that holds run folders.
        verbose: Keras verbosity; default a progress bar on a terminal, a line per epoch else.

    Returns:
        The finished `Run`.

    Raises:
        Interrupted: Ctrl-C; the run resumes from its last finished epoch.
        OSError: `out` cannot be written (read-only, full, a file).
    """
    if config.strategy == "multiworker":
        _check_multiworker(config)
        return _multiworker_run(config, _chief_folder(config, Path(out)), verbose)
    with _claim(config, Path(out)) as (path, finished):
        if finished:
            return Run.read(path, trained=False)
        _reopen(path)
        return _run(config, path, verbose)


def resume(path: str | Path, *, verbose: int | None = None, stream: bool | None = None) -> Run:
    """Continues the run in `path` from its last finished epoch, or reads it back if finished.

    A run stopped by its time limit continues, for another `time_limit` minutes. `stream`:
    how to read the data this time (see `zoo.data.load`); it does not change the run.

    Raises:
        FileNotFoundError: `path` holds no config.json.
        RuntimeError: Another process is training in `path`.
    """
    path = Path(path)
    config = dataclasses.replace(load_config(path), stream=stream)
    if config.strategy == "multiworker":
        _check_multiworker(config)
        return _multiworker_run(config, path, verbose)
    with _locked(path) as got:
        if not got:
            raise RuntimeError(f"{path}: another process is training this run.")
        if _read_metrics(path) is not None and not _continues(path):
            return Run.read(path, trained=False)
        _reopen(path)
        return _run(config, path, verbose)


def _continues(path: Path) -> bool:
    """Whether a run folder with a metrics.json is a run to train on: one its time limit
    stopped, with the state of its last epoch kept (or no epoch at all, from before a time
    limit let every invocation finish one)."""
    metrics = _read_metrics(path) or {}
    if metrics.get("stop_reason") != "time_limit":
        return False
    return not metrics.get("epochs_run") or _has_weights(path)


def _reopen(path: Path) -> None:
    """Makes a time-limited run unfinished again (its metrics.json goes), so it trains on."""
    if _read_metrics(path) is not None and _continues(path):
        (path / "metrics.json").unlink()


def load_config(path: str | Path) -> RunConfig:
    """The `RunConfig` saved in a run folder's config.json, in today's names (see `migrate`).

    Raises:
        FileNotFoundError: No config.json there.
        ValueError: config.json is damaged.
    """
    return RunConfig(**_read_saved(Path(path))["config"])


def _read_saved(path: Path) -> dict[str, Any]:
    file = path / "config.json"
    if not file.is_file():
        raise FileNotFoundError(f"{path}: not a run folder (no config.json).")
    try:
        saved = migrate(json.loads(file.read_text()))
        RunConfig(**saved["config"])
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"{file}: damaged or not a zoo run's config ({err}).") from None
    return saved


def _read_metrics(path: Path) -> dict[str, Any] | None:
    """metrics.json, or None when it is missing or damaged."""
    try:
        metrics = json.loads((path / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) else None


def rebuild(path: str | Path) -> keras.Model:
    """Builds the untrained model of a run from its config.json alone."""
    saved = _read_saved(Path(path))
    config = RunConfig(**saved["config"])
    return zoo.build(
        config.model,
        input_shape=tuple(saved["input_shape"]),
        num_classes=saved["num_classes"],
        **config.model_kwargs,
    )


# --- run folders --------------------------------------------------------------------------------


# Settings renamed since run folders were first named, hashed under their old names so that
# the same settings keep the same folder (config.json format 1 called decoupled_decay
# weight_decay).
_DIGEST_NAMES = {"decoupled_decay": "weight_decay"}
# Defaults that changed since run folders were first named, hashed at their old values: a
# float32 run keeps the name it had when float32 was the default, before `auto`.
_DIGEST_DEFAULTS = {"precision": "float32"}


def _digest(config: RunConfig) -> str:
    # Settings left at their defaults are out, so a setting added later keeps old runs' names.
    changed = {
        _DIGEST_NAMES.get(f.name, f.name): getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.compare
        and (
            f.default is dataclasses.MISSING
            or getattr(config, f.name) != _DIGEST_DEFAULTS.get(f.name, f.default)
        )
    }
    text = json.dumps(changed, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[bool]:
    """Holds an exclusive lock on a run folder; yields False if another process holds it."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _candidates(config: RunConfig, out: Path) -> Iterator[tuple[Path, bool]]:
    """The folders that may hold `config`'s run, in order, each with whether it is finished:
    its digest's name, then `-2`, `-3`, ... skipping those that hold other settings."""
    base = f"{config.model}-{config.home_dataset}-{_digest(config)}"
    for n in range(1, 10_000):
        path = out / (base if n == 1 else f"{base}-{n}")
        if (path / "config.json").exists():
            try:
                if load_config(path) != config:
                    continue
                damaged = False
            except ValueError:
                damaged = True  # its name is this config's digest, so it is ours to repair
            if not damaged and _read_metrics(path) is not None and not _continues(path):
                yield path, True
                continue
        yield path, False
    raise RuntimeError(f"{out}: no free run folder for {base}.")


@contextlib.contextmanager
def _claim(config: RunConfig, out: Path) -> Iterator[tuple[Path, bool]]:
    """Yields the run folder for `config` and whether it holds the finished run already."""
    for path, finished in _candidates(config, out):
        if finished:
            yield path, True
            return
        with _locked(path) as got:
            if got:
                yield path, False
                return


def _chief_folder(config: RunConfig, out: Path) -> Path:
    """The folder the chief of a multi-worker run claims (it alone locks it)."""
    return next(_candidates(config, out))[0]


# --- multi-worker ---------------------------------------------------------------------------------


def _check_multiworker(config: RunConfig) -> None:
    """Refuses what a multi-worker run cannot do, before any worker joins the cluster."""
    if config.time_limit:
        # Each worker would keep its own clock and stop at another step than the rest.
        raise ValueError(
            "time_limit does not run under the multiworker strategy, where the workers "
            "must stop together; limit the epochs instead."
        )


def _multiworker_run(config: RunConfig, path: Path, verbose: int | None) -> Run:
    """One worker's part in a multi-worker run whose chief writes `path`.

    Every worker makes the same choice from the same folder: read back a finished run, or
    train. The chief trains into `path` itself, never into another folder beside it (the other
    workers could not know). Every other worker runs every step, evaluation and save in step
    with the chief (a save can hold collective ops), but into a private copy of the chief's
    folder in a temporary directory, deleted at the end: TensorFlow's rule for multi-worker
    checkpoints. The copy is taken before the worker joins its first collective op, so the
    chief cannot have moved on: it carries the chief's backup, history and best checkpoint, and
    a restarted worker resumes from the same epoch as its chief. `path` must be on a file
    system every worker reads.

    Raises:
        RuntimeError: On the chief, another process is training in `path`. The other
            workers then wait on the chief until TensorFlow gives up on it: stop them too.
    """
    chief = _multiworker().extended.should_checkpoint
    if _read_metrics(path) is not None:
        return Run.read(path, trained=False)
    if chief:
        with _locked(path) as got:
            if not got:
                raise RuntimeError(f"{path}: another process is training this run.")
            return _run(config, path, verbose)
    with tempfile.TemporaryDirectory(prefix="zoo-worker-") as tmp:
        scratch = Path(tmp) / path.name
        if path.is_dir():
            skip = shutil.ignore_patterns(".lock", f"{files.TMP_PREFIX}*")
            shutil.copytree(path, scratch, ignore=skip)
        else:
            scratch.mkdir()
        run = _fit(config, scratch, verbose)
        return Run(path, config, run.history, run.metrics)


def _run(config: RunConfig, path: Path, verbose: int | None) -> Run:
    """`_fit`, and on failure no folder left empty: one without a finished epoch goes."""
    files.remove_stale(path)
    try:
        return _fit(config, path, verbose)
    except BaseException as err:
        kept = _has_epochs(path)
        if not kept:
            shutil.rmtree(path, ignore_errors=True)
        if isinstance(err, KeyboardInterrupt) and not isinstance(err, Interrupted):
            raise Interrupted(path if kept else None) from None
        raise


def _has_epochs(path: Path) -> bool:
    return Backup.latest(path / "backup")[0] > 0 or (path / "metrics.json").exists()


def _has_weights(path: Path) -> bool:
    saved = Backup.latest(path / "backup")[1]
    return saved is not None and (saved / Backup.WEIGHTS).is_file()


# --- the run -------------------------------------------------------------------------------------


def _fit(config: RunConfig, path: Path, verbose: int | None) -> Run:
    begun = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(config.precision)
    start, saved = Backup.latest(path / "backup")
    state = json.loads((saved / "state.json").read_text()) if saved else None
    if state and state.get("reason") == "time_limit":
        state["reason"] = None  # continued by `resume`, for another time limit
    # metrics.json is written last: a run that has one, even damaged, has finished training.
    done = (path / "metrics.json").exists()
    dataset = config.home_dataset
    common = dict(
        data_dir=config.data_dir, batch_size=config.batch_size, val_split=config.val_split,
        subset=config.subset, test_subset=config.test_subset, seed=config.seed,
        normalize=config.normalize, stream=config.stream,
    )  # fmt: skip
    train_ds, val_ds, test_ds, info = zoo.data.load(
        dataset, augment=config.augment, epochs=(start, config.epochs), **common
    )
    train_eval, *_ = zoo.data.load(dataset, augment=False, shuffle=False, **common)
    steps = math.ceil(info.num_examples["train"] / config.batch_size)
    has_val = info.num_examples["val"] > 0
    if config.label_smoothing:
        train_ds, val_ds, test_ds, train_eval = (
            d.map(lambda x, y: (x, tf.one_hot(y, info.num_classes)))
            for d in (train_ds, val_ds, test_ds, train_eval)
        )
    _write_config(path, config, info)

    strategy = _strategy(config.strategy)
    with strategy.scope():
        model = zoo.build(
            config.model,
            input_shape=info.input_shape,
            num_classes=info.num_classes,
            **config.model_kwargs,
        )
        per_call = config.steps_per_execution or (
            steps_per_execution(model, config.batch_size, steps)
            if config.strategy == "default"
            else 1
        )
        compile_model(model, config, per_call)
        if saved and not done:
            model.optimizer.build(model.trainable_variables)
            model.load_weights(saved / Backup.WEIGHTS)
    monitor = "val_accuracy" if has_val else "accuracy"
    callbacks = _callbacks(config, path, info, steps, monitor, begun)
    if _verbosity(verbose) and not done:
        callbacks.append(EpochEstimate(steps))
    backup = Backup(path / "backup", callbacks, state)
    callbacks.append(backup)  # last: after the callbacks whose counters it saves
    stop = None
    if not done and backup.reason is None and not backup.nan and start < config.epochs:
        try:
            model.fit(
                train_ds,
                initial_epoch=start,
                epochs=config.epochs,
                steps_per_epoch=steps,
                validation_data=val_ds if has_val else None,
                callbacks=callbacks,
                shuffle=False,  # the dataset shuffles itself, per epoch and seed
                verbose=_verbosity(verbose),
            )
        except TimeLimitReached:
            stop = "time_limit"
    if done:
        stop = _repaired_stop(path, config)
    stop = stop or ("nan" if backup.nan else backup.reason or "completed")
    splits = (train_eval, val_ds, test_ds)
    return _finish(path, config, info, model, splits, stop, begun, strategy.num_replicas_in_sync)


def _repaired_stop(path: Path, config: RunConfig) -> str:
    """The stop reason of a finished run whose metrics.json is being rewritten."""
    old = _read_metrics(path)
    if old and old.get("stop_reason"):
        return old["stop_reason"]
    if _has_weights(path):
        return "time_limit"  # the one stop that keeps its last state
    history = pd.read_csv(path / "history.csv") if (path / "history.csv").exists() else []
    return "completed" if len(history) >= config.epochs else "unknown"


def _write_config(path: Path, config: RunConfig, info: zoo.data.DatasetInfo) -> None:
    saved = {
        "format": CONFIG_FORMAT,
        # `stream` is how this session reads the data, not a setting of the run.
        "config": {k: v for k, v in dataclasses.asdict(config).items() if k != "stream"},
        # The recipe the run was derived from, so reports label it against that recipe even
        # after the recipe changes; in the run's precision, which `auto` chose for the machine
        # and which is therefore no variant of it.
        "recipe": dataclasses.asdict(recipe(config.model, precision=config.precision)),
        "dataset": info.name,
        "input_shape": list(info.input_shape),
        "num_classes": info.num_classes,
        "class_names": list(info.class_names),
        "num_examples": info.num_examples,
        "data_source": info.source,
        "data_streamed": info.streaming,
        "normalization": {"mean": info.mean, "std": info.std},
        "versions": {
            "zoo": zoo.__version__,
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "python": platform.python_version(),
        },
        "device": [d.name for d in tf.config.list_logical_devices()],
        "command": sys.argv,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    file = path / "config.json"
    try:
        written = json.loads(file.read_text())
    except (OSError, ValueError):
        written = None  # none yet, or damaged: write it (anew)
    if isinstance(written, dict):
        if written.get("format") == CONFIG_FORMAT:
            return  # a resumed run keeps its first record, unrewritten
        first = migrate(written)  # an older format: rewritten in today's names
        saved["created"] = first.get("created", saved["created"])
        saved["recipe"] = first.get("recipe", saved["recipe"])
    files.write_json(file, saved)


def _strategy(name: str) -> tf.distribute.Strategy:
    if name == "mirrored":
        # All local GPUs; without any, all logical CPUs (how the CPU-only tests exercise it).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multiworker":
        return _multiworker()
    return tf.distribute.get_strategy()


def _slurm() -> tf.distribute.cluster_resolver.ClusterResolver | None:
    """The cluster of a Slurm job step of several tasks, one worker per task; else None.

    Slurm's resolver gives each task a port from `ZOO_SLURM_PORT` (default 8888) up, on its
    node. It hands out ports in step with GPU shares; the count below gives one per task and
    leaves devices alone, so each worker uses the GPUs its task sees (all of its node's with
    one task per node).
    """
    if int(os.environ.get("SLURM_STEP_NUM_TASKS", "1")) < 2:
        return None
    from tensorflow.python.distribute.cluster_resolver import slurm_cluster_resolver as slurm

    tasks = max(slurm.expand_tasks_per_node(os.environ["SLURM_STEP_TASKS_PER_NODE"]))
    # cluster_spec() is what sets the resolver's task_type and task_id, so it is called first.
    found = slurm.SlurmClusterResolver(
        port_base=int(os.environ.get("ZOO_SLURM_PORT", "8888")),
        gpus_per_node=tasks,
        gpus_per_task=1,
        auto_set_gpu=False,
    )
    # The strategy takes its local devices from the resolver, which would claim one GPU per
    # task; these are the GPUs this task sees (none on a CPU node).
    gpus = len(tf.config.list_physical_devices("GPU"))
    spec = found.cluster_spec()
    return tf.distribute.cluster_resolver.SimpleClusterResolver(
        spec,
        task_type=found.task_type,
        task_id=found.task_id,
        num_accelerators={"GPU": gpus} if gpus else {},
        rpc_layer="grpc",
    )


class _MultiWorker(tf.distribute.MultiWorkerMirroredStrategy):
    """TensorFlow's multi-worker strategy, with the `reduce` that Keras 3's `fit` expects.

    Keras reduces a whole `(images, labels)` batch at once to build the model, which the
    strategy refuses across workers ("Attempt to convert a value (PerReplica...)",
    keras-team/keras#20585), and reduces scalar logs along an axis 0 they do not have.
    Reducing each tensor on its own, over replicas only where it is a scalar, is what both mean.
    """

    def reduce(self, reduce_op: Any, value: Any, axis: int | None) -> Any:  # noqa: D102
        def one(v: Any) -> tf.Tensor:
            rank = self.experimental_local_results(v)[0].shape.rank
            return super(_MultiWorker, self).reduce(reduce_op, v, axis if rank else None)

        return tf.nest.map_structure(one, value)


@functools.cache
def _multiworker() -> tf.distribute.Strategy:
    """One per process: TensorFlow allows one, made before any other TensorFlow work, so
    `train` makes it before it reads the data."""
    try:
        return _MultiWorker(cluster_resolver=_slurm() if "TF_CONFIG" not in os.environ else None)
    except RuntimeError as err:  # "Collective ops must be configured at program startup"
        raise RuntimeError(
            f"--strategy multiworker must be a process's first TensorFlow work ({err}): "
            "start one `python -m zoo.train` per worker, with TF_CONFIG set."
        ) from None


def _callbacks(
    config: RunConfig,
    path: Path,
    info: zoo.data.DatasetInfo,
    steps: int,
    monitor: str,
    begun: float,
) -> list[keras.callbacks.Callback]:
    callbacks: list[keras.callbacks.Callback] = []
    fn = schedule_fn(
        config.schedule, config.lr, epochs=config.epochs, step_size=config.step_size,
        gamma=config.gamma, milestones=config.milestones, min_lr=config.min_lr,
    )  # fmt: skip
    if fn is None:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor,
                factor=config.gamma,
                patience=config.lr_patience,
                mode="max",
                min_lr=config.min_lr,
            )  # fmt: skip
        )
    else:
        callbacks.append(keras.callbacks.LearningRateScheduler(fn))
    callbacks.append(EpochExtras())  # after the schedule has set this epoch's lr
    if config.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor, patience=config.early_stopping, mode="max")
        )
    if config.time_limit:
        callbacks.append(TimeLimit(config.time_limit, begun))
    callbacks += [
        BestCheckpoint(path / "best.keras", monitor),
        keras.callbacks.TerminateOnNaN(),
        StepLosses(path / "steps.csv", info.num_examples["train"], config.batch_size, steps),
        EpochLog(path / "history.csv"),
    ]
    if config.keep_epochs:
        callbacks.append(KeepEpochs(path / "epochs"))
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(path / "tensorboard"))
    return callbacks


def _verbosity(verbose: int | None) -> int:
    if verbose is not None:
        return verbose
    return 1 if sys.stdout.isatty() else 2


def _finish(
    path: Path,
    config: RunConfig,
    info: zoo.data.DatasetInfo,
    model: keras.Model,
    splits: tuple[tf.data.Dataset, tf.data.Dataset, tf.data.Dataset],
    stop: str,
    begun: float,
    replicas: int,
) -> Run:
    """Evaluates the best weights on each split; writes metrics.json and the confusion matrix.

    A run without best weights (it diverged before an epoch with a finite loss) is not
    evaluated: its weights are not numbers.
    """
    best = path / "best.keras"
    if best.exists():
        model.load_weights(best)
    history = (
        pd.read_csv(path / "history.csv") if (path / "history.csv").exists() else pd.DataFrame()
    )
    results = {}
    for name, ds in zip(("train", "val", "test"), splits, strict=True):
        if not best.exists():
            break
        if info.num_examples[name] and (name != "test" or config.evaluate_test):
            loss, accuracy = model.evaluate(ds, verbose=0)
            results[name] = {"loss": float(loss), "accuracy": float(accuracy)}
    if "test" in results:
        labels = np.concatenate([y.numpy() for _, y in splits[2]])
        labels = labels.argmax(-1) if labels.ndim > 1 else labels
        predictions = model.predict(splits[2], verbose=0).argmax(-1)
        _write_confusion(path, info.class_names, labels, predictions)

    seconds = float(history["seconds"].sum()) if "seconds" in history else 0.0
    monitored = history.get("val_accuracy", history.get("accuracy"))
    if monitored is not None and "loss" in history:
        monitored = monitored.where(np.isfinite(history["loss"]))  # as BestCheckpoint chose
    # A run that diverged in its first epoch has no best epoch.
    best_epoch = (
        int(monitored.idxmax())
        if best.exists() and monitored is not None and monitored.notna().any()
        else None
    )
    metrics = {
        **results,
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "stop_reason": stop,
        "train_seconds": round(seconds, 2),
        "wall_seconds": round(time.perf_counter() - begun, 2),
        "train_images_per_second": round(info.num_examples["train"] * len(history) / seconds, 1)
        if seconds
        else None,
        "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "total_params": int(model.count_params()),
        "replicas": replicas,
        "steps_per_execution": model.steps_per_execution,
    }
    files.write_json(path / "metrics.json", metrics)
    if stop != "time_limit":  # that one `resume` continues from its last finished epoch
        shutil.rmtree(path / "backup", ignore_errors=True)
    return Run(path, config, history, files.finite(metrics))


def _write_confusion(
    path: Path, names: tuple[str, ...], labels: np.ndarray, predictions: np.ndarray
) -> None:
    count = len(names)
    matrix = np.bincount(labels * count + predictions, minlength=count * count).reshape(
        count, count
    )
    frame = pd.DataFrame(matrix, index=pd.Index(names, name="true"), columns=list(names))
    files.write_csv(path / "confusion_matrix.csv", frame)
