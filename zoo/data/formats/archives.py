"""Archives (`.tar.gz`, `.tgz`, `.tar`, `.zip`), extracted once, safely, into a cache folder."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import time
import zipfile
from pathlib import Path

from zoo import files
from zoo.data.formats.base import ARCHIVE_SUFFIXES, DataError

# --- Archives -----------------------------------------------------------------------------------


# The first run on a dataset spends tens of seconds here; the commands show these lines.
log = logging.getLogger("zoo.data")


def is_archive(path: Path) -> bool:
    """True for `.tar.gz`, `.tgz`, `.tar` and `.zip` files."""
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def extract(archive: Path, cache_dir: Path) -> Path:
    """Extracts an archive once into `cache_dir` and returns the folder; reuses it afterwards.

    The folder's name carries the archive's size and modification time, so a changed archive is
    extracted anew. Extraction goes to a temporary folder renamed at the end, so a crash never
    leaves a half-extracted folder that a later run would trust.

    Raises:
        DataError: The archive is corrupt or has a member that escapes the folder or is a link.
    """
    stat = archive.stat()
    digest = hashlib.sha1(f"{archive.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    target = cache_dir / f"{_strip_suffix(archive.name)}-{digest.hexdigest()[:10]}"
    if target.is_dir():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    # One process extracts; another one asking for the same archive waits for it and then
    # finds the folder, instead of extracting it twice and failing on the second rename.
    with files.exclusive(cache_dir / f".{target.name}.lock"):
        if target.is_dir():
            return target
        for stale in cache_dir.glob(f".{target.name}.*.partial"):  # from a killed extraction
            shutil.rmtree(stale, ignore_errors=True)
        tmp = cache_dir / f".{target.name}.{os.getpid()}.partial"
        log.info("extracting %s into %s (once: later runs reuse it)", archive.name, cache_dir)
        start = time.perf_counter()
        try:
            if archive.name.lower().endswith(".zip"):
                _extract_zip(archive, tmp)
            else:
                _extract_tar(archive, tmp)
            tmp.rename(target)
            log.info("extracted %s in %.1f s", archive.name, time.perf_counter() - start)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
            raise DataError(f"{archive}: cannot extract ({err}).") from err
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _strip_suffix(name: str) -> str:
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _safe_member(archive: Path, name: str) -> None:
    parts = Path(name).parts
    if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise DataError(f"{archive}: member {name!r} would be written outside the folder.")


def _extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tar:
        members = []
        for member in tar.getmembers():
            _safe_member(archive, member.name)
            if member.issym() or member.islnk() or member.isdev():
                raise DataError(f"{archive}: member {member.name!r} is a link or device.")
            members.append(member)
        dest.mkdir(parents=True)
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, members=members, **kwargs)


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            _safe_member(archive, name)
        dest.mkdir(parents=True)
        zf.extractall(dest)
