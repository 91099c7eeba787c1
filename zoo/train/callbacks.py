"""The few callbacks Keras does not have: per-step losses, epoch extras, resumable state."""

from __future__ import annotations

import csv
import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np


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
    if schedule == "plateau":
        return None
    raise ValueError(f"Unknown schedule {schedule!r}.")


class EpochExtras(keras.callbacks.Callback):
    """Adds `lr` and `seconds` to each epoch's logs, so CSVLogger writes them to history.csv.

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


class TimeLimit(keras.callbacks.Callback):
    """Stops training after the epoch in which the run's training time passes `minutes`."""

    def __init__(self, minutes: float) -> None:
        super().__init__()
        self.seconds = minutes * 60
        self.spent = 0.0  # Backup restores the seconds of the epochs before a resume
        self.reached = False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.spent += float((logs or {}).get("seconds", 0.0))
        if self.spent >= self.seconds:
            self.reached = True
            self.model.stop_training = True


class StepLosses(keras.callbacks.Callback):
    """Writes every training step's own loss to steps.csv, one epoch at a time.

    Keras reports the running mean of the epoch's loss, weighted by batch size; the step's own
    loss is recovered from two consecutive means and the known batch sizes. With several steps
    per call (`steps_per_execution`), Keras reports once per call, and the row holds the mean
    loss of the call's steps, numbered by its last step.
    """

    def __init__(self, path: Path, examples: int, batch_size: int, steps_per_epoch: int) -> None:
        super().__init__()
        self.path = Path(path)
        self.steps_per_epoch = steps_per_epoch
        last = examples - batch_size * (steps_per_epoch - 1)
        self.sizes = [batch_size] * (steps_per_epoch - 1) + [last]

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        self._rows: list[tuple[int, int, int, float]] = []
        self._seen, self._total, self._next = 0, 0.0, 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        mean = float((logs or {}).get("loss", np.nan))
        seen = self._seen + (sum(self.sizes[self._next : batch + 1]) or self.sizes[-1])
        self._next = batch + 1
        loss = (mean * seen - self._total) / (seen - self._seen)
        self._seen, self._total = seen, mean * seen
        # 0-based like CSVLogger's epoch column in history.csv.
        step = self.steps_per_epoch * self._epoch + batch
        self._rows.append((self._epoch, batch, step, loss))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        new = not self.path.exists()
        with open(self.path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["epoch", "batch", "step", "loss"])
            writer.writerows((e, b, s, f"{loss:.6g}") for e, b, s, loss in self._rows)


class Backup(keras.callbacks.Callback):
    """Saves the whole training state at every epoch's end, atomically, for `resume`.

    One folder per saved epoch holds the weights with the optimizer's state, and the counters of
    EarlyStopping, ReduceLROnPlateau and ModelCheckpoint, which a resumed run needs to stop,
    decay and checkpoint at the same epochs as an uninterrupted one. The folder is written
    under a temporary name and renamed when complete, so a kill while saving leaves the
    previous epoch's backup whole. (Keras's BackupAndRestore writes its weights file in place;
    a kill during that write leaves a file that cannot be read.)
    """

    FIELDS = {
        "EarlyStopping": ("wait", "best", "best_epoch"),
        "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
        "ModelCheckpoint": ("best",),
        "TimeLimit": ("spent",),
    }
    WEIGHTS = "state.weights.h5"

    def __init__(
        self, folder: Path, callbacks: list[keras.callbacks.Callback], restored: dict | None
    ) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.tracked = [c for c in callbacks if type(c).__name__ in self.FIELDS]
        self.restored = restored or {}
        self.reason: str | None = self.restored.get("reason")  # why training stopped early
        self.nan = bool(self.restored.get("nan"))

    @classmethod
    def latest(cls, folder: Path) -> tuple[int, Path | None]:
        """The last saved epoch count and its folder, or `(0, None)` when none was saved."""
        saved = sorted(Path(folder).glob("epoch-*")) if Path(folder).is_dir() else []
        return (int(saved[-1].name.split("-")[1]), saved[-1]) if saved else (0, None)

    def on_train_begin(self, logs: dict | None = None) -> None:
        # Runs after the tracked callbacks have reset themselves in their own on_train_begin.
        for cb in self.tracked:
            for name, value in (
                self.restored.get("callbacks", {}).get(type(cb).__name__, {}).items()
            ):
                setattr(cb, name, value)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.nan = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.model.stop_training and not self.nan:
            timed_out = any(getattr(cb, "reached", False) for cb in self.tracked)
            self.reason = "time_limit" if timed_out else "early_stopping"
        state = {
            "epoch": epoch + 1,
            "reason": self.reason,
            "nan": self.nan,
            "callbacks": {
                type(cb).__name__: {
                    name: _plain(getattr(cb, name, None)) for name in self.FIELDS[type(cb).__name__]
                }
                for cb in self.tracked
            },
        }
        final = self.folder / f"epoch-{epoch + 1:05d}"
        tmp = self.folder / f".epoch-{epoch + 1:05d}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.model.save_weights(tmp / self.WEIGHTS)
        (tmp / "state.json").write_text(json.dumps(state))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in self.folder.glob("epoch-*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value
