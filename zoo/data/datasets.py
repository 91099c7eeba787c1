"""`load` and `read`: the datasets behind `zoo.data` (its docstring says where data is found)."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from zoo import files
from zoo.data import formats
from zoo.data.formats import Arrays, DataError
from zoo.data.pipeline import Augment, channel_stats, make_dataset, split_stratified, subset_indices

__all__ = ["DATASETS", "Augment", "DataError", "DatasetInfo", "list_datasets", "load", "read"]

_FASHION = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class _Spec:
    folders: tuple[str, ...]  # usual folder names; archives start with one of them
    formats: tuple[str, ...]  # readers tried, in order
    shape: tuple[int, int, int]
    tfds: str | None
    val_split: float  # the studies' choice
    augment: Augment
    get: str  # how a user gets the files
    class_names: tuple[str, ...] = ()


_MNIST_AUG = Augment(rotate_degrees=10.0, shift_fraction=0.1, p=0.5)  # S2
_CIFAR_AUG = Augment(crop_padding=4, flip=True)  # S1

DATASETS: dict[str, _Spec] = {
    "mnist": _Spec(
        ("mnist", "MNIST"),
        ("idx", "image_folder"),
        (28, 28, 1),
        "mnist",
        1 / 6,  # S2's 5:1 train/valid
        _MNIST_AUG,
        "the four IDX files (train-images-idx3-ubyte.gz, ...) from the MNIST page",
        tuple(str(i) for i in range(10)),
    ),
    "fashion_mnist": _Spec(
        ("fashion_mnist", "fashion-mnist", "FashionMNIST"),
        ("idx", "image_folder"),
        (28, 28, 1),
        "fashion_mnist",
        1 / 6,
        _MNIST_AUG,
        "the four IDX files from github.com/zalandoresearch/fashion-mnist",
        _FASHION,
    ),
    "cifar10": _Spec(
        ("cifar-10-batches-py", "cifar10", "cifar-10", "cifar-10-python"),
        ("cifar_pickle", "image_folder"),
        (32, 32, 3),
        "cifar10",
        0.1,
        _CIFAR_AUG,
        "cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html",
    ),
    "cifar100": _Spec(
        ("cifar-100-python", "cifar100", "cifar-100"),
        ("cifar_pickle", "image_folder"),
        (32, 32, 3),
        "cifar100",
        0.1,
        _CIFAR_AUG,
        "cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html",
    ),
    "tiny_imagenet": _Spec(
        ("tiny-imagenet-200", "tiny_imagenet", "tiny-imagenet"),
        ("tiny_imagenet", "image_folder"),
        (64, 64, 3),
        None,
        0.1,
        Augment(crop_padding=8, flip=True),
        "tiny-imagenet-200.zip from http://cs231n.stanford.edu/tiny-imagenet-200.zip",
    ),
}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What `load` tells about the data it returns.

    Attributes:
        name: Dataset name.
        class_names: Name of each label, in label order.
        input_shape: `(H, W, C)` of one image.
        num_examples: Examples in `train`, `val` and `test`.
        mean: Per-channel mean of the train split on the [0, 1] scale.
        std: Per-channel std of the train split on the [0, 1] scale.
        normalized: Whether the pipelines standardize with `mean` and `std` (else [0, 1]).
        augment: The training augmentation in use (None: off).
        source: Folder, archive or `tfds:NAME` the data came from.
    """

    name: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    num_examples: dict[str, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    normalized: bool
    augment: Augment | None
    source: str

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)


def list_datasets() -> list[str]:
    """Names `load` accepts."""
    return sorted(DATASETS) + ["synthetic"]


def load(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    batch_size: int = 128,
    val_split: float | None = None,
    subset: float | int | None = None,
    test_subset: float | int | None = None,
    augment: bool | Augment = True,
    normalize: bool = True,
    shuffle: bool = True,
    seed: int = 0,
    tfds_dir: str | os.PathLike | None = None,
    synthetic_shape: tuple[int, int, int] = (32, 32, 3),
    synthetic_classes: int = 10,
    epochs: tuple[int, int] | None = None,
) -> tuple[tf.data.Dataset, tf.data.Dataset, tf.data.Dataset, DatasetInfo]:
    """Loads a dataset as batched train / val / test pipelines of `(float32 image, int32 label)`.

    Args:
        name: One of `list_datasets()`. `synthetic` is random but learnable data of
            `synthetic_shape` and `synthetic_classes`, for tests and smoke runs only.
        data_dir: Folder to look in first (see the module docstring); default `$ZOO_DATA_DIR`.
        batch_size: Batch size of all three pipelines.
        val_split: Fraction of train held out as validation, stratified per class; default
            the dataset's (MNIST 1/6 as S2's 5:1, CIFAR and Tiny ImageNet 0.1). 0 gives an
            empty validation set.
        subset: Use a stratified random part of train (before the validation split): a
            fraction in (0, 1] or a number of images per class. S2 searched on 10 %.
        test_subset: The same for the test split.
        augment: True for the dataset's standard augmentation (CIFAR: crop with 4-pixel
            padding + flip; MNIST: rotation +-10 deg and shift 10 %, each with p 0.5; Tiny
            ImageNet: crop with 8-pixel padding + flip), False for none, or an `Augment`.
            Applied to train only.
        normalize: Standardize with the train split's per-channel mean and std; else [0, 1].
        shuffle: Reshuffle train every epoch.
        seed: Seed of the split, subsets, shuffling and augmentation.
        tfds_dir: TFDS data folder, for the TFDS source.
        synthetic_shape: Image shape of `synthetic`.
        synthetic_classes: Number of classes of `synthetic`.
        epochs: `(first, last)`: make train the stream of epochs `first .. last - 1`, each
            shuffled and augmented from `(seed, epoch)` alone, for `fit(steps_per_epoch=...)`
            and exact resumption. By default each pass over train is a fresh epoch.

    Returns:
        `(train, val, test, info)`.

    Raises:
        ValueError: Unknown dataset name (listing the known ones) or bad arguments.
        DataError: Data not found anywhere, or found but missing, corrupt or inconsistent.
    """
    if name == "synthetic":
        arrays, default_val, default_aug = (
            _synthetic(synthetic_shape, synthetic_classes, seed),
            0.1,
            Augment(flip=True),
        )
    else:
        spec = _spec(name)
        arrays, default_val, default_aug = (
            read(name, data_dir=data_dir, tfds_dir=tfds_dir),
            spec.val_split,
            spec.augment,
        )
    val_split = default_val if val_split is None else val_split
    aug = default_aug if augment is True else (augment or None)

    x_pool, y_pool = arrays.x_train, arrays.y_train
    if subset is not None:
        keep = subset_indices(y_pool, subset, seed)
        x_pool, y_pool = x_pool[keep], y_pool[keep]
    train_idx, val_idx = split_stratified(y_pool, val_split, seed)
    x_test, y_test = arrays.x_test, arrays.y_test
    if test_subset is not None:
        keep = subset_indices(y_test, test_subset, seed)
        x_test, y_test = x_test[keep], y_test[keep]

    mean, std = channel_stats(x_pool[train_idx])
    norm = dict(mean=mean, std=std) if normalize else dict(mean=None, std=None)
    train = make_dataset(
        x_pool[train_idx], y_pool[train_idx], batch_size=batch_size, augment=aug,
        shuffle=shuffle, seed=seed, epochs=epochs, **norm,
    )  # fmt: skip
    val = make_dataset(x_pool[val_idx], y_pool[val_idx], batch_size=batch_size, **norm)
    test = make_dataset(x_test, y_test, batch_size=batch_size, **norm)
    info = DatasetInfo(
        name=name,
        class_names=arrays.class_names,
        input_shape=tuple(arrays.x_train.shape[1:]),
        num_examples={"train": len(train_idx), "val": len(val_idx), "test": len(y_test)},
        mean=mean,
        std=std,
        normalized=normalize,
        augment=aug,
        source=arrays.source,
    )
    return train, val, test, info


def read(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    tfds_dir: str | os.PathLike | None = None,
) -> Arrays:
    """Finds a dataset and decodes it into memory as uint8 arrays (no splitting, no pipeline).

    Raises:
        ValueError: Unknown dataset name.
        DataError: Not found anywhere (the message lists where it looked), or corrupt.
    """
    _spec(name)
    env = os.environ.get("ZOO_DATA_DIR")
    return _read(
        name,
        Path(data_dir).expanduser().resolve() if data_dir else None,
        Path(env).expanduser().resolve() if env else None,
        str(tfds_dir) if tfds_dir else None,
    )


@functools.lru_cache(maxsize=2)
def _read(name: str, data_dir: Path | None, env_dir: Path | None, tfds_dir: str | None) -> Arrays:
    """`read`, decoded once per process: searches and trials reload the same data for free."""
    spec = DATASETS[name]
    looked: list[str] = []
    # A folder the caller names is the only place looked: a wrong one is an error, never a
    # silent fall back to $ZOO_DATA_DIR or a download.
    root, label = (data_dir, "data_dir") if data_dir else (env_dir, "$ZOO_DATA_DIR")
    if root is None:
        looked.append("no data_dir given and $ZOO_DATA_DIR unset")
    else:
        found = _search(name, spec, root, label)
        if found is not None:
            return found
        if data_dir:
            raise DataError(
                f"No {name} data in data_dir {root} ({_expected(spec)}). Put {spec.get} "
                "there, or give no data_dir to use $ZOO_DATA_DIR or TFDS."
            )
        looked.append(f"{label} {root}: {_expected(spec)}")
    arrays = _from_tfds(name, spec, tfds_dir, looked)
    if arrays is not None:
        return arrays
    raise DataError(
        f"No {name} data found. Looked in: " + "; ".join(looked) + ". "
        f"To get it: run once online so TFDS downloads it, or put {spec.get} in a folder and "
        "pass it as data_dir / --data-dir (or set ZOO_DATA_DIR)."
    )


def _spec(name: str) -> _Spec:
    if name in DATASETS:
        return DATASETS[name]
    close = difflib.get_close_matches(name, list_datasets(), n=2)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise ValueError(
        f"Unknown dataset {name!r}.{hint} Known datasets: {', '.join(list_datasets())}."
    )


def _expected(spec: _Spec) -> str:
    suffixes = "|".join(formats.ARCHIVE_SUFFIXES)
    return f"no {'/, '.join(spec.folders)}/ folder and no archive {spec.folders[0]}*{suffixes}"


def _cache_dir() -> Path:
    return Path(os.environ.get("ZOO_CACHE_DIR", "~/.cache/zoo")).expanduser()


def _search(name: str, spec: _Spec, root: Path, label: str = "data_dir") -> Arrays | None:
    """Reads the dataset from `root`: its own folder, a named child, or a named archive."""
    if not root.exists():
        raise DataError(f"{label} {root}: data folder does not exist.")
    if formats.is_archive(root):
        return _search(name, spec, formats.extract(root, _cache_dir()), label)
    if not root.is_dir():
        raise DataError(f"{label} {root}: expected a data folder or an archive, got a file.")
    for folder in [root] + [root / f for f in spec.folders]:
        if folder.is_dir():
            arrays = _read_folder(name, spec, folder)
            if arrays is not None:
                for array in (arrays.x_train, arrays.y_train, arrays.x_test, arrays.y_test):
                    array.flags.writeable = False  # shared by every later load in this process
                return arrays
    for archive in sorted(root.iterdir()):
        if formats.is_archive(archive) and _named(archive.name, spec.folders):
            return _search(name, spec, formats.extract(archive, _cache_dir()))
    return None


def _named(filename: str, folders: tuple[str, ...]) -> bool:
    # "cifar10-jpeg.tar.gz" is CIFAR-10's, but "cifar100.tar.gz" is not.
    return any(
        filename.startswith(f) and (len(filename) == len(f) or filename[len(f)] in "-_.")
        for f in folders
    )


def _read_folder(name: str, spec: _Spec, folder: Path) -> Arrays | None:
    arrays = None
    for fmt in spec.formats:
        if fmt == "idx" and formats.is_idx(folder):
            arrays = formats.read_idx(folder, spec.class_names)
        elif fmt == "cifar_pickle" and formats.is_cifar_pickle(folder):
            arrays = formats.read_cifar_pickle(folder)
        elif fmt == "tiny_imagenet" and formats.is_tiny_imagenet(folder):
            arrays = _decoded(folder, formats.read_tiny_imagenet)
        elif fmt == "image_folder" and formats.is_image_folder(folder):
            arrays = _decoded(folder, lambda f: formats.read_image_folder(f, spec.shape[-1]))
        if arrays is not None:
            break
    else:
        return None
    if arrays.x_train.shape[1:] != spec.shape:
        raise DataError(
            f"{folder}: {name} images should be {spec.shape}, found {arrays.x_train.shape[1:]}."
        )
    return arrays


def _decoded(folder: Path, reader: Callable[[Path], Arrays]) -> Arrays:
    """Decodes an image tree once and keeps the arrays in the cache folder for later runs.

    The key covers every folder's path and modification time, which change when an image is
    added, removed or renamed (not when one is rewritten in place: clear the cache then).
    """
    digest = hashlib.sha1(str(folder).encode())
    for parent, dirs, _ in os.walk(folder):
        dirs.sort()
        digest.update(f"{parent}:{os.stat(parent).st_mtime_ns}".encode())
    target = _cache_dir() / "decoded" / f"{folder.name}-{digest.hexdigest()[:12]}"
    keys = ("x_train", "y_train", "x_test", "y_test")
    if (target / "meta.json").is_file():
        meta = json.loads((target / "meta.json").read_text())
        arrays = {k: np.load(target / f"{k}.npy") for k in keys}
        return Arrays(**arrays, class_names=tuple(meta["class_names"]), source=meta["source"])
    arrays = reader(folder)
    try:
        with files.exclusive(target.with_name(f".{target.name}.lock")):
            for stale in target.parent.glob(f"{files.TMP_PREFIX}*-{target.name}"):
                shutil.rmtree(stale, ignore_errors=True)  # a killed process's half-written entry
            if not (target / "meta.json").is_file():
                with files.replacing(target) as tmp:
                    tmp.mkdir()
                    for k in keys:
                        np.save(tmp / f"{k}.npy", getattr(arrays, k))
                    meta = {"class_names": list(arrays.class_names), "source": arrays.source}
                    (tmp / "meta.json").write_text(json.dumps(meta))
    except OSError:
        pass  # a read-only or full cache only costs the next run a decode
    return arrays


def _online(host: str = "storage.googleapis.com") -> bool:
    if os.environ.get("ZOO_OFFLINE"):
        return False
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return True
    except OSError:
        return False


def _from_tfds(name: str, spec: _Spec, tfds_dir: Any, looked: list[str]) -> Arrays | None:
    if spec.tfds is None:
        looked.append(f"TFDS: has no {name}")
        return None
    import tensorflow_datasets as tfds

    builder = tfds.builder(spec.tfds, data_dir=tfds_dir)
    where = f"TFDS {builder.data_dir_root}"
    if not builder.is_prepared():
        if not _online():
            looked.append(f"{where}: {spec.tfds} not prepared, and offline so no download")
            return None
        builder.download_and_prepare()
    names = tuple(builder.info.features["label"].names)

    def split(which: str) -> tuple[np.ndarray, np.ndarray]:
        batches = builder.as_dataset(split=which, as_supervised=True).batch(4096)
        xs, ys = zip(*batches.as_numpy_iterator(), strict=True)
        return np.concatenate(xs), np.concatenate(ys).astype(np.int32)

    (x_train, y_train), (x_test, y_test) = split("train"), split("test")
    return Arrays(x_train, y_train, x_test, y_test, names, f"tfds:{spec.tfds}")


def _synthetic(shape: tuple[int, int, int], classes: int, seed: int) -> Arrays:
    """Class prototypes plus noise: learnable in a few steps, never a benchmark."""
    rng = np.random.default_rng(seed)
    prototypes = rng.integers(0, 256, (classes, *shape))

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n, dtype=np.int32) % classes
        noise = rng.normal(0, 48, (n, *shape))
        return np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8), labels

    per_class_train, per_class_test = 100, 20
    x_train, y_train = sample(per_class_train * classes)
    x_test, y_test = sample(per_class_test * classes)
    names = tuple(f"class_{i}" for i in range(classes))
    return Arrays(x_train, y_train, x_test, y_test, names, "synthetic")
