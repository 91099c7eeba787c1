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

import dataclasses
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

import zoo
import zoo.data
import zoo.layers
from zoo import files, runs
from zoo.recipes import RunConfig
from zoo.runs import Run, rebuild  # noqa: F401  (exported by zoo.train)
from zoo.runs import read_config as load_config  # noqa: F401  (exported by zoo.train)
from zoo.train import distribute, tta
from zoo.train.callbacks import (
    Backup,
    BestCheckpoint,
    EpochEstimate,
    EpochExtras,
    EpochLog,
    KeepEpochs,
    Lookahead,
    StepLosses,
    StepSchedule,
    TimeLimit,
    TimeLimitReached,
    schedule_fn,
    warmup_linear,
)
from zoo.train.compiling import (  # noqa: F401  (exported by zoo.train)
    compile_model,
    forward_activations,
    forward_flops,
    make_loss,
    make_optimizer,
    steps_per_execution,
)


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
        return _multiworker_run(config, runs.first_folder(config, Path(out)), verbose)
    with runs.claim(config, Path(out)) as (path, finished):
        if finished:
            return Run.read(path, trained=False)
        runs.reopen(path)
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
    config = dataclasses.replace(runs.read_config(path), stream=stream)
    if config.strategy == "multiworker":
        _check_multiworker(config)
        return _multiworker_run(config, path, verbose)
    with runs.locked(path) as got:
        if not got:
            raise RuntimeError(f"{path}: another process is training this run.")
        if runs.is_finished(path):
            return Run.read(path, trained=False)
        runs.reopen(path)
        return _run(config, path, verbose)


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
    chief = distribute.multiworker().extended.should_checkpoint
    if runs.read_metrics(path) is not None:
        return Run.read(path, trained=False)
    if chief:
        with runs.locked(path) as got:
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
        kept = runs.has_epochs(path)
        if not kept:
            shutil.rmtree(path, ignore_errors=True)
        if isinstance(err, KeyboardInterrupt) and not isinstance(err, Interrupted):
            raise Interrupted(path if kept else None) from None
        raise


# --- the run -------------------------------------------------------------------------------------


def _fit(config: RunConfig, path: Path, verbose: int | None) -> Run:
    begun = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(config.precision)
    start, saved = runs.latest_backup(path)
    state = json.loads((saved / "state.json").read_text()) if saved else None
    if state and state.get("reason") == "time_limit":
        state["reason"] = None  # continued by `resume`, for another time limit
    # metrics.json is written last: a run that has one, even damaged, has finished training.
    done = (path / runs.METRICS).exists()
    with zoo.data.reusing():  # the second load reuses the first's resizing and statistics
        train_ds, val_ds, test_ds, info = runs.data(config, epochs=(start, config.epochs))
        train_eval, *_ = runs.data(config, augment=False, shuffle=False)
    steps = math.ceil(info.num_examples["train"] / config.batch_size)
    has_val = info.num_examples["val"] > 0
    runs.write_record(path, config, info)

    strategy = distribute.strategy(config.strategy)
    with strategy.scope():
        model = zoo.build(
            config.model,
            input_shape=info.input_shape,
            num_classes=info.num_classes,
            **config.model_kwargs,
        )
        # A schedule set every step and Lookahead act at each call's steps only: one step each.
        stepwise = config.schedule == "warmup_linear" or config.lookahead
        per_call = config.steps_per_execution or (
            steps_per_execution(model, config.batch_size, steps)
            if config.strategy == "default" and not stepwise
            else 1
        )
        compile_model(model, config, per_call)
        if not saved:  # a resumed run's whitening filters come back with its weights
            _adapt(model, train_eval)
        if saved and not done:
            model.optimizer.build(model.trainable_variables)
            model.load_weights(saved / runs.BACKUP_WEIGHTS)
    monitor = "val_accuracy" if has_val else "accuracy"
    callbacks = _callbacks(config, path, info, steps, monitor, begun)
    if _verbosity(verbose) and not done:
        callbacks.append(EpochEstimate(steps))
    backup = Backup(path / runs.BACKUP, callbacks, state)
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


def _adapt(model: keras.Model, train_eval: tf.data.Dataset, images: int = 5000) -> None:
    """Sets data-initialized layers (airbench's whitening conv) from the first `images`
    training images, unaugmented, as the study's recipe does."""
    if not any(isinstance(layer, zoo.layers.Whitening) for layer in model.layers):
        return
    parts, count = [], 0
    for batch in train_eval:
        parts.append(np.asarray(batch[0]))
        count += len(parts[-1])
        if count >= images:
            break
    zoo.layers.adapt(model, np.concatenate(parts)[:images])


def _repaired_stop(path: Path, config: RunConfig) -> str:
    """The stop reason of a finished run whose metrics.json is being rewritten."""
    old = runs.read_metrics(path)
    if old and old.get("stop_reason"):
        return old["stop_reason"]
    if runs.has_weights(path):
        return "time_limit"  # the one stop that keeps its last state
    history = runs.read_history(path)
    return "completed" if len(history) >= config.epochs else "unknown"


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
    if config.schedule == "warmup_linear":
        rate = warmup_linear(config.lr, config.epochs * steps, config.warmup, config.min_lr)
        callbacks.append(StepSchedule(rate, steps))
    elif fn is None:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor,
                factor=config.gamma,
                patience=config.lr_patience,
                min_delta=config.lr_min_delta,
                mode="max",
                min_lr=config.min_lr,
            )  # fmt: skip
        )
    else:
        callbacks.append(keras.callbacks.LearningRateScheduler(fn))
    callbacks.append(EpochExtras())  # after the schedule has set this epoch's lr
    if config.lookahead:  # from 30 % of the run, as airbench94's epoch 3 of 10
        total = config.epochs * steps
        callbacks.append(Lookahead(total, steps, start=round(0.3 * total)))
    if config.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor, patience=config.early_stopping, mode="max")
        )
    if config.time_limit:
        callbacks.append(TimeLimit(config.time_limit, begun))
    callbacks += [
        BestCheckpoint(path / runs.BEST, monitor),
        keras.callbacks.TerminateOnNaN(),
        StepLosses(path / runs.STEPS, info.num_examples["train"], config.batch_size, steps),
        EpochLog(path / runs.HISTORY),
    ]
    if config.keep_epochs:
        callbacks.append(KeepEpochs(path / runs.KEPT))
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(path / runs.TENSORBOARD))
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
    best = path / runs.BEST
    if best.exists():
        model.load_weights(best)
    history = runs.read_history(path)
    results = {}
    for name, ds in zip(("train", "val"), splits[:2], strict=True):
        if best.exists() and info.num_examples[name]:
            loss, accuracy = model.evaluate(ds, verbose=0)
            results[name] = {"loss": float(loss), "accuracy": float(accuracy)}
    if best.exists() and info.num_examples["test"] and config.evaluate_test:
        results["test"], predictions, labels = _test(model, splits[2])
        _write_confusion(path, info.class_names, labels, predictions)
    if "test" in results and config.tta:  # beside, never instead of, plain test accuracy
        results["test_tta"] = {"accuracy": tta.accuracy(model, splits[2], config.tta),
                               "level": config.tta}  # fmt: skip

    seconds = float(history["seconds"].sum()) if "seconds" in history else 0.0
    monitored = history.get("val_accuracy", history.get("accuracy"))
    if monitored is not None and "loss" in history:
        monitored = monitored.where(np.isfinite(history["loss"]))  # as BestCheckpoint chose
    # A run that diverged in its first epoch has no best epoch. Counted from 1, as history.csv.
    best_epoch = (
        int(history["epoch"][monitored.idxmax()])
        if best.exists() and monitored is not None and monitored.notna().any()
        else None
    )
    metrics = {
        **results,
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "epochs_counted_from": 1,
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
    files.write_json(path / runs.METRICS, metrics)
    if stop != "time_limit":  # that one `resume` continues from its last finished epoch
        shutil.rmtree(path / runs.BACKUP, ignore_errors=True)
    return Run(path, config, history, files.finite(metrics))


def _test(model: keras.Model, test: tf.data.Dataset) -> tuple[dict, np.ndarray, np.ndarray]:
    """Loss and accuracy on the test split, its predicted and true classes, from one pass of
    the model (`evaluate` and then `predict` for the confusion matrix took two). The loss is
    the compiled one with the regularization terms, as `evaluate` reports it."""
    logits = model.predict(test, verbose=0)
    targets = np.concatenate([np.asarray(y) for _, y in test])
    loss = model.compute_loss(y=targets, y_pred=logits, training=False)
    predictions = logits.argmax(-1)
    labels = targets.argmax(-1) if targets.ndim > 1 else targets
    scores = {"loss": float(loss), "accuracy": float(np.mean(predictions == labels))}
    return scores, predictions, labels


def _write_confusion(
    path: Path, names: tuple[str, ...], labels: np.ndarray, predictions: np.ndarray
) -> None:
    count = len(names)
    matrix = np.bincount(labels * count + predictions, minlength=count * count).reshape(
        count, count
    )
    frame = pd.DataFrame(matrix, index=pd.Index(names, name="true"), columns=list(names))
    files.write_csv(path / runs.CONFUSION, frame)
