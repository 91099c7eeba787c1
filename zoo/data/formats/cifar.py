"""CIFAR-10/100 python pickle batches, unpickled without running code from the file."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from zoo.data.formats.base import Arrays, DataError, Reader, check_labels, require

# --- CIFAR python pickles --------------------------------------------------------------------


class _CifarUnpickler(pickle.Unpickler):
    """Loads CIFAR batches without running arbitrary code: numpy arrays and builtins only."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
    except Exception as err:
        raise DataError(f"{path}: not a readable CIFAR python batch ({err}).") from err
    if not isinstance(batch, dict):
        raise DataError(f"{path}: expected a dict batch, got {type(batch).__name__}.")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def is_cifar_pickle(folder: Path) -> bool:
    """True if `folder` holds CIFAR-10 (`data_batch_1`) or CIFAR-100 (`train`, `meta`) pickles."""
    return (folder / "data_batch_1").is_file() or (
        (folder / "train").is_file() and (folder / "meta").is_file()
    )


def read_cifar_pickle(folder: Path) -> Arrays:
    """Reads `cifar-10-batches-py/` or `cifar-100-python/` (fine labels).

    Raises:
        DataError: A batch is missing or corrupt, or data and labels disagree.
    """
    if (folder / "data_batch_1").is_file():
        train_files = [folder / f"data_batch_{i}" for i in range(1, 6)]
        test_file, meta_file, label_key, names_key = (
            folder / "test_batch",
            folder / "batches.meta",
            "labels",
            "label_names",
        )
    else:
        train_files = [folder / "train"]
        test_file, meta_file, label_key, names_key = (
            folder / "test",
            folder / "meta",
            "fine_labels",
            "fine_label_names",
        )
    meta = _unpickle(require(meta_file))
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta[names_key])

    def read(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for path in files:
            batch = _unpickle(require(path))
            data = np.asarray(batch.get("data"), np.uint8)
            labels = np.asarray(batch.get(label_key), np.int32)
            if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
                raise DataError(
                    f"{path}: expected 'data' of shape (N, 3072) and N '{label_key}', "
                    f"got {data.shape} and {labels.shape}."
                )
            check_labels(labels, len(names), str(path))
            xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            ys.append(labels)
        return np.concatenate(xs), np.concatenate(ys)

    x_train, y_train = read(train_files)
    x_test, y_test = read([test_file])
    return Arrays(x_train, y_train, x_test, y_test, names, str(folder))


class CifarPickleReader(Reader):
    """CIFAR-10/100 python pickle batches."""

    name = "cifar_pickle"

    def found(self, folder: Path) -> bool:  # noqa: D102
        return is_cifar_pickle(folder)

    def read(self, folder: Path, shape: tuple[int, ...], class_names: tuple[str, ...]) -> Arrays:  # noqa: D102
        return read_cifar_pickle(folder)

    def nbytes(self, folder: Path, shape: tuple[int, ...]) -> int:  # noqa: D102
        # A pickled batch is its uint8 images plus a few hundred bytes of labels and names.
        batches = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                   "data_batch_5", "test_batch", "train", "test")  # fmt: skip
        return sum((folder / b).stat().st_size for b in batches if (folder / b).is_file())
