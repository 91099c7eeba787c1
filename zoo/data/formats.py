"""Readers for the standard on-disk formats: one `Reader` per format (`READERS`), which tells
its folders apart, reads one into uint8 arrays, or writes them decoded for streaming.

Formats: MNIST-style IDX files (gzipped or not), CIFAR-10/100 python pickle batches, an
image-folder tree `{train,test}/<class>/*.png|jpg`, and Tiny ImageNet's own layout. Archives
(`.tar.gz`, `.tgz`, `.tar`, `.zip`) are extracted once, safely, into a cache folder.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import pickle
import re
import shutil
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from zoo import files

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
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
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
        _check_labels(y, len(class_names), f"{folder} ({split} labels)")
    return Arrays(
        arrays["x_train"][..., None],
        arrays["y_train"].astype(np.int32),
        arrays["x_test"][..., None],
        arrays["y_test"].astype(np.int32),
        class_names,
        str(folder),
    )


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
        with open(path, "rb") as f:
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
    meta = _unpickle(_require(meta_file))
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta[names_key])

    def read(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for path in files:
            batch = _unpickle(_require(path))
            data = np.asarray(batch.get("data"), np.uint8)
            labels = np.asarray(batch.get(label_key), np.int32)
            if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
                raise DataError(
                    f"{path}: expected 'data' of shape (N, 3072) and N '{label_key}', "
                    f"got {data.shape} and {labels.shape}."
                )
            _check_labels(labels, len(names), str(path))
            xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            ys.append(labels)
        return np.concatenate(xs), np.concatenate(ys)

    x_train, y_train = read(train_files)
    x_test, y_test = read([test_file])
    return Arrays(x_train, y_train, x_test, y_test, names, str(folder))


# --- Image folders and Tiny ImageNet -----------------------------------------------------------


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def is_image_folder(folder: Path) -> bool:
    """True if `folder` has `train/` and `test/` folders of class folders."""
    return all((folder / s).is_dir() and _class_dirs(folder / s) for s in ("train", "test"))


def list_image_folder(folder: Path) -> Listing:
    """The files and labels of `{train,test}/<class>/*.png|jpg`, undecoded; classes are the
    sorted folder names of train.

    Raises:
        DataError: Test classes differ from train's, or a class folder is empty.
    """
    splits = {}
    names = tuple(p.name for p in _class_dirs(folder / "train"))
    for split in ("train", "test"):
        found = tuple(p.name for p in _class_dirs(folder / split))
        if found != names:
            raise DataError(
                f"{folder / split}: class folders {list(found)} differ from train's {list(names)}."
            )
        paths, labels = [], []
        for label, name in enumerate(names):
            images = _images_in(folder / split / name)
            if not images:
                raise DataError(f"{folder / split / name}: no images ({'/'.join(IMAGE_SUFFIXES)}).")
            paths += images
            labels += [label] * len(images)
        splits[split] = paths, np.asarray(labels, np.int32)
    return Listing(names, splits)


def is_tiny_imagenet(folder: Path) -> bool:
    """True if `folder` looks like `tiny-imagenet-200/` (it has `wnids.txt` and `train/`)."""
    return (folder / "wnids.txt").is_file() and (folder / "train").is_dir()


def list_tiny_imagenet(folder: Path) -> Listing:
    """The files and labels of Tiny ImageNet's layout, undecoded; its labelled `val/` split
    serves as the test split (S3).

    Classes are the sorted wnids (as an image-folder reader orders them), named by the first
    synonym in `words.txt`. Its greyscale JPEGs are decoded to RGB (the reader asks for 3
    channels).

    Raises:
        DataError: A listed file is missing, or an annotation names an unknown wnid.
    """
    wnids = sorted(_require(folder / "wnids.txt").read_text().split())
    index = {w: i for i, w in enumerate(wnids)}
    words = {}
    if (folder / "words.txt").is_file():
        for line in (folder / "words.txt").read_text().splitlines():
            wnid, _, text = line.partition("\t")
            words[wnid] = text.split(",")[0].strip()
    names = tuple(words.get(w, w) for w in wnids)

    paths, labels = [], []
    for wnid in wnids:
        images = _images_in(_require(folder / "train" / wnid / "images"))
        paths += images
        labels += [index[wnid]] * len(images)
    train = paths, np.asarray(labels, np.int32)

    annotations = _require(folder / "val" / "val_annotations.txt")
    paths, labels = [], []
    for n, line in enumerate(annotations.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise DataError(f"{annotations}:{n}: expected 'file<TAB>wnid' with a known wnid.")
        paths.append(_require(folder / "val" / "images" / fields[0]))
        labels.append(index[fields[1]])
    test = paths, np.asarray(labels, np.int32)
    return Listing(names, {"train": train, "test": test})


def _decoded_listing(listing: Listing, channels: int, source: str) -> Arrays:
    splits = {s: (decode_images(p, channels), y) for s, (p, y) in listing.splits.items()}
    return Arrays(*splits["train"], *splits["test"], listing.class_names, source)


def decode_images(paths: list[Path], channels: int) -> np.ndarray:
    """Decodes image files in parallel into one `(N, H, W, channels)` uint8 array.

    Raises:
        DataError: Naming the first file that cannot be decoded or differs in size.
    """
    first = _decode_one(paths[0], channels)
    shape = tuple(first.shape)
    files = tf.data.Dataset.from_tensor_slices([str(p) for p in paths])
    images = files.map(
        lambda p: tf.ensure_shape(
            tf.io.decode_image(tf.io.read_file(p), channels=channels, expand_animations=False),
            shape,
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    ).batch(2048)
    out = np.empty((len(paths), *shape), np.uint8)
    start = 0
    try:
        for batch in images.as_numpy_iterator():
            out[start : start + len(batch)] = batch
            start += len(batch)
    except (tf.errors.OpError, ValueError):
        for path in paths:  # slow path, only to name the culprit
            image = _decode_one(path, channels)
            if tuple(image.shape) != shape:
                raise DataError(
                    f"{path}: image is {tuple(image.shape)}, expected {shape} like {paths[0].name}."
                ) from None
        raise
    return out


def _decode_one(path: Path, channels: int) -> np.ndarray:
    try:
        data = tf.io.read_file(str(path))
        return tf.io.decode_image(data, channels=channels, expand_animations=False).numpy()
    except (tf.errors.OpError, ValueError) as err:
        raise DataError(f"{path}: cannot decode image ({_op_message(err)}).") from None


def _op_message(err: Exception) -> str:
    """TensorFlow's error text without its internal function and op names."""
    message = getattr(err, "message", str(err)).strip().splitlines()[0]
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message)
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", message).strip().rstrip(".")


# --- Archives -----------------------------------------------------------------------------------


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
        try:
            if archive.name.lower().endswith(".zip"):
                _extract_zip(archive, tmp)
            else:
                _extract_tar(archive, tmp)
            tmp.rename(target)
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


# --- Readers: one object per format ---------------------------------------------------------------

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
                with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
                    head = f.read(4)
                    if len(head) == 4 and head[:3] == b"\0\0\x08":
                        dims = struct.unpack(f">{head[3]}I", f.read(4 * head[3]))
                        total += int(np.prod(dims))
            except (OSError, EOFError, struct.error):
                pass
        return total


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


class _TreeReader(Reader):
    """A tree of image files: listed first, then decoded in parallel, in chunks when written."""

    decodes = True
    CHUNK = 4096  # images decoded at a time when writing: bounds memory, not speed

    def listing(self, folder: Path) -> Listing:
        raise NotImplementedError

    def read(self, folder: Path, shape: tuple[int, ...], class_names: tuple[str, ...]) -> Arrays:  # noqa: D102
        return _decoded_listing(self.listing(folder), shape[-1], str(folder))

    def nbytes(self, folder: Path, shape: tuple[int, ...]) -> int:  # noqa: D102
        count = sum(len(paths) for paths, _ in self.listing(folder).splits.values())
        return count * int(np.prod(shape))

    def write(  # noqa: D102
        self, folder: Path, shape: tuple[int, ...], class_names: tuple[str, ...], target: Path
    ) -> tuple[str, ...]:
        listing = self.listing(folder)
        for split, (paths, labels) in listing.splits.items():
            np.save(target / f"y_{split}.npy", labels)
            first = decode_images(paths[:1], shape[-1])
            out = np.lib.format.open_memmap(
                target / f"x_{split}.npy", "w+", np.uint8, (len(paths), *first.shape[1:])
            )
            for start in range(0, len(paths), self.CHUNK):
                chunk = decode_images(paths[start : start + self.CHUNK], shape[-1])
                if chunk.shape[1:] != first.shape[1:]:
                    raise DataError(
                        f"{paths[start]}: images from here on are {chunk.shape[1:]}, expected "
                        f"{first.shape[1:]} like {paths[0].name}."
                    )
                out[start : start + len(chunk)] = chunk
            out.flush()
            del out
        return listing.class_names


class ImageFolderReader(_TreeReader):
    """`{train,test}/<class>/*.png|jpg`."""

    name = "image_folder"

    def found(self, folder: Path) -> bool:  # noqa: D102
        return is_image_folder(folder)

    def listing(self, folder: Path) -> Listing:  # noqa: D102
        return list_image_folder(folder)


class TinyImageNetReader(_TreeReader):
    """Tiny ImageNet's own layout."""

    name = "tiny_imagenet"

    def found(self, folder: Path) -> bool:  # noqa: D102
        return is_tiny_imagenet(folder)

    def listing(self, folder: Path) -> Listing:  # noqa: D102
        return list_tiny_imagenet(folder)


READERS: dict[str, Reader] = {
    r.name: r for r in (IdxReader(), CifarPickleReader(), ImageFolderReader(), TinyImageNetReader())
}


# --- helpers --------------------------------------------------------------------------------------


def _require(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path}: missing; expected it in this layout.")
    return path


def _check_labels(labels: np.ndarray, num_classes: int, where: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"{where}: labels range {labels.min()}..{labels.max()}, expected 0..{num_classes - 1}."
        )
