"""Image files: an image-folder tree `{train,test}/<class>/*` and Tiny ImageNet's own layout,
listed, then decoded in parallel (or in chunks, to stream from disk)."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from zoo.data.formats.base import IMAGE_SUFFIXES, Arrays, DataError, Listing, Reader, require

# --- Image folders and Tiny ImageNet -----------------------------------------------------------


# A first decode of a large tree takes tens of seconds: the commands show its progress.
log = logging.getLogger("zoo.data")
PROGRESS_FROM = 2048  # images; smaller trees decode in a blink


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
    wnids = sorted(require(folder / "wnids.txt").read_text().split())
    index = {w: i for i, w in enumerate(wnids)}
    words = {}
    if (folder / "words.txt").is_file():
        for line in (folder / "words.txt").read_text().splitlines():
            wnid, _, text = line.partition("\t")
            words[wnid] = text.split(",")[0].strip()
    names = tuple(words.get(w, w) for w in wnids)

    paths, labels = [], []
    for wnid in wnids:
        images = _images_in(require(folder / "train" / wnid / "images"))
        paths += images
        labels += [index[wnid]] * len(images)
    train = paths, np.asarray(labels, np.int32)

    annotations = require(folder / "val" / "val_annotations.txt")
    paths, labels = [], []
    for n, line in enumerate(annotations.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise DataError(f"{annotations}:{n}: expected 'file<TAB>wnid' with a known wnid.")
        paths.append(require(folder / "val" / "images" / fields[0]))
        labels.append(index[fields[1]])
    test = paths, np.asarray(labels, np.int32)
    return Listing(names, {"train": train, "test": test})


def _decoded_listing(listing: Listing, channels: int, source: str) -> Arrays:
    splits = {s: (decode_images(p, channels), y) for s, (p, y) in listing.splits.items()}
    return Arrays(*splits["train"], *splits["test"], listing.class_names, source)


def decode_images(paths: list[Path], channels: int, progress: bool = True) -> np.ndarray:
    """Decodes image files in parallel into one `(N, H, W, channels)` uint8 array, logging its
    progress to the `zoo.data` logger when there are many (`progress=False`: never).

    Raises:
        DataError: Naming the first file that cannot be decoded or differs in size.
    """
    first = _decode_one(paths[0], channels)
    shape = tuple(first.shape)
    if isinstance(paths[0], Path):
        names = tf.data.Dataset.from_tensor_slices([str(p) for p in paths])
        encoded = names.map(tf.io.read_file, num_parallel_calls=tf.data.AUTOTUNE)
    else:  # members of an archive read into memory
        encoded = tf.data.Dataset.from_tensor_slices([p.read_bytes() for p in paths])
    images = encoded.map(
        lambda data: tf.ensure_shape(
            tf.io.decode_image(data, channels=channels, expand_animations=False), shape
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    ).batch(2048)
    out = np.empty((len(paths), *shape), np.uint8)
    start, began, shown = 0, time.perf_counter(), time.perf_counter()
    loud = progress and len(paths) >= PROGRESS_FROM
    if loud:
        log.info("decoding %s images from %s", f"{len(paths):,}", paths[0].parent.parent)
    try:
        for batch in images.as_numpy_iterator():
            out[start : start + len(batch)] = batch
            start += len(batch)
            if loud and time.perf_counter() - shown > 5:
                shown = time.perf_counter()
                log.info("decoded %s of %s images", f"{start:,}", f"{len(paths):,}")
        if loud:
            log.info("decoded %s images in %.1f s", f"{start:,}", time.perf_counter() - began)
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
        data = path.read_bytes()
        return tf.io.decode_image(data, channels=channels, expand_animations=False).numpy()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err}).") from None
    except (tf.errors.OpError, ValueError) as err:
        raise DataError(f"{path}: cannot decode image ({_op_message(err)}).") from None


def _op_message(err: Exception) -> str:
    """TensorFlow's error text without its internal function and op names."""
    message = getattr(err, "message", str(err)).strip().splitlines()[0]
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message)
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", message).strip().rstrip(".")


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
            first = decode_images(paths[:1], shape[-1], False)
            out = np.lib.format.open_memmap(
                target / f"x_{split}.npy", "w+", np.uint8, (len(paths), *first.shape[1:])
            )
            loud, began, shown = len(paths) >= PROGRESS_FROM, time.perf_counter(), 0.0
            if loud:
                log.info("decoding %s %s images of %s (once: the cache keeps them)",
                         f"{len(paths):,}", split, folder)  # fmt: skip
            for start in range(0, len(paths), self.CHUNK):
                if loud and start and time.perf_counter() - max(shown, began) > 5:
                    shown = time.perf_counter()
                    log.info("decoded %s of %s", f"{start:,}", f"{len(paths):,}")
                chunk = decode_images(paths[start : start + self.CHUNK], shape[-1], False)
                if chunk.shape[1:] != first.shape[1:]:
                    raise DataError(
                        f"{paths[start]}: images from here on are {chunk.shape[1:]}, expected "
                        f"{first.shape[1:]} like {paths[0].name}."
                    )
                out[start : start + len(chunk)] = chunk
            if loud:
                log.info(
                    "decoded %s images in %.1f s", f"{len(paths):,}", time.perf_counter() - began
                )
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
