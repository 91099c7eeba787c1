"""The few callbacks Keras does not have: per-step losses, epoch extras, resumable state."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from zoo import compat, files, runs


def schedule_fn(
    schedule: str,
    lr: float,
    *,
    epochs: int,
    step_size: int,
    gamma: float,
    milestones: tuple[int, ...],
    min_lr: float,
) -> Callable[[int], float] | None:
    """The learning rate of each epoch (0-based) for an epoch-wise schedule.

    Returns None for `plateau`, which `keras.callbacks.ReduceLROnPlateau` drives.
    """
    if schedule == "constant":
        return lambda epoch: lr
    if schedule == "step":
        return lambda epoch: lr * gamma ** (epoch // step_size)
    if schedule == "halving":
        return lambda epoch: lr * 0.5 ** (epoch // step_size)
    if schedule == "multistep":
        return lambda epoch: lr * gamma ** sum(epoch >= m for m in milestones)
    if schedule == "exponential":
        return lambda epoch: lr * gamma**epoch
    if schedule == "cosine":
        return lambda epoch: min_lr + (lr - min_lr) * (1 + math.cos(math.pi * epoch / epochs)) / 2
    if schedule in ("plateau", "warmup_linear"):  # ReduceLROnPlateau; StepSchedule
        return None
    raise ValueError(f"Unknown schedule {schedule!r}.")


def warmup_linear(lr: float, total: int, warmup: float, end: float) -> Callable[[int], float]:
    """The rate at each training step of `total`: from `lr / 5` up to `lr` over the first
    `warmup` fraction of steps, then straight down towards `end`, which the step after the
    last would reach (airbench94's shape:
    warm-up 0.23, end 0.07 lr; without warm-up, airbench's Muon: lr down to 0)."""
    top = round(warmup * total)

    def rate(step: int) -> float:
        if step < top:
            return lr * (0.2 + 0.8 * step / top)
        return lr + (end - lr) * (step - top) / max(1, total - top)

    return rate


class StepSchedule(keras.callbacks.Callback):
    """Sets the rate of every training step from `rate(step)`, counting steps over epochs, so
    a run resumed at epoch k continues the schedule where it stood. Under
    `steps_per_execution` > 1 the rate changes once per call, at its first step."""

    def __init__(self, rate: Callable[[int], float], steps_per_epoch: int) -> None:
        super().__init__()
        self.rate, self.steps_per_epoch, self._epoch = rate, steps_per_epoch, 0

    def _set(self, step: int) -> None:
        self.model.optimizer.learning_rate = self.rate(step)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        self._set(epoch * self.steps_per_epoch)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._set(self._epoch * self.steps_per_epoch + batch)


class Lookahead(keras.callbacks.Callback):
    """airbench94's Lookahead: from `start` of the run's `total` steps, every `every` steps the
    weights (BN statistics too) become `ρ · slow + (1 - ρ) · fast`, and the slow copy with
    them, where `ρ = decay^every · (step / total)³` grows towards the end, so the last steps
    average the most. The slow copy is the weights as the last update left them: a run
    resumed at an epoch boundary, where the two agree, continues exactly."""

    def __init__(self, total: int, steps_per_epoch: int, start: int, every: int = 5,
                 decay: float = 0.95) -> None:  # fmt: skip
        super().__init__()
        self.total, self.steps_per_epoch, self.start = total, steps_per_epoch, start
        self.every, self.decay = every, decay
        self._slow: list[np.ndarray] | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        if self._slow is None and epoch * self.steps_per_epoch >= self.start:
            self._slow = self.model.get_weights()  # resumed: the last epoch ended on it

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        step = self._epoch * self.steps_per_epoch + batch + 1
        if step < self.start or step % self.every:
            return
        fast = self.model.get_weights()
        if self._slow is not None:
            rho = self.decay**self.every * (step / self.total) ** 3
            fast = [rho * s + (1 - rho) * f for s, f in zip(self._slow, fast, strict=True)]
            self.model.set_weights(fast)
        self._slow = fast

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        # The epoch ends on the slow weights, as airbench94's does (steps since the last
        # update are dropped), so a resumed run starts from what a continuing one has.
        if self._slow is not None:
            self.model.set_weights(self._slow)


class EpochExtras(keras.callbacks.Callback):
    """Adds `lr` and `seconds` to each epoch's logs, so EpochLog writes them to history.csv.

    Goes after the schedule callback: it reads the rate the schedule set for this epoch, before
    ReduceLROnPlateau may lower it for the next one.
    """

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()
        self._lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["lr"] = self._lr
            logs["seconds"] = round(time.perf_counter() - self._start, 3)
            logs.pop("learning_rate", None)  # the scheduler's copy; `lr` is the one used


class TimeLimitReached(Exception):
    """Raised inside an epoch when the time limit passes; the epoch's partial work is dropped."""


class TimeLimit(keras.callbacks.Callback):
    """Stops training once `minutes` have passed in this process, after at least one epoch.

    At an epoch's end it stops training as EarlyStopping would. Inside a later epoch (one can
    take longer than the whole limit) it raises `TimeLimitReached` after the step that passes
    the limit, so that nothing of the unfinished epoch is logged, checkpointed or backed up:
    the run keeps the state of its last finished epoch, from which the same command continues.
    The first epoch of each invocation always finishes, so a limit shorter than an epoch still
    makes progress, an epoch per invocation, and never leaves a run without one.
    """

    def __init__(self, minutes: float, start: float | None = None) -> None:
        """`start`: the `time.perf_counter()` the limit counts from (default: training's start)."""
        super().__init__()
        self.seconds = minutes * 60
        self._start = start
        self.reached = False
        self._epochs = 0  # finished in this process

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self._start is None:
            self._start = time.perf_counter()

    def _passed(self) -> bool:
        self.reached = time.perf_counter() - self._start >= self.seconds
        return self.reached

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._epochs and self._passed():
            raise TimeLimitReached(f"time limit of {self.seconds / 60:g} minutes reached")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._epochs += 1
        # After EarlyStopping: a run it stopped at the same epoch ends as early-stopped, so
        # the same command does not train it on. The last epoch ends the run as completed.
        last = epoch + 1 >= (self.params or {}).get("epochs", math.inf)
        if not self.model.stop_training and not last and self._passed():
            self.model.stop_training = True


class EpochEstimate(keras.callbacks.Callback):
    """Says, early in a run's first epoch here, how long an epoch will take when that is over
    a minute, from the first steps after the first call (which traces and compiles).

    Args:
        steps: Steps per epoch.
        write: Where the line goes (default `print`).
    """

    AFTER_SECONDS = 5.0  # of timed steps before estimating
    SHOWN_OVER = 60.0  # seconds an epoch must take for the estimate to be shown

    def __init__(self, steps: int, write: Any = print) -> None:
        super().__init__()
        self.steps, self.write = steps, write
        self._first: tuple[int, float] | None = None
        self.estimate: float | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        # An epoch that ended before the estimate was due was short: nothing to announce, and
        # the next epoch's batch numbers start again from 0.
        if self.estimate is None:
            self.estimate = math.nan

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.estimate is not None:
            return
        now = time.perf_counter()
        if self._first is None:
            self._first = (batch, now)
            return
        done, elapsed = batch - self._first[0], now - self._first[1]
        if elapsed < self.AFTER_SECONDS or done <= 0:
            return
        self.estimate = elapsed / done * self.steps
        if self.estimate > self.SHOWN_OVER:
            self.write(
                f"an epoch will take about {_duration(self.estimate)} "
                f"({self.steps} steps of {elapsed / done:.2f} s)"
            )


def _duration(seconds: float) -> str:
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class EpochTable:
    """A CSV file of per-epoch rows, rewritten whole and atomically at every epoch's end.

    Appending in place (Keras's CSVLogger) leaves a torn last line when a kill comes during
    the write. On a resumed run, the rows of epochs from the resumed one on are dropped: a kill
    between an epoch's rows and its backup would otherwise repeat them.

    The `epoch` column counts from 1, as the progress bar and the reports do; the methods take
    Keras's epoch index, which counts from 0. A file written before the zoo counted from 1
    (its first row is epoch 0) is renumbered when it is read back.
    """

    def __init__(self, path: Path, columns: tuple[str, ...] | None = None) -> None:
        self.path = Path(path)
        self.columns = columns
        self.rows: list[dict[str, Any]] | None = None

    def start(self, epoch: int) -> None:
        """Reads the rows of the epochs before Keras's epoch `epoch` (once, at the first epoch
        run)."""
        if self.rows is not None:
            return
        self.rows = []
        if self.path.is_file():
            with open(self.path, newline="") as f:
                rows = list(csv.DictReader(f))
            shift = 1 if rows and int(rows[0]["epoch"]) == 0 else 0
            for row in rows:
                row["epoch"] = int(row["epoch"]) + shift
            self.rows = [r for r in rows if r["epoch"] <= epoch]
            if self.rows and self.columns is None:
                self.columns = tuple(self.rows[0])

    def add(self, epoch: int, rows: list[dict[str, Any]]) -> None:
        """Appends an epoch's rows and writes the whole file."""
        self.start(epoch)
        self.rows += rows
        if self.columns is None:
            self.columns = tuple(rows[0]) if rows else ()
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(self.columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.rows)
        files.write_text(self.path, out.getvalue())


class EpochLog(keras.callbacks.Callback):
    """Writes history.csv: a row per epoch, `epoch` then the logs' keys sorted (as CSVLogger).

    Goes after EpochExtras, whose `lr` and `seconds` it writes too.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.table = EpochTable(path)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.table.start(epoch)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        row = {"epoch": epoch + 1, **{k: _plain(logs[k]) for k in sorted(logs)}}
        if self.table.columns is None or set(row) - set(self.table.columns):
            self.table.columns = tuple(row)
        self.table.add(epoch, [row])


class KeepEpochs(keras.callbacks.Callback):
    """Keeps the model's weights after every epoch as `folder/epoch-NNN.weights.h5` (1-based),
    written atomically; the training trajectory is drawn from them."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = Path(folder)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with files.replacing(self.folder / f"epoch-{epoch + 1:03d}.weights.h5") as tmp:
            self.model.save_weights(tmp)


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model to `path` (best.keras) whenever `monitor` reaches a new maximum.

    Unlike Keras's ModelCheckpoint, it writes atomically (Keras saves in place, and a kill
    during that write leaves a file that cannot be loaded), and it never keeps weights from
    an epoch whose training loss was not finite: a run that diverges in its first epoch can
    still score a finite accuracy (every prediction the same class) with NaN weights.
    """

    def __init__(self, path: Path, monitor: str) -> None:
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.best = -math.inf  # Backup saves and restores it

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        value = float(logs.get(self.monitor, math.nan))
        if not (math.isfinite(value) and math.isfinite(float(logs.get("loss", math.nan)))):
            return
        if value > self.best:
            self.best = value
            with files.replacing(self.path) as tmp:
                self.model.save(tmp)


class StepLosses(keras.callbacks.Callback):
    """Writes every training step's own loss to steps.csv, one epoch at a time.

    Keras reports the running mean of the epoch's loss, weighted by batch size; the step's own
    loss is recovered from two consecutive means and the known batch sizes. With several steps
    per call (`steps_per_execution`), Keras reports once per call, and the row holds the mean
    loss of the call's steps, numbered by its last step.
    """

    COLUMNS = ("epoch", "batch", "step", "loss")

    def __init__(self, path: Path, examples: int, batch_size: int, steps_per_epoch: int) -> None:
        super().__init__()
        self.table = EpochTable(path, self.COLUMNS)
        self.steps_per_epoch = steps_per_epoch
        last = examples - batch_size * (steps_per_epoch - 1)
        self.sizes = [batch_size] * (steps_per_epoch - 1) + [last]

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.table.start(epoch)
        self._epoch = epoch
        self._rows: list[tuple[int, int, int, float]] = []
        self._seen, self._total, self._next = 0, 0.0, 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        mean = float((logs or {}).get("loss", np.nan))
        steps = compat.call_steps(batch, self._next, self.steps_per_epoch)
        seen = self._seen + (sum(self.sizes[steps.start : steps.stop]) or self.sizes[-1])
        self._next, last = steps.stop, steps[-1]
        loss = (mean * seen - self._total) / (seen - self._seen)
        self._seen, self._total = seen, mean * seen
        # Steps and batches count from 0 (TensorBoard's steps), epochs from 1 (history.csv's).
        step = self.steps_per_epoch * self._epoch + last
        self._rows.append((self._epoch + 1, last, step, loss))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        rows = [dict(zip(self.COLUMNS, (e, b, s, f"{loss:.6g}"), strict=True))
                for e, b, s, loss in self._rows]  # fmt: skip
        self.table.add(epoch, rows)


class Backup(keras.callbacks.Callback):
    """Saves the whole training state at every epoch's end, atomically, for `resume`.

    One folder per saved epoch holds the weights with the optimizer's state, and the counters of
    EarlyStopping, ReduceLROnPlateau and BestCheckpoint, which a resumed run needs to stop,
    decay and checkpoint at the same epochs as an uninterrupted one. The folder is written
    under a temporary name and renamed when complete, so a kill while saving leaves the
    previous epoch's backup whole. (Keras's BackupAndRestore writes its weights file in place;
    a kill during that write leaves a file that cannot be read.)
    """

    FIELDS = {**compat.CALLBACK_COUNTERS, "BestCheckpoint": ("best",)}

    def __init__(
        self, folder: Path, callbacks: list[keras.callbacks.Callback], restored: dict | None
    ) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.tracked = [c for c in callbacks if type(c).__name__ in self.FIELDS]
        self.time_limits = [c for c in callbacks if isinstance(c, TimeLimit)]
        self.restored = restored or {}
        self.reason: str | None = self.restored.get("reason")  # why training stopped early
        self.nan = bool(self.restored.get("nan"))

    def on_train_begin(self, logs: dict | None = None) -> None:
        # Runs after the tracked callbacks have reset themselves in their own on_train_begin.
        missing = [
            f"{type(cb).__name__}.{name}"
            for cb in self.tracked
            for name in self.FIELDS[type(cb).__name__]
            if not hasattr(cb, name)
        ]
        if missing:  # Keras renamed a counter (see zoo.compat): resumed runs restart it
            warnings.warn(
                f"Backup cannot save {', '.join(missing)}: no such attribute.", stacklevel=2
            )
        saved = dict(self.restored.get("callbacks", {}))
        # Backups written before BestCheckpoint replaced Keras's ModelCheckpoint keep its best.
        saved.setdefault("BestCheckpoint", saved.get("ModelCheckpoint", {}))
        for cb in self.tracked:
            for name, value in saved.get(type(cb).__name__, {}).items():
                if hasattr(cb, name):
                    setattr(cb, name, value)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.nan = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.model.stop_training and not self.nan:
            timed_out = any(cb.reached for cb in self.time_limits)
            self.reason = "time_limit" if timed_out else "early_stopping"
        state = {
            "epoch": epoch + 1,
            "reason": self.reason,
            "nan": self.nan,
            "callbacks": {
                type(cb).__name__: {
                    name: _plain(getattr(cb, name))
                    for name in self.FIELDS[type(cb).__name__]
                    if hasattr(cb, name)
                }
                for cb in self.tracked
            },
        }
        final = self.folder / f"epoch-{epoch + 1:05d}"
        shutil.rmtree(final, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        with files.replacing(final) as tmp:
            tmp.mkdir()
            self.model.save_weights(tmp / runs.BACKUP_WEIGHTS)
            (tmp / "state.json").write_text(json.dumps(files.finite(state)))
        for old in self.folder.glob("epoch-*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value
