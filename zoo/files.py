"""Crash-safe writes: every file the zoo writes appears whole, or not at all.

Each write goes to a temporary name in the target's folder, is flushed to disk, and is renamed
over the target, which POSIX makes atomic: a kill at any instant leaves the old file or the
new one, never a torn or empty one. Files Keras writes itself (`.keras`, `.weights.h5`) go
through `replacing` the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path` to write; it replaces `path` when the block ends.

    The temporary name keeps the whole file name as its suffix (Keras checks `.keras` and
    `.weights.h5`). If the block raises, the temporary file goes and `path` is untouched.
    """
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{path.name}")
    _remove(tmp)
    try:
        yield tmp
        _sync(tmp)
        _replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to `path` atomically."""
    with replacing(path) as tmp, open(tmp, "w", newline="") as f:
        f.write(text)


def write_json(path: str | os.PathLike, value: Any) -> None:
    """Writes `value` as JSON atomically; NaN and infinities become null (valid JSON)."""
    write_text(path, json.dumps(finite(value), indent=2, allow_nan=False, default=str) + "\n")


def write_csv(path: str | os.PathLike, frame: Any, **kwargs: Any) -> None:
    """Writes a pandas DataFrame with `to_csv(**kwargs)` atomically."""
    with replacing(path) as tmp:
        frame.to_csv(tmp, **kwargs)


def save_figure(path: str | os.PathLike, figure: Any, **kwargs: Any) -> None:
    """Saves a matplotlib Figure atomically; the format follows `path`'s suffix."""
    path = Path(path)
    with replacing(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip("."), **kwargs)


def finite(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None, through dicts and lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def remove_stale(folder: Path) -> None:
    """Deletes the temporary files and folders a killed writer left anywhere in `folder`.

    Call it holding the folder's lock: another writer's temporary files are not stale.
    """
    for stale in list(folder.rglob(f"{TMP_PREFIX}*")):
        _remove(stale)


@contextlib.contextmanager
def exclusive(lock: Path) -> Iterator[None]:
    """Holds an exclusive lock on the file `lock` (created if need be), waiting for it.

    For work that two processes must not do at once on one shared folder, such as filling a
    cache entry; the lock goes with the process, so a kill never leaves it held.
    """
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _replace(tmp: Path, path: Path) -> None:
    # The one place a write becomes visible; the write-point test interrupts it here.
    os.replace(tmp, path)


def _sync(path: Path) -> None:
    for file in [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]:
        with open(file, "rb") as f:
            os.fsync(f.fileno())


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
