"""Datasets as train / val / test `tf.data` pipelines, from files on disk or from TFDS.

    train, val, test, info = zoo.data.load("cifar10", data_dir="~/data", batch_size=128)

Where the data comes from, in order:

1. `data_dir`, else the `ZOO_DATA_DIR` environment variable: the dataset's own folder, or a root
   folder holding it under its usual name (`mnist/`, `cifar-10-batches-py/`, `cifar10/`,
   `tiny-imagenet-200/`, ...) or as an archive whose name starts with that name
   (`cifar10-jpeg.tar.gz`, `tiny-imagenet-200.zip`), read once into arrays kept in the cache
   folder (`ZOO_CACHE_DIR`, default `~/.cache/zoo`); an archive larger than the memory budget
   is extracted there instead. A `data_dir` without the dataset is an error,
   never a fall back to `ZOO_DATA_DIR` or TFDS.
2. TFDS (`tfds.load`, with `tfds_dir` or TFDS's own default), downloading only when online.
3. Otherwise a `DataError` naming every place and format looked for, and how to get the data.

The loaders live in `zoo.data.datasets` (readers in `formats`, splits and augmentation in
`pipeline`); this package loads them, and TensorFlow, on first use, so that
`python -m zoo.data --help` answers at once.
"""

from zoo.cli import lazy_exports

__all__ = [
    "DATASETS",
    "Augment",
    "DataError",
    "DatasetInfo",
    "list_datasets",
    "load",
    "read",
    "reusing",
]
__getattr__ = lazy_exports(__name__, "zoo.data.datasets")
