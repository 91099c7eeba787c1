"""Readers for the standard on-disk formats: one `Reader` per format (`READERS`), which tells
its folders apart, reads one into uint8 arrays, or writes them decoded for streaming.

Formats: MNIST-style IDX files (gzipped or not), CIFAR-10/100 python pickle batches, an
image-folder tree `{train,test}/<class>/*.png|jpg`, and Tiny ImageNet's own layout. Archives
(`.tar.gz`, `.tgz`, `.tar`, `.zip`) are read into memory and searched like a folder, or, when
too large for memory, extracted once, safely, into a cache folder.
"""

from zoo.data.formats.archives import (
    ArchivePath,
    archive_nbytes,
    archive_stem,
    extract,
    is_archive,
    read_archive,
)
from zoo.data.formats.base import (
    ARCHIVE_SUFFIXES,
    ARRAY_FILES,
    IMAGE_SUFFIXES,
    Arrays,
    DataError,
    Listing,
    Reader,
)
from zoo.data.formats.cifar import CifarPickleReader, read_cifar_pickle
from zoo.data.formats.idx import IdxReader, read_idx, read_idx_file
from zoo.data.formats.images import (
    ImageFolderReader,
    TinyImageNetReader,
    decode_images,
    list_image_folder,
    list_tiny_imagenet,
)

READERS: dict[str, Reader] = {
    r.name: r for r in (IdxReader(), CifarPickleReader(), ImageFolderReader(), TinyImageNetReader())
}

__all__ = [
    "ARCHIVE_SUFFIXES", "ARRAY_FILES", "IMAGE_SUFFIXES", "READERS", "ArchivePath", "Arrays",
    "CifarPickleReader", "archive_nbytes", "archive_stem", "read_archive",
    "DataError", "IdxReader", "ImageFolderReader", "Listing", "Reader", "TinyImageNetReader",
    "decode_images", "extract", "is_archive", "list_image_folder", "list_tiny_imagenet",
    "read_cifar_pickle", "read_idx", "read_idx_file",
]  # fmt: skip
