"""Run folders: the one module that names, finds, claims, reads and migrates them.

Everything that opens a run folder goes through here: the trainer, reports, landscapes,
surfaces, trajectories, smoothness probes, searches and studies. A folder `zoo.train` writes:

    config.json           every resolved setting, the data's shape, versions (`CONFIG_FORMAT`)
    history.csv           a row per finished epoch
    steps.csv             a row per step (per call into the backend above one step per call)
    best.keras            the best epoch's model
    metrics.json          written last: train / val / test of the best weights, why it stopped
    confusion_matrix.csv  the best weights on test
    backup/epoch-N/       the state after epoch N, while the run can still continue
    epochs/, tensorboard/ with `keep_epochs` and `tensorboard`

Identity: two configs are the same run when they train the same thing (`same_run`). Where the
data is read from (`data_dir`, `stream`) and logging (`tensorboard`) are not identity, so the
same run is found however its data is given; every other setting is. A folder's name carries a
digest of the identity; a folder named under an older rule is found by the settings it holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import glob
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from zoo.recipes import RunConfig

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from zoo.data import DatasetInfo

# The format of config.json that `zoo.train` writes; `migrate` reads every earlier one.
CONFIG_FORMAT = 3
# The files of a run folder, by role; writers and readers name them through these.
CONFIG, HISTORY, STEPS, METRICS = "config.json", "history.csv", "steps.csv", "metrics.json"
BEST, CONFUSION, KEPT, TENSORBOARD = "best.keras", "confusion_matrix.csv", "epochs", "tensorboard"
BACKUP, BACKUP_WEIGHTS = "backup", "state.weights.h5"


# --- identity -----------------------------------------------------------------------------------


def _fields(config: RunConfig) -> dict[str, Any]:
    """Every field but those declared `compare=False` (data location, streaming, logging)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.compare}


def identity(config: RunConfig) -> dict[str, Any]:
    """The settings that make a run what it is: every field but those declared
    `compare=False` in `RunConfig` (data location, streaming, logging), with the toggles
    spelt out over the builder's defaults (a default given or left out trains the same)."""
    from zoo import registry

    fields = _fields(config)
    fields["model_kwargs"] = {**registry.describe(config.model).toggles, **config.model_kwargs}
    return fields


def same_run(a: RunConfig, b: RunConfig) -> bool:
    """Whether two configs train the same run."""
    return identity(a) == identity(b)


# Settings renamed since run folders were first named, hashed under their old names so that
# the same settings keep the same folder (config.json format 1 called decoupled_decay
# weight_decay).
_DIGEST_NAMES = {"decoupled_decay": "weight_decay"}
# Defaults that changed since run folders were first named, hashed at their old values: a
# float32 run keeps the name it had when float32 was the default, before `auto`.
_DIGEST_DEFAULTS = {"precision": "float32"}


def digest(config: RunConfig) -> str:
    """Eight hex digits of the run's settings as given, the last part of its folder's name
    (toggles as given, so names written before `identity` spelt them out stay the same)."""
    # Settings left at their defaults are out, so a setting added later keeps old runs' names.
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    changed = {
        _DIGEST_NAMES.get(name, name): value
        for name, value in _fields(config).items()
        if defaults[name] is dataclasses.MISSING
        or value != _DIGEST_DEFAULTS.get(name, defaults[name])
    }
    text = json.dumps(changed, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def folder_name(config: RunConfig) -> str:
    """`<model>-<dataset>-<digest>`: the first folder a run of `config` is given."""
    return f"{config.model}-{config.home_dataset}-{digest(config)}"


# --- reading --------------------------------------------------------------------------------------


# Models whose `bn` normalized their dense head too until format 3 gave that to `head_bn`.
_BN_WAS_HEAD_BN = ("lenet", "tiny_baseline", "deeper_convnet", "three_layer_convnet")


def migrate(saved: dict[str, Any]) -> dict[str, Any]:
    """A run folder's config.json record brought to today's format (`CONFIG_FORMAT`).

    Format 1 (no "format" key) named the optimizer's decoupled decay `weight_decay`, and stored
    momentum 0.9 by default, which `rmsprop` ignored: it always ran without momentum. Its
    `inception_v1` had one stem conv of `stem_filters` (192), today's `stem=(192,)`. A config
    without a precision predates the `auto` default: it ran at float32. Until format 3, `bn` of
    LeNet, S3's and S0's nets also normalized their dense layers, today's `head_bn`; their
    `channels` / `widths` are today's `filters` (the registry's aliases read them).

    Args:
        saved: The parsed config.json (left unchanged).

    Returns:
        A copy with `"format": CONFIG_FORMAT` and its "config" in today's names.

    Raises:
        ValueError: A format this version of zoo does not know.
    """
    version = saved.get("format", 1)
    if not isinstance(version, int) or not 1 <= version <= CONFIG_FORMAT:
        raise ValueError(
            f"config.json format {version!r} is not one this zoo reads (1 to {CONFIG_FORMAT})."
        )
    saved = dict(saved)
    saved["config"] = {"precision": "float32", **saved["config"]}
    if version == 1:
        config = dict(saved["config"])
        config["decoupled_decay"] = config.pop("weight_decay", 0.0)
        momentum = config.get("momentum", 0.9)
        if config.get("optimizer") == "rmsprop":
            config["momentum"] = None if momentum == 0.9 else 0.0  # it ran without momentum
        elif momentum == 0.9:
            config["momentum"] = None  # the old default
        if config.get("model") == "inception_v1":  # format 1 had one stem conv, of 192
            toggles = dict(config.get("model_kwargs") or {})
            toggles["stem"] = (toggles.pop("stem_filters", 192),)
            config["model_kwargs"] = toggles
        saved["config"] = config
    if version <= 2:
        toggles = dict(saved["config"].get("model_kwargs") or {})
        if saved["config"].get("model") in _BN_WAS_HEAD_BN and toggles.get("bn"):
            toggles.setdefault("head_bn", True)  # `bn` normalized the dense head too then
            saved["config"] = {**saved["config"], "model_kwargs": toggles}
    saved["format"] = CONFIG_FORMAT
    return saved


def read_record(path: str | Path) -> dict[str, Any]:
    """A run folder's config.json, migrated to today's format.

    Raises:
        FileNotFoundError: No config.json there.
        ValueError: config.json is damaged or not a zoo run's.
    """
    file = Path(path) / "config.json"
    if not file.is_file():
        raise FileNotFoundError(f"{path}: not a run folder (no config.json).")
    try:
        saved = migrate(json.loads(file.read_text()))
        RunConfig(**saved["config"])
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise ValueError(f"{file}: damaged or not a zoo run's config ({err}).") from None
    return saved


def read_config(path: str | Path) -> RunConfig:
    """The `RunConfig` saved in a run folder, in today's names (see `migrate`).

    Raises:
        FileNotFoundError: No config.json there.
        ValueError: config.json is damaged.
    """
    return RunConfig(**read_record(path)["config"])


def read_metrics(path: str | Path) -> dict[str, Any] | None:
    """metrics.json, or None when it is missing or damaged."""
    try:
        metrics = json.loads((Path(path) / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) else None


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
    `batch_size` for probes); the split, subset, seed and normalization stay the run's.
    """
    import tensorflow as tf

    import zoo.data

    args = dict(
        data_dir=config.data_dir, batch_size=config.batch_size, val_split=config.val_split,
        subset=config.subset, test_subset=config.test_subset, seed=config.seed,
        normalize=config.normalize, augment=config.augment, stream=config.stream,
    )  # fmt: skip
    *splits, info = zoo.data.load(config.home_dataset, **{**args, **changes})
    if config.label_smoothing:
        splits = [d.map(lambda x, y: (x, tf.one_hot(y, info.num_classes))) for d in splits]
    return splits[0], splits[1], splits[2], info


# --- writing ------------------------------------------------------------------------------------


def write_record(path: Path, config: RunConfig, info: DatasetInfo) -> None:
    """Writes config.json for a run starting in `path`; a resumed run keeps its first record
    (an older format's is rewritten in today's names, keeping when and from what it began)."""
    import datetime
    import platform
    import sys

    import keras
    import tensorflow as tf

    import zoo
    from zoo import files
    from zoo.recipes import recipe

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
            return
        first = migrate(written)
        saved["created"] = first.get("created", saved["created"])
        saved["recipe"] = first.get("recipe", saved["recipe"])
    files.write_json(file, saved)


# --- finding and claiming -------------------------------------------------------------------------


@contextlib.contextmanager
def locked(path: Path) -> Iterator[bool]:
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


def _holds(path: Path, config: RunConfig) -> bool | None:
    """Whether the folder holds a run of `config`; None when its config.json is damaged."""
    try:
        return same_run(read_config(path), config)
    except ValueError:
        return None
    except OSError:
        return False


def _renamed(config: RunConfig, out: Path) -> list[Path]:
    """Folders of this run named under an older identity rule (one that counted the data
    folder or logging), found by the settings they hold."""
    base = folder_name(config)
    return [
        p
        for p in sorted(out.glob(f"{config.model}-{config.home_dataset}-*"))
        if not p.name.startswith(base) and _holds(p, config)
    ]


def candidates(config: RunConfig, out: Path) -> Iterator[tuple[Path, bool]]:
    """The folders that may hold `config`'s run, in order, each with whether it is finished:
    its digest's name, then `-2`, `-3`, ... skipping those that hold other settings; before
    a fresh folder, any folder of the same run named under an older rule."""
    base = folder_name(config)
    renamed = None
    for n in range(1, 10_000):
        path = out / (base if n == 1 else f"{base}-{n}")
        if (path / "config.json").exists():
            holds = _holds(path, config)
            if holds is False:
                continue
            # A damaged config.json under this config's digest is ours to repair.
            yield path, bool(holds) and is_finished(path)
            continue
        if renamed is None:
            renamed = _renamed(config, out)
            for old in renamed:
                yield old, is_finished(old)
        yield path, False
    raise RuntimeError(f"{out}: no free run folder for {base}.")


@contextlib.contextmanager
def claim(config: RunConfig, out: Path) -> Iterator[tuple[Path, bool]]:
    """Yields the run folder for `config` and whether it holds the finished run already; an
    unfinished one is locked for this process while the block runs."""
    for path, finished in candidates(config, out):
        if finished:
            yield path, True
            return
        with locked(path) as got:
            if got:
                yield path, False
                return


def find(config: RunConfig, out: str | Path) -> Path | None:
    """The folder under `out` of the finished run of `config`, if there is one."""
    out = Path(out)
    for path, finished in candidates(config, out):
        if finished:
            return path
        if not (path / "config.json").exists():
            return None  # the first free name: nothing after it is this run's
    return None


def first_folder(config: RunConfig, out: Path) -> Path:
    """The folder a run of `config` goes to when no other process holds it."""
    return next(candidates(config, out))[0]


def folders_in(folder: str | Path) -> list[Path]:
    """The run folders directly inside `folder` (finished or not), by name."""
    return sorted(p.parent for p in Path(folder).glob("*/config.json"))


def finished_in(folder: str | Path) -> list[Path]:
    """The finished run folders directly inside `folder`, oldest first."""
    found = [p for p in folders_in(folder) if is_finished(p)]
    return sorted(found, key=lambda p: (p / "metrics.json").stat().st_mtime)


def find_runs(patterns: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Evaluated run folders named by paths or globs; a folder of runs (or searches) is searched.

    Returns:
        The run folders with a metrics.json, sorted, and `(path, reason)` for every one
        skipped (not a run, or not evaluated yet).

    Raises:
        FileNotFoundError: Nothing matched, naming what was searched.
    """
    found: set[Path] = set()
    skipped: list[tuple[str, str]] = []
    for pattern in patterns:
        matches = [Path(p) for p in glob.glob(str(Path(pattern).expanduser()))]
        if not matches:
            skipped.append((pattern, "no such file or folder"))
        for path in matches:
            if (path / "config.json").is_file():
                inside = [path]
            elif path.is_dir():
                inside = [p.parent for p in path.rglob("config.json")]
                if not inside:
                    skipped.append((str(path), "not a run folder (no config.json)"))
            else:
                skipped.append((str(path), "not a folder"))
                continue
            for run in inside:
                if (run / "metrics.json").is_file():
                    found.add(run)
                else:
                    skipped.append((str(run), "unfinished run (no metrics.json)"))
    if not found:
        raise FileNotFoundError(
            f"No finished run folders in {', '.join(map(repr, patterns))}"
            + (f" (skipped: {'; '.join(f'{p}: {r}' for p, r in skipped)})." if skipped else ".")
        )
    return sorted(found), skipped
