"""Where decoded data is kept and where else it comes from: the cache folder of decoded and
extracted datasets (`ZOO_CACHE_DIR`), written once and safely, and TFDS."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from zoo import files
from zoo.data import formats
from zoo.data.formats import Arrays, DataError
from zoo.data.specs import DatasetSpec


def cache_dir() -> Path:
    return Path(os.environ.get("ZOO_CACHE_DIR", "~/.cache/zoo")).expanduser()


def cache_key(folder: Path) -> str:
    """The cache name of a folder's decoded arrays.

    It covers every folder's path and modification time, which change when an image is added,
    removed or renamed (not when one is rewritten in place: clear the cache then).
    """
    digest = hashlib.sha1(str(folder).encode())
    for parent, dirs, _ in os.walk(folder):
        dirs.sort()
        digest.update(f"{parent}:{os.stat(parent).st_mtime_ns}".encode())
    return f"{folder.name}-{digest.hexdigest()[:12]}"


def archive_key(archive: Path, name: str) -> str:
    """The cache name of the decoded arrays of dataset `name` read from an archive: its path,
    size and modification time, so a changed archive is read anew."""
    stat = archive.stat()
    where = archive.resolve() if isinstance(archive, Path) else archive
    digest = hashlib.sha1(f"{where}:{name}:{stat.st_size}:{stat.st_mtime}".encode())
    return f"{formats.archive_stem(archive.name)}-{digest.hexdigest()[:12]}"


def cached_already(key: str, want: Want) -> Arrays | None:
    """The arrays cached under `key` if they were written; memory-mapped where `want` streams
    the images they hold."""
    target = cache_dir() / "decoded" / key
    if not (target / "meta.json").is_file():
        return None
    nbytes = sum(np.load(target / f"{k}.npy", mmap_mode="r").nbytes for k in ("x_train", "x_test"))
    return _entry(target, want.streams(nbytes))


def cached(
    key: str,
    write: Callable[[Path], tuple[tuple[str, ...], str]],
    mmap: bool,
    fallback: Callable[[], Arrays],
) -> Arrays:
    """The arrays kept in the cache folder under `key`, written there once by `write(folder)`
    (which returns the class names and the source); memory-mapped with `mmap`.

    A cache that cannot be written costs an in-memory read (`fallback`); streaming needs one.
    """
    target = cache_dir() / "decoded" / key
    try:
        if not (target / "meta.json").is_file():
            with files.exclusive(target.with_name(f".{target.name}.lock")):
                for stale in target.parent.glob(f"{files.TMP_PREFIX}*-{target.name}"):
                    shutil.rmtree(stale, ignore_errors=True)  # a killed process's half entry
                if not (target / "meta.json").is_file():
                    with files.replacing(target) as tmp:
                        tmp.mkdir()
                        names, source = write(tmp)
                        meta = {"class_names": list(names), "source": source}
                        (tmp / "meta.json").write_text(json.dumps(meta))
    except OSError as err:
        if not _cache_failure(err, target.parent):
            raise  # reading the data failed, not writing the cache
        if mmap:
            raise DataError(
                f"Streaming writes the decoded images to the cache folder {target.parent}, "
                f"which failed ({err}); set ZOO_CACHE_DIR to a writable folder with room."
            ) from err
        return fallback()
    return _entry(target, mmap)


def _entry(target: Path, mmap: bool) -> Arrays:
    meta = json.loads((target / "meta.json").read_text())
    arrays = {
        k: np.load(target / f"{k}.npy", mmap_mode="r" if mmap and k.startswith("x") else None)
        for k in formats.ARRAY_FILES
    }
    return Arrays(**arrays, class_names=tuple(meta["class_names"]), source=meta["source"])


def _cache_failure(err: OSError, folder: Path) -> bool:
    """Whether `err` came from writing the cache `folder`, not from reading the data."""
    if err.filename:
        return Path(err.filename).resolve().is_relative_to(folder.resolve())
    return err.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT)


def _online(host: str = "storage.googleapis.com") -> bool:
    if os.environ.get("ZOO_OFFLINE"):
        return False
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return True
    except OSError:
        return False


def from_tfds(
    name: str, spec: DatasetSpec, tfds_dir: Any, looked: list[str], want: Want
) -> Arrays | None:
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
    source = f"tfds:{spec.tfds}"
    try:
        counts = {s: builder.info.splits[s].num_examples for s in ("train", "test")}
    except KeyError:
        counts = {}  # no split sizes recorded (TFDS's mock data): read into memory
    if counts and want.streams(sum(counts.values()) * int(np.prod(spec.shape))):

        def write(tmp: Path) -> tuple[tuple[str, ...], str]:
            for which, count in counts.items():
                images = np.lib.format.open_memmap(
                    tmp / f"x_{which}.npy", "w+", np.uint8, (count, *spec.shape)
                )
                labels, start = np.empty(count, np.int32), 0
                for x, y in _tfds_batches(builder, which):
                    images[start : start + len(x)], labels[start : start + len(x)] = x, y
                    start += len(x)
                images.flush()
                np.save(tmp / f"y_{which}.npy", labels)
            return names, source

        key = (
            f"tfds-{spec.tfds}-{builder.info.version}-"
            + hashlib.sha1(str(builder.data_dir).encode()).hexdigest()[:10]
        )
        return cached(key, write, True, lambda: None)

    def split(which: str) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = zip(*_tfds_batches(builder, which), strict=True)
        return np.concatenate(xs), np.concatenate(ys).astype(np.int32)

    (x_train, y_train), (x_test, y_test) = split("train"), split("test")
    return Arrays(x_train, y_train, x_test, y_test, names, source)


def _tfds_batches(builder: Any, which: str) -> Any:
    """A TFDS split's `(images, labels)` as numpy batches, read from its prepared files."""
    return builder.as_dataset(split=which, as_supervised=True).batch(4096).as_numpy_iterator()


@dataclasses.dataclass(frozen=True)
class Want:
    """Whether to stream: True, False, or None for when the images exceed `budget` bytes."""

    stream: bool | None
    budget: int

    def streams(self, nbytes: int) -> bool:
        return self.stream if self.stream is not None else nbytes > self.budget
