"""MNIST-style IDX files (gzipped or not)."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from zoo.data.formats.base import Arrays, DataError, Reader, check_labels

# --- MNIST / Fashion-MNIST IDX -------------------------------------------------------------

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _idx_path(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem, folder / stem.replace("-idx", ".idx")):
        if candidate.is_file():
            return candidate
    return None


def is_idx(folder: Path) -> bool:
    """True if `folder` holds the MNIST-style training images file."""
    return _idx_path(folder, IDX_FILES["x_train"]) is not None


def read_idx_file(path: Path) -> np.ndarray:
    """Reads one IDX file (ubyte data only, as MNIST ships), gzipped or not.

    Raises:
        DataError: If the file is not IDX, not unsigned bytes, or shorter than its header says.
    """
    try:
        with path.open("rb") as raw:  # a file, or a member of an archive read into memory
            data = gzip.decompress(raw.read()) if path.suffix == ".gz" else raw.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: cannot read ({err}).") from err
    if len(data) < 4 or data[:2] != b"\0\0":
        raise DataError(f"{path}: not an IDX file (expected magic 0x0000, got {data[:4]!r}).")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise DataError(f"{path}: expected unsigned-byte IDX data (0x08), got 0x{dtype_code:02x}.")
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header])
    size = int(np.prod(shape))
    if len(data) - header != size:
        raise DataError(
            f"{path}: header promises shape {shape} ({size} bytes) but the file holds "
            f"{len(data) - header} bytes; the file is truncated or corrupt."
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def read_idx(folder: Path, class_names: tuple[str, ...]) -> Arrays:
    """Reads the four MNIST-style IDX files of `folder`.

    Raises:
        DataError: A file is missing or corrupt, or image and label counts disagree.
    """
    arrays = {}
    for key, stem in IDX_FILES.items():
        path = _idx_path(folder, stem)
        if path is None:
            raise DataError(
                f"{folder}: missing {stem}.gz (or {stem}); expected the four IDX files."
            )
        arrays[key] = read_idx_file(path)
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(
                f"{folder}: {split} images {x.shape} and labels {y.shape} disagree "
                "(expected N images of HxW and N labels)."
            )
        check_labels(y, len(class_names), f"{folder} ({split} labels)")
    return Arrays(
        arrays["x_train"][..., None],
        arrays["y_train"].astype(np.int32),
        arrays["x_test"][..., None],
        arrays["y_test"].astype(np.int32),
        class_names,
        str(folder),
    )


class IdxReader(Reader):
    """MNIST-style IDX files."""

    name = "idx"

    def found(self, folder: Path) -> bool:  # noqa: D102
        return is_idx(folder)

    def read(self, folder: Path, shape: tuple[int, ...], class_names: tuple[str, ...]) -> Arrays:  # noqa: D102
        return read_idx(folder, class_names)

    def nbytes(self, folder: Path, shape: tuple[int, ...]) -> int:  # noqa: D102
        total = 0
        for stem in (IDX_FILES["x_train"], IDX_FILES["x_test"]):
            path = _idx_path(folder, stem)
            if path is None:
                continue
            # The header's dimensions: the files are usually gzipped, so their size says little.
            # A damaged file counts nothing here; `read` names what is wrong with it.
            try:
                with (
                    path.open("rb") as raw,
                    gzip.GzipFile(fileobj=raw) if path.suffix == ".gz" else raw as f,
                ):
                    head = f.read(4)
                    if len(head) == 4 and head[:3] == b"\0\0\x08":
                        dims = struct.unpack(f">{head[3]}I", f.read(4 * head[3]))
                        total += int(np.prod(dims))
            except (OSError, EOFError, struct.error, zlib.error):
                pass
        return total
