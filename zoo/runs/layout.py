"""A run folder's files, and its config.json record: the format, its migration, reading and
writing it. The rest of `zoo.runs` and every writer name the files through these constants."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.recipes import RunConfig

if TYPE_CHECKING:
    from zoo.data import DatasetInfo

# The format of config.json that `zoo.train` writes; `migrate` reads every earlier one.
CONFIG_FORMAT = 4
# The files of a run folder, by role; writers and readers name them through these.
CONFIG, HISTORY, STEPS, METRICS = "config.json", "history.csv", "steps.csv", "metrics.json"
BEST, CONFUSION, KEPT, TENSORBOARD = "best.keras", "confusion_matrix.csv", "epochs", "tensorboard"
BACKUP, BACKUP_WEIGHTS = "backup", "state.weights.h5"


# Models whose `bn` normalized their dense head too until format 3 gave that to `head_bn`.
_BN_WAS_HEAD_BN = ("lenet", "tiny_baseline", "deeper_convnet", "three_layer_convnet")


def migrate(saved: dict[str, Any]) -> dict[str, Any]:
    """A run folder's config.json record brought to today's format (`CONFIG_FORMAT`).

    Format 1 (no "format" key) named the optimizer's decoupled decay `weight_decay`, and stored
    momentum 0.9 by default, which `rmsprop` ignored: it always ran without momentum. Its
    `inception_v1` had one stem conv of `stem_filters` (192), today's `stem=(192,)`. A config
    without a precision predates the `auto` default: it ran at float32. Until format 3, `bn` of
    LeNet, S3's and S0's nets also normalized their dense layers, today's `head_bn`; their
    `channels` / `widths` are today's `filters` (the registry's aliases read them). An
    `airbench` config without `head_lr` predates the Muon form's head: logits x 1/9 from
    Glorot's init, today's `head_scale=1/9, head_init="glorot_uniform"`.

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
        # The run's settings and the recipe it recorded (a run is labelled against it).
        for key in ("config", "recipe"):
            if isinstance(saved.get(key), dict):
                saved[key] = _head_bn(saved[key])
    if version <= 3:
        for key in ("config", "recipe"):
            if isinstance(saved.get(key), dict):
                saved[key] = _airbench_head(saved[key])
    saved["format"] = CONFIG_FORMAT
    return saved


def _airbench_head(config: dict[str, Any]) -> dict[str, Any]:
    """An `airbench` config from before `head_lr` with the head it was built with."""
    if config.get("model") != "airbench" or "head_lr" in config:
        return config
    toggles = dict(config.get("model_kwargs") or {})
    toggles.setdefault("head_scale", 1 / 9)
    toggles.setdefault("head_init", "glorot_uniform")
    return {**config, "model_kwargs": toggles}


def _head_bn(config: dict[str, Any]) -> dict[str, Any]:
    """A format-2 config with `head_bn` where its `bn` normalized the dense head too."""
    toggles = dict(config.get("model_kwargs") or {})
    if config.get("model") in _BN_WAS_HEAD_BN and toggles.get("bn"):
        toggles.setdefault("head_bn", True)
        return {**config, "model_kwargs": toggles}
    return config


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
