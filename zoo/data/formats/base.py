"""What every format shares: the arrays a reader returns, a listing of image files, the
`Reader` interface, and the error that names a bad file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


class DataError(ValueError):
    """Data that is missing, corrupt or inconsistent; the message names the file."""


@dataclasses.dataclass
class Arrays:
    """A dataset decoded into memory: images `(N, H, W, C)` uint8, labels `(N,)` int32."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str


@dataclasses.dataclass
class Listing:
    """An image tree's files and labels per split (`train`, `test`), not yet decoded."""

    class_names: tuple[str, ...]
    splits: dict[str, tuple[list[Path], np.ndarray]]


ARRAY_FILES = ("x_train", "y_train", "x_test", "y_test")


class Reader:
    """One on-disk format: tells its folders apart, reads one into memory, or writes it decoded
    as `.npy` files (`ARRAY_FILES`) that `zoo.data.load` memory-maps to stream from disk.

    Attributes:
        name: The format's name, as `zoo.data.DATASETS` lists a dataset's formats.
        decodes: Reading decodes image files, which is slow enough to keep the result in the
            cache folder for later runs.
    """

    name = ""
    decodes = False

    def found(self, folder: Path) -> bool:
        """True if `folder` holds this format."""
        raise NotImplementedError

    def read(self, folder: Path, shape: tuple[int, ...], class_names: tuple[str, ...]) -> Arrays:
        """Reads the dataset of `folder` into memory (images of `shape`).

        Raises:
            DataError: A file is missing or corrupt.
        """
        raise NotImplementedError

    def nbytes(self, folder: Path, shape: tuple[int, ...]) -> int:
        """About how many bytes the decoded images take, found without decoding them."""
        raise NotImplementedError

    def write(
        self, folder: Path, shape: tuple[int, ...], class_names: tuple[str, ...], target: Path
    ) -> tuple[str, ...]:
        """Writes the decoded arrays of `folder` into the folder `target`; returns the class
        names. The base reads everything into memory first; image trees decode in chunks.
        """
        arrays = self.read(folder, shape, class_names)
        for key in ARRAY_FILES:
            np.save(target / f"{key}.npy", getattr(arrays, key))
        return arrays.class_names


def require(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path}: missing; expected it in this layout.")
    return path


def check_labels(labels: np.ndarray, num_classes: int, where: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"{where}: labels range {labels.min()}..{labels.max()}, expected 0..{num_classes - 1}."
        )
