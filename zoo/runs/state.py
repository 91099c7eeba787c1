"""What a run folder holds, read back: metrics, histories, backups, the finished run, its
model and its data; and whether the run is finished."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from zoo.recipes import RunConfig
from zoo.runs.layout import BACKUP, BACKUP_WEIGHTS, read_config, read_record

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from zoo.data import DatasetInfo


def read_metrics(path: str | Path) -> dict[str, Any] | None:
    """metrics.json, or None when it is missing or damaged; `best_epoch` counted from 1."""
    try:
        metrics = json.loads((Path(path) / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict):
        return None
    # Written before epochs counted from 1, which every metrics.json since says.
    if metrics.get("epochs_counted_from") != 1 and isinstance(metrics.get("best_epoch"), int):
        metrics["best_epoch"] += 1
    return metrics


def read_history(path: str | Path) -> pd.DataFrame:
    """history.csv (a row per finished epoch); empty before the first epoch."""
    return _csv(Path(path) / "history.csv")


def read_steps(path: str | Path) -> pd.DataFrame:
    """steps.csv (a row per step, or per call into the backend); empty before the first."""
    return _csv(Path(path) / "steps.csv")


def read_confusion(path: str | Path) -> pd.DataFrame | None:
    """confusion_matrix.csv (true classes down, predicted across), or None without one."""
    file = Path(path) / "confusion_matrix.csv"
    return pd.read_csv(file, index_col=0) if file.is_file() else None


def _csv(file: Path) -> pd.DataFrame:
    """An epoch table; empty when there is none yet.

    Raises:
        ValueError: The file is not an epoch table (no numeric epoch column).
    """
    try:
        frame = pd.read_csv(file)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return pd.DataFrame()
    if "epoch" not in frame or not pd.api.types.is_numeric_dtype(frame["epoch"]):
        raise ValueError(f"{file}: not a zoo epoch table (no numeric epoch column).")
    if len(frame) and frame["epoch"].iloc[0] == 0:  # written before epochs counted from 1
        frame["epoch"] += 1
    return frame


def latest_backup(path: str | Path) -> tuple[int, Path | None]:
    """The last epoch count saved in the run's backup/, and its folder; `(0, None)` if none."""
    folder = Path(path) / BACKUP
    saved = sorted(folder.glob("epoch-*")) if folder.is_dir() else []
    return (int(saved[-1].name.split("-")[1]), saved[-1]) if saved else (0, None)


def has_epochs(path: str | Path) -> bool:
    """Whether the run has finished an epoch worth keeping (a backup, or its metrics)."""
    return latest_backup(path)[0] > 0 or (Path(path) / "metrics.json").exists()


def has_weights(path: str | Path) -> bool:
    """Whether the run kept the full state of its last epoch (a time-limited stop does)."""
    saved = latest_backup(path)[1]
    return saved is not None and (saved / BACKUP_WEIGHTS).is_file()


def continues(path: str | Path) -> bool:
    """Whether a run with a metrics.json trains on: its time limit stopped it, with its last
    epoch's state kept (or with no epoch, from before every invocation finished one)."""
    metrics = read_metrics(path) or {}
    if metrics.get("stop_reason") != "time_limit":
        return False
    return not metrics.get("epochs_run") or has_weights(path)


def is_finished(path: str | Path) -> bool:
    """Whether the run is done: evaluated (metrics.json), and not one its time limit paused."""
    return read_metrics(path) is not None and not continues(path)


def reopen(path: str | Path) -> None:
    """Makes a time-limited run unfinished again (its metrics.json goes), so it trains on."""
    if read_metrics(path) is not None and continues(path):
        (Path(path) / "metrics.json").unlink()


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
        """Reads a run folder that has its metrics.json.

        Raises:
            FileNotFoundError: No config.json there.
            ValueError: config.json or metrics.json is missing or damaged.
        """
        path = Path(path)
        metrics = read_metrics(path)
        if metrics is None:
            raise ValueError(f"{path}: metrics.json is missing or damaged.")
        return cls(path, read_config(path), read_history(path), metrics, trained)


def best_model(path: str | Path) -> keras.Model:
    """The run's best epoch, uncompiled (its best.keras).

    Raises:
        FileNotFoundError: The run kept no best epoch (not finished, or it diverged first).
    """
    import keras

    file = Path(path) / "best.keras"
    if not file.is_file():
        raise FileNotFoundError(f"{path}: not a finished run (no best.keras).")
    return keras.models.load_model(file, compile=False)


def kept_epochs(path: str | Path) -> list[Path]:
    """The weights files of every epoch a `keep_epochs` run kept, in epoch order."""
    return sorted((Path(path) / "epochs").glob("epoch-*.weights.h5"))


def rebuild(path: str | Path) -> keras.Model:
    """Builds the untrained model of a run from its config.json alone."""
    import zoo

    saved = read_record(path)
    config = RunConfig(**saved["config"])
    return zoo.build(
        config.model,
        input_shape=tuple(saved["input_shape"]),
        num_classes=saved["num_classes"],
        **config.model_kwargs,
    )


def data(
    config: RunConfig, **changes: Any
) -> tuple[tf.data.Dataset, tf.data.Dataset, tf.data.Dataset, DatasetInfo]:
    """The run's train / val / test pipelines, as `zoo.data.load` gives them for its settings.

    Labels come as the run's loss takes them (one-hot under label smoothing). `changes`
    override `zoo.data.load`'s arguments (e.g. `augment=False, shuffle=False`, or another
    `batch_size` for probes); the split, subset, image size, seed and normalization stay the run's.
    """
    import tensorflow as tf

    import zoo.data

    args = dict(
        data_dir=config.data_dir, batch_size=config.batch_size, val_split=config.val_split,
        subset=config.subset, test_subset=config.test_subset, image_size=config.image_size,
        seed=config.seed,
        normalize=config.normalize, augment=config.augment, stream=config.stream,
    )  # fmt: skip
    *splits, info = zoo.data.load(config.home_dataset, **{**args, **changes})
    if config.label_smoothing:
        splits = [d.map(lambda x, y: (x, tf.one_hot(y, info.num_classes))) for d in splits]
    return splits[0], splits[1], splits[2], info
