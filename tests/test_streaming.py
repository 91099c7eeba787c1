"""Data larger than memory: the streaming path reads images from disk, batch by batch.

The folder here is real MNIST images written as an image-folder tree of PNG files; the memory
limit is forced below its size, so `load` must stream it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

import zoo.data
import zoo.data.__main__
from zoo.data import datasets
from zoo.recipes import recipe
from zoo.train import train
from zoo.train.__main__ import main


@pytest.fixture(scope="module")
def folder(data_dir, tmp_path_factory):
    """`mnist/{train,test}/<digit>/*.png`: 12 training and 4 test images per class."""
    mnist = zoo.data.read("mnist", data_dir=data_dir, stream=False)
    root = tmp_path_factory.mktemp("folder")
    for split, x, y, per_class in (("train", mnist.x_train, mnist.y_train, 12),
                                   ("test", mnist.x_test, mnist.y_test, 4)):  # fmt: skip
        for label in range(10):
            out = root / "mnist" / split / str(label)
            out.mkdir(parents=True)
            for i in np.flatnonzero(y == label)[:per_class]:
                tf.io.write_file(str(out / f"{i}.png"), tf.io.encode_png(x[i]))
    return root


@pytest.fixture
def low_limit(monkeypatch):
    """A memory limit far below the folder's 160 decoded images (125 KB)."""
    monkeypatch.setenv("ZOO_MEMORY_LIMIT", "16K")
    datasets._read.cache_clear()
    yield
    datasets._read.cache_clear()


def _batches(dataset: tf.data.Dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def test_over_the_memory_limit_the_same_batches_come_from_disk(folder, low_limit):
    settings = dict(data_dir=folder, batch_size=16, seed=3, epochs=(0, 2), val_split=0.25)
    in_memory = zoo.data.load("mnist", stream=False, **settings)
    streamed = zoo.data.load("mnist", **settings)  # chosen by the limit
    assert not in_memory[3].streaming and streamed[3].streaming
    assert isinstance(zoo.data.read("mnist", data_dir=folder).x_train, np.memmap)
    assert streamed[3].num_examples == in_memory[3].num_examples == {
        "train": 90, "val": 30, "test": 40
    }  # fmt: skip
    assert streamed[3].mean == in_memory[3].mean and streamed[3].std == in_memory[3].std
    for ours, theirs in zip(streamed[:3], in_memory[:3], strict=True):
        batches, expected = _batches(ours), _batches(theirs)
        assert len(batches) == len(expected)
        for (x, y), (x0, y0) in zip(batches, expected, strict=True):
            np.testing.assert_array_equal(y, y0)
            np.testing.assert_array_equal(x, x0)  # augmented with the same seeds too


def _same_batches(streamed: tuple, in_memory: tuple) -> None:
    assert streamed[3].streaming and not in_memory[3].streaming
    assert streamed[3].num_examples == in_memory[3].num_examples
    assert streamed[3].mean == in_memory[3].mean and streamed[3].std == in_memory[3].std
    for ours, theirs in zip(streamed[:3], in_memory[:3], strict=True):
        batches, expected = _batches(ours), _batches(theirs)
        assert len(batches) == len(expected) > 0
        for (x, y), (x0, y0) in zip(batches, expected, strict=True):
            np.testing.assert_array_equal(y, y0)
            np.testing.assert_array_equal(x, x0)


def test_a_subset_streams_only_its_rows_and_the_same_ones(folder, low_limit):
    settings = dict(data_dir=folder, subset=5, test_subset=2, batch_size=8, seed=2)
    streamed = zoo.data.load("mnist", **settings)
    assert streamed[3].num_examples["test"] == 20
    labels = np.concatenate([y.numpy() for _, y in streamed[2]])
    assert sorted(labels) == sorted(list(range(10)) * 2)
    _same_batches(streamed, zoo.data.load("mnist", stream=False, **settings))


def test_idx_files_stream_too(data_dir):
    """The formats read whole (IDX here) are written to the cache as they are, then mapped."""
    settings = dict(data_dir=data_dir, subset=8, test_subset=3, batch_size=16, seed=4)
    try:
        streamed = zoo.data.load("mnist", stream=True, **settings)
        assert isinstance(zoo.data.read("mnist", data_dir=data_dir, stream=True).x_train, np.memmap)
        _same_batches(streamed, zoo.data.load("mnist", stream=False, **settings))
    finally:
        datasets._read.cache_clear()


def test_a_run_over_the_memory_limit_trains_from_disk_with_the_same_result(
    folder, tmp_path, capsys, monkeypatch
):
    argv = ["mlp_mnist", "--data-dir", str(folder / "mnist"), "--epochs", "2", "--batch-size",
            "32", "--set", "hidden=(16,)", "--quiet"]  # fmt: skip
    with monkeypatch.context() as m:
        m.setenv("ZOO_MEMORY_LIMIT", "16K")
        datasets._read.cache_clear()
        assert main([*argv, "--out", str(tmp_path / "streamed")]) == 0
    datasets._read.cache_clear()
    streamed = capsys.readouterr().out
    settings = dict(data_dir=str(folder / "mnist"), epochs=2, batch_size=32,
                    model_kwargs={"weight_decay": 1e-4, "hidden": (16,)})  # fmt: skip
    alone = train(recipe("mlp_mnist", stream=False, **settings), tmp_path / "memory", verbose=0)
    run_dir = tmp_path / "streamed" / alone.path.name  # streaming is not part of a run's name
    assert str(run_dir) in streamed
    assert json.loads((run_dir / "config.json").read_text())["data_streamed"] is True
    assert json.loads((alone.path / "config.json").read_text())["data_streamed"] is False
    again = train(recipe("mlp_mnist", stream=True, **settings), tmp_path / "streamed")
    assert again.path == run_dir
    for split in ("train", "val", "test"):
        assert again.metrics[split] == pytest.approx(alone.metrics[split], rel=1e-6)


def test_a_bad_memory_limit_is_one_line(folder, monkeypatch, capsys):
    monkeypatch.setenv("ZOO_MEMORY_LIMIT", "lots")
    datasets._read.cache_clear()
    with pytest.raises(SystemExit) as exit_:
        zoo.data.__main__.main(["info", "mnist", "--data-dir", str(folder)])
    assert exit_.value.code == 2
    assert "ZOO_MEMORY_LIMIT='lots'" in capsys.readouterr().err


def test_a_real_tfds_builder_prepared_from_local_files_loads_and_streams(
    data_dir, tmp_path, monkeypatch
):
    """TFDS's own path: a builder prepares its files offline, and `load` reads what it wrote."""
    import dataclasses

    import tensorflow_datasets as tfds

    mnist = zoo.data.read("mnist", data_dir=data_dir, stream=False)

    class ZooLocalMnist(tfds.core.GeneratorBasedBuilder):
        """300 training and 100 test MNIST images, from the local IDX files."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self) -> tfds.core.DatasetInfo:
            features = tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(28, 28, 1)),
                "label": tfds.features.ClassLabel(num_classes=10),
            })  # fmt: skip
            return tfds.core.DatasetInfo(
                builder=self, features=features, supervised_keys=("image", "label")
            )

        def _split_generators(self, dl_manager):  # noqa: ANN001, ANN202
            return {
                "train": self._generate_examples(mnist.x_train[:300], mnist.y_train[:300]),
                "test": self._generate_examples(mnist.x_test[:100], mnist.y_test[:100]),
            }

        def _generate_examples(self, images, labels):  # noqa: ANN001, ANN202
            for i, (image, label) in enumerate(zip(images, labels, strict=True)):
                yield i, {"image": image, "label": int(label)}

    tfds_dir = tmp_path / "tfds"
    ZooLocalMnist(data_dir=str(tfds_dir)).download_and_prepare()
    spec = dataclasses.replace(datasets.DATASETS["mnist"], tfds="zoo_local_mnist")
    monkeypatch.setitem(datasets.DATASETS, "mnist", spec)
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    datasets._read.cache_clear()
    try:
        settings = dict(tfds_dir=tfds_dir, batch_size=50, seed=1, epochs=(0, 1))
        in_memory = zoo.data.load("mnist", stream=False, **settings)
        streamed = zoo.data.load("mnist", stream=True, **settings)
        arrays = zoo.data.read("mnist", tfds_dir=tfds_dir, stream=False)
    finally:
        datasets._read.cache_clear()
    assert in_memory[3].source == streamed[3].source == "tfds:zoo_local_mnist"
    assert streamed[3].streaming and not in_memory[3].streaming
    assert sum(in_memory[3].num_examples.values()) == 400
    for split, count in (("train", 300), ("test", 100)):  # TFDS shuffles records: as sets
        x, y = getattr(arrays, f"x_{split}"), getattr(arrays, f"y_{split}")
        x0, y0 = getattr(mnist, f"x_{split}")[:count], getattr(mnist, f"y_{split}")[:count]
        got = sorted((int(label), image.tobytes()) for image, label in zip(x, y, strict=True))
        want = sorted((int(label), image.tobytes()) for image, label in zip(x0, y0, strict=True))
        assert got == want
    for ours, theirs in zip(streamed[:3], in_memory[:3], strict=True):
        for (x, y), (x0, y0) in zip(_batches(ours), _batches(theirs), strict=True):
            np.testing.assert_array_equal(y, y0)
            np.testing.assert_array_equal(x, x0)
