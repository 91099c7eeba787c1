"""`load` and `read`: the datasets behind `zoo.data` (its docstring says where data is found)."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from zoo.data import formats
from zoo.data.formats import Arrays, DataError
from zoo.data.pipeline import (
    channel_stats,
    make_dataset,
    resize_images,
    split_stratified,
    subset_indices,
)
from zoo.data.sources import (
    Want,
    archive_key,
    cache_dir,
    cache_key,
    cached,
    cached_already,
    from_tfds,
)
from zoo.data.specs import DATASETS, Augment, DatasetSpec

__all__ = [
    "DATASETS",
    "Augment",
    "DataError",
    "DatasetInfo",
    "list_datasets",
    "load",
    "read",
    "reusing",
]


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
        normalized: Whether the pipelines standardize with `mean` and `std` (else [0, 1]);
            `"mean"`: with `std` 1/255, the mean subtracted on the 0-255 scale.
        augment: The training augmentation in use (None: off).
        source: Folder, archive or `tfds:NAME` the data came from.
        streaming: Whether the pipelines read the images from disk (see `load`'s `stream`).
    """

    name: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    num_examples: dict[str, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    normalized: bool | str
    augment: Augment | None
    source: str
    streaming: bool = False

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
    image_size: int | None = None,
    augment: bool | Augment | dict[str, Any] = True,
    normalize: bool | str = True,
    shuffle: bool = True,
    seed: int = 0,
    tfds_dir: str | os.PathLike | None = None,
    synthetic_shape: tuple[int, int, int] = (32, 32, 3),
    synthetic_classes: int = 10,
    epochs: tuple[int, int] | None = None,
    stream: bool | None = None,
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
        image_size: Resize every image to `image_size` x `image_size` once, before the
            pipelines (`zoo.data.pipeline.resize_images`: pixel averages when smaller), e.g.
            Tiny ImageNet at 32 for a quarter of the compute. The resized images are held in
            memory, streamed or not. The standard augmentation's crop padding scales with
            them (Tiny ImageNet's 8 pixels become 4 at 32); None keeps the dataset's size.
        augment: True for the dataset's standard augmentation (CIFAR: crop with 4-pixel
            padding + flip; MNIST: rotation +-10 deg and shift 10 %, each with p 0.5; Tiny
            ImageNet: crop with 8-pixel padding + flip), False for none, an `Augment`, or a
            dict of `Augment` fields to change in the standard one.
            Applied to train only.
        normalize: Standardize with the train split's per-channel mean and std; False: scale
            to [0, 1]; `"mean"`: subtract the per-channel mean on the 0-255 scale (CS231n).
        shuffle: Reshuffle train every epoch.
        seed: Seed of the split, subsets, shuffling and augmentation.
        tfds_dir: TFDS data folder, for the TFDS source.
        synthetic_shape: Image shape of `synthetic`.
        synthetic_classes: Number of classes of `synthetic`.
        epochs: `(first, last)`: make train the stream of epochs `first .. last - 1`, each
            shuffled and augmented from `(seed, epoch)` alone, for `fit(steps_per_epoch=...)`
            and exact resumption. By default each pass over train is a fresh epoch.
        stream: Read the images from disk instead of memory: they are decoded once into the
            cache folder (`ZOO_CACHE_DIR`) and each batch is read from there. The batches are
            the same as in memory under the same seed. None (default): stream when the
            decoded images would take more than `memory_budget()` (`ZOO_MEMORY_LIMIT`).

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
            read(name, data_dir=data_dir, tfds_dir=tfds_dir, stream=stream),
            spec.val_split,
            spec.augment,
        )
    val_split = default_val if val_split is None else val_split
    if isinstance(image_size, bool) or not isinstance(image_size, (int, type(None))):
        raise ValueError(f"image_size must be a whole number of pixels, got {image_size!r}.")
    if image_size is not None and image_size < 1:
        raise ValueError(f"image_size must be >= 1 pixel, got {image_size}.")
    native = arrays.x_train.shape[1]
    resizing = image_size is not None and image_size != native
    if resizing and default_aug and default_aug.crop_padding:
        padding = max(1, round(default_aug.crop_padding * image_size / native))
        default_aug = default_aug.changed({"crop_padding": padding})
    if isinstance(augment, dict):  # the dataset's standard augmentation, these fields changed
        augment = (default_aug or Augment()).changed(augment)
    aug = default_aug if augment is True else (augment or None)

    # Rows of the arrays, not copies of them: streamed arrays stay on disk.
    y_train, y_test = arrays.y_train, arrays.y_test
    pool = np.arange(len(y_train)) if subset is None else subset_indices(y_train, subset, seed)
    train_at, val_at = split_stratified(y_train[pool], val_split, seed)
    train_idx, val_idx = pool[train_at], pool[val_at]
    test_idx = (
        np.arange(len(y_test)) if test_subset is None else subset_indices(y_test, test_subset, seed)
    )

    x_train, x_test = arrays.x_train, arrays.x_test
    if resizing:  # only the rows in use, each once; the indices then point into those
        held = np.unique(np.concatenate([train_idx, val_idx]))
        x_train = _reused("train", resize_images, x_train, held, image_size)
        train_idx, val_idx = np.searchsorted(held, train_idx), np.searchsorted(held, val_idx)
        y_train = y_train[held]
        tested = np.unique(test_idx)
        x_test = _reused("test", resize_images, x_test, tested, image_size)
        y_test, test_idx = y_test[tested], np.searchsorted(tested, test_idx)

    if normalize not in (True, False, "mean"):
        raise ValueError(f"normalize must be True, False or 'mean', got {normalize!r}.")
    mean, std = _reused("stats", channel_stats, x_train, train_idx)
    if normalize == "mean":  # (x / 255 - mean) * 255: the mean off, the pixels' own scale kept
        std = tuple(1 / 255 for _ in std)
    norm = dict(mean=mean, std=std) if normalize else dict(mean=None, std=None)
    train = make_dataset(
        x_train, y_train, rows=train_idx, batch_size=batch_size, augment=aug,
        shuffle=shuffle, seed=seed, epochs=epochs, **norm,
    )  # fmt: skip
    val = make_dataset(x_train, y_train, rows=val_idx, batch_size=batch_size, **norm)
    test = make_dataset(x_test, y_test, rows=test_idx, batch_size=batch_size, **norm)
    info = DatasetInfo(
        name=name,
        class_names=arrays.class_names,
        input_shape=tuple(x_train.shape[1:]),
        num_examples={"train": len(train_idx), "val": len(val_idx), "test": len(test_idx)},
        mean=mean,
        std=std,
        normalized=normalize,
        augment=aug,
        source=arrays.source,
        streaming=isinstance(x_train, np.memmap),
    )
    return train, val, test, info


# While `reusing()` is open, the last result of each kind, with what it was computed from.
_LAST: dict[str, tuple[np.ndarray, np.ndarray, tuple[Any, ...], Any]] | None = None


@contextlib.contextmanager
def reusing() -> Iterator[None]:
    """Loads inside reuse each other's resized images and channel statistics, where they come
    from the same decoded arrays and rows: a run loads its data twice, augmented for training
    and plain for its final evaluation (seconds each for Tiny ImageNet). Nothing is kept past
    the block, so no array outlives the loads that need it."""
    global _LAST
    outer, _LAST = _LAST, _LAST if _LAST is not None else {}
    try:
        yield
    finally:
        _LAST = outer


def _reused(
    kind: str, compute: Callable[..., Any], images: np.ndarray, rows: np.ndarray, *args: Any
) -> Any:
    """`compute(images, rows, *args)`, or inside `reusing()` its last result for the same
    `images` object (held there, so never another array at a reused address), rows and
    arguments."""
    if _LAST is None:
        return compute(images, rows, *args)
    last = _LAST.get(kind)
    if last and last[0] is images and last[2] == args and np.array_equal(last[1], rows):
        return last[3]
    value = compute(images, rows, *args)
    if isinstance(value, np.ndarray):
        value.flags.writeable = False  # shared by the loads that reuse it
    _LAST[kind] = (images, rows.copy(), args, value)
    return value


def read(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    tfds_dir: str | os.PathLike | None = None,
    stream: bool | None = None,
) -> Arrays:
    """Finds a dataset and decodes it as uint8 arrays (no splitting, no pipeline).

    With `stream` the images are written decoded into the cache folder once and memory-mapped
    from there (`numpy.memmap`), so they need not fit in memory; None streams when they would
    take more than `memory_budget()`.

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
        stream,
        memory_budget(),
    )


def memory_budget() -> int:
    """Bytes of decoded images above which `load` streams from disk by default.

    `ZOO_MEMORY_LIMIT` (bytes, or with a K, M or G suffix), else a quarter of the machine's
    memory: training holds the decoded images, their split's copies in TensorFlow (up to 3x
    the images in all) and the model beside them.

    Raises:
        ValueError: `ZOO_MEMORY_LIMIT` is not a size.
    """
    text = os.environ.get("ZOO_MEMORY_LIMIT", "").strip()
    if not text:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1].upper(), 1)
    try:
        return int(float(text[:-1] if scale > 1 else text) * scale)
    except ValueError:
        raise ValueError(
            f"ZOO_MEMORY_LIMIT={text!r}: expected a size in bytes, e.g. 2G or 512M."
        ) from None


@functools.lru_cache(maxsize=2)
def _read(
    name: str,
    data_dir: Path | None,
    env_dir: Path | None,
    tfds_dir: str | None,
    stream: bool | None,
    budget: int,
) -> Arrays:
    """`read`, decoded once per process: searches and trials reload the same data for free."""
    spec = DATASETS[name]
    looked: list[str] = []
    # A folder the caller names is the only place looked: a wrong one is an error, never a
    # silent fall back to $ZOO_DATA_DIR or a download.
    root, label = (data_dir, "data_dir") if data_dir else (env_dir, "$ZOO_DATA_DIR")
    want = Want(stream, budget)
    if root is None:
        looked.append("no data_dir given and $ZOO_DATA_DIR unset")
    else:
        found = _search(name, spec, root, label, want)
        if found is not None:
            return found
        if data_dir:
            raise DataError(
                f"No {name} data in data_dir {root} ({_expected(spec)}). Put {spec.get} "
                "there, or give no data_dir to use $ZOO_DATA_DIR or TFDS."
            )
        looked.append(f"{label} {root}: {_expected(spec)}")
    arrays = from_tfds(name, spec, tfds_dir, looked, want)
    if arrays is not None:
        return arrays
    raise DataError(
        f"No {name} data found. Looked in: " + "; ".join(looked) + ". "
        f"To get it: run once online so TFDS downloads it, or put {spec.get} in a folder and "
        "pass it as data_dir / --data-dir (or set ZOO_DATA_DIR)."
    )


def _spec(name: str) -> DatasetSpec:
    if name in DATASETS:
        return DATASETS[name]
    close = difflib.get_close_matches(name, list_datasets(), n=2)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise ValueError(
        f"Unknown dataset {name!r}.{hint} Known datasets: {', '.join(list_datasets())}."
    )


def _expected(spec: DatasetSpec) -> str:
    suffixes = "|".join(formats.ARCHIVE_SUFFIXES)
    return f"no {'/, '.join(spec.folders)}/ folder and no archive {spec.folders[0]}*{suffixes}"


def _search(
    name: str, spec: DatasetSpec, root: Path, label: str, want: Want, key: str | None = None
) -> Arrays | None:
    """Reads the dataset from `root`: its own folder, a named child, or a named archive.
    `key` names the cache entry of an archive's arrays."""
    if not root.exists():
        raise DataError(f"{label} {root}: data folder does not exist.")
    if formats.is_archive(root):
        return _search_archive(name, spec, root, label, want, key)
    if not root.is_dir():
        raise DataError(f"{label} {root}: expected a data folder or an archive, got a file.")
    for folder in [root] + [root / f for f in spec.folders]:
        if folder.is_dir():
            arrays = _read_folder(name, spec, folder, want, key)
            if arrays is not None:
                return _checked(name, spec, arrays)
    for archive in sorted(root.iterdir()):
        if formats.is_archive(archive) and _named(archive.name, spec.folders):
            return _search_archive(name, spec, archive, label, want, key)
    return None


def _search_archive(
    name: str, spec: DatasetSpec, archive: Path, label: str, want: Want, key: str | None = None
) -> Arrays | None:
    """An archive whose files fit the memory budget is read into memory and searched there,
    its arrays cached (under the outermost archive's `key`, for one inside another): extracting
    an image tree writes thousands of small files, slower to write (and to delete) than to
    decode. A larger one is extracted into the cache folder, once."""
    key = key or archive_key(archive, name)
    arrays = cached_already(key, want)
    if arrays is not None:
        return _checked(name, spec, arrays)
    if isinstance(archive, Path) and formats.archive_nbytes(archive) > want.budget:
        return _search(name, spec, formats.extract(archive, cache_dir()), label, want)
    return _search(name, spec, formats.read_archive(archive), label, want, key)


def _checked(name: str, spec: DatasetSpec, arrays: Arrays) -> Arrays:
    if arrays.x_train.shape[1:] != spec.shape:
        raise DataError(
            f"{arrays.source}: {name} images should be {spec.shape}, "
            f"found {arrays.x_train.shape[1:]}."
        )
    for array in (arrays.x_train, arrays.y_train, arrays.x_test, arrays.y_test):
        array.flags.writeable = False  # shared by every later load in this process
    return arrays


def _named(filename: str, folders: tuple[str, ...]) -> bool:
    # "cifar10-jpeg.tar.gz" is CIFAR-10's, but "cifar100.tar.gz" is not.
    return any(
        filename.startswith(f) and (len(filename) == len(f) or filename[len(f)] in "-_.")
        for f in folders
    )


def _read_folder(
    name: str, spec: DatasetSpec, folder: Path, want: Want, key: str | None = None
) -> Arrays | None:
    """Asks the dataset's readers in turn whether `folder` is theirs; the first one reads it,
    into the cache under `key` when one is given (an archive's)."""
    reader = next((r for f in spec.formats if (r := formats.READERS[f]).found(folder)), None)
    if reader is None:
        return None
    stream = (
        want.stream if want.stream is not None else want.streams(reader.nbytes(folder, spec.shape))
    )
    if not (reader.decodes or stream or key):
        return reader.read(folder, spec.shape, spec.class_names)
    return cached(
        key or cache_key(folder),
        lambda tmp: (reader.write(folder, spec.shape, spec.class_names, tmp), str(folder)),
        stream,
        lambda: reader.read(folder, spec.shape, spec.class_names),
    )


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
