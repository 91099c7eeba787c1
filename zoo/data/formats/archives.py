"""Archives (`.tar.gz`, `.tgz`, `.tar`, `.zip`): read into memory and searched like a folder
(`read_archive`), or, when too large for memory, extracted once, safely, into a cache folder."""

from __future__ import annotations

import hashlib
import io
import logging
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO

from zoo import files
from zoo.data.formats.base import ARCHIVE_SUFFIXES, DataError

# --- Archives -----------------------------------------------------------------------------------


# The first run on a dataset spends tens of seconds here; the commands show these lines.
log = logging.getLogger("zoo.data")


def is_archive(path: Path | ArchivePath) -> bool:
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
    target = cache_dir / f"{archive_stem(archive.name)}-{digest.hexdigest()[:10]}"
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


def archive_nbytes(archive: Path) -> int:
    """About how many bytes the archive's files take once read: a zip lists them; a gzip's
    last four bytes hold its uncompressed size (modulo 4 GiB, so never less than the file)."""
    size = archive.stat().st_size
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                return max(size, sum(info.file_size for info in zf.infolist()))
        if archive.name.lower().endswith((".gz", ".tgz")) and size >= 4:
            with archive.open("rb") as f:
                f.seek(-4, os.SEEK_END)
                return max(size, int.from_bytes(f.read(4), "little"))
    except (OSError, zipfile.BadZipFile):
        pass  # reading it names the problem
    return size


def archive_stem(name: str) -> str:
    """The archive's file name without its archive suffix."""
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _check_member(archive: Path | ArchivePath, name: str, is_link: bool) -> None:
    """Refuses a member that would land outside the folder or is a link or device, whether the
    archive is extracted or read into memory."""
    parts = Path(name).parts
    if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise DataError(f"{archive}: member {name!r} would be written outside the folder.")
    if is_link:
        raise DataError(f"{archive}: member {name!r} is a link or device.")


def _tar_link(member: tarfile.TarInfo) -> bool:
    return member.issym() or member.islnk() or member.isdev()


def _zip_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tar:
        members = []
        for member in tar.getmembers():
            _check_member(archive, member.name, _tar_link(member))
            members.append(member)
        dest.mkdir(parents=True)
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, members=members, **kwargs)


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            _check_member(archive, info.filename, _zip_link(info))
        dest.mkdir(parents=True)
        zf.extractall(dest)


class ArchivePath:
    """A file or folder inside an archive read into memory, with the few `pathlib.Path`
    methods the readers use (as `zipfile.Path` offers for zip files).

    An image tree read this way is decoded straight from memory: extracting CIFAR-10 would
    write 60,000 small files, which cost more than decoding them and again when deleted.
    """

    def __init__(self, archive: Path | ArchivePath, tree: _Tree, inner: str = "") -> None:
        self.archive, self._tree, self._inner = archive, tree, inner

    def __truediv__(self, name: str) -> ArchivePath:
        inner = posixpath.normpath(posixpath.join(self._inner, str(name))).lstrip("/")
        return ArchivePath(self.archive, self._tree, "" if inner == "." else inner)

    def __str__(self) -> str:
        return f"{self.archive}/{self._inner}" if self._inner else str(self.archive)

    def __repr__(self) -> str:
        return f"ArchivePath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArchivePath) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __lt__(self, other: ArchivePath) -> bool:
        return str(self) < str(other)

    @property
    def name(self) -> str:
        return posixpath.basename(self._inner) if self._inner else self.archive.name

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    @property
    def parent(self) -> ArchivePath:
        return ArchivePath(self.archive, self._tree, posixpath.dirname(self._inner))

    def exists(self) -> bool:
        return self.is_dir() or self.is_file()

    def is_dir(self) -> bool:
        return self._inner in self._tree.children

    def is_file(self) -> bool:
        return self._inner in self._tree.files

    def iterdir(self) -> list[ArchivePath]:
        if not self.is_dir():
            raise NotADirectoryError(f"{self}: not a folder in the archive.")
        return [self / name for name in self._tree.children[self._inner]]

    def read_bytes(self) -> bytes:
        if not self.is_file():
            raise FileNotFoundError(f"{self}: no such file in the archive.")
        return self._tree.files[self._inner]

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def open(self, mode: str = "rb") -> IO[bytes]:
        if mode != "rb":
            raise ValueError(f"{self}: archives are read-only, opened with 'rb' only.")
        return io.BytesIO(self.read_bytes())

    def stat(self) -> os.stat_result:
        """The member's size, with the archive's mode and times."""
        outer = self.archive.stat()
        size = len(self.read_bytes()) if self.is_file() else 0
        return os.stat_result((outer.st_mode, 0, 0, 1, 0, 0, size, *outer[7:10]))


class _Tree:
    """The files of an archive by their inner path, and each folder's sorted entries."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.children: dict[str, list[str]] = {"": []}

    def add_folder(self, inner: str) -> None:
        if inner in self.files:
            raise ValueError(f"member {inner!r} is both a file and a folder")
        if inner not in self.children:
            self.children[inner] = []
            parent = posixpath.dirname(inner)
            self.add_folder(parent)
            self.children[parent].append(posixpath.basename(inner))

    def add_file(self, inner: str, data: bytes) -> None:
        if inner in self.children:
            raise ValueError(f"member {inner!r} is both a file and a folder")
        self.add_folder(posixpath.dirname(inner))
        if inner not in self.files:
            self.children[posixpath.dirname(inner)].append(posixpath.basename(inner))
        self.files[inner] = data


def read_archive(archive: Path | ArchivePath) -> ArchivePath:
    """Reads every file of an archive (a file, or one inside another archive) into memory in
    one pass; returns its top folder to search.

    Raises:
        DataError: The archive is corrupt or has a member that escapes the folder or is a link.
    """
    tree = _Tree()
    log.info("reading %s into memory (once: the cache keeps its decoded arrays)", archive.name)
    start = time.perf_counter()
    try:
        if archive.name.lower().endswith(".zip"):
            with archive.open("rb") as raw, zipfile.ZipFile(raw) as zf:
                for info in zf.infolist():
                    _check_member(archive, info.filename, _zip_link(info))
                    inner = posixpath.normpath(info.filename).strip("/")
                    if info.is_dir():
                        tree.add_folder("" if inner == "." else inner)
                    else:
                        tree.add_file(inner, zf.read(info))
        else:
            with archive.open("rb") as raw, tarfile.open(fileobj=raw, mode="r|*") as tar:
                for member in tar:
                    _check_member(archive, member.name, _tar_link(member))
                    inner = posixpath.normpath(member.name).lstrip("/")
                    if member.isdir():
                        tree.add_folder("" if inner == "." else inner)
                    elif member.isfile():
                        tree.add_file(inner, tar.extractfile(member).read())
    except DataError:
        raise
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error, lzma.LZMAError,
            RuntimeError, NotImplementedError, ValueError) as err:  # fmt: skip
        raise DataError(f"{archive}: cannot read ({err}).") from err
    for entries in tree.children.values():
        entries.sort()
    log.info("read %s files of %s in %.1f s", f"{len(tree.files):,}", archive.name,
             time.perf_counter() - start)  # fmt: skip
    return ArchivePath(archive, tree)
