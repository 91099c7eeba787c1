"""zoo.data on the real files: IDX MNIST, the CIFAR-10 JPEG archive, the Tiny ImageNet subset."""

from __future__ import annotations

import gzip
import io
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import need_data
from PIL import Image

import zoo.data as zdata
from zoo.data import formats
from zoo.data.pipeline import channel_stats, split_stratified, subset_indices
from zoo.recipes import recipe

MNIST_TEST_PER_CLASS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_TRAIN_PER_CLASS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture(scope="module")
def mnist(data_dir):
    return zdata.read("mnist", data_dir=data_dir)


@pytest.fixture(scope="module")
def cifar(data_dir):
    return zdata.read("cifar10", data_dir=data_dir)


def _batches(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


# --- reading ---------------------------------------------------------------------------------


def test_mnist_idx_counts_shapes_and_classes(mnist):
    assert mnist.x_train.shape == (60000, 28, 28, 1) and mnist.x_train.dtype == np.uint8
    assert mnist.x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(mnist.y_train).tolist() == MNIST_TRAIN_PER_CLASS
    assert np.bincount(mnist.y_test).tolist() == MNIST_TEST_PER_CLASS
    assert mnist.class_names == tuple("0123456789")
    # The README of the data: train mean 0.13071, std 0.30824.
    assert mnist.x_train.mean() / 255 == pytest.approx(0.13071, abs=1e-4)


def test_cifar_image_folder_counts_and_labels_match_folders(cifar):
    assert cifar.x_train.shape == (50000, 32, 32, 3) and cifar.x_test.shape == (10000, 32, 32, 3)
    assert np.bincount(cifar.y_train).tolist() == [5000] * 10
    assert np.bincount(cifar.y_test).tolist() == [1000] * 10
    assert cifar.class_names[3] == "cat"
    # Read from the archive, never extracted; the first cat is the first file of train/cat/.
    assert cifar.source.endswith("cifar10-jpeg.tar.gz/cifar10")
    with tarfile.open(Path(cifar.source).parent) as tar:
        cats = sorted(m.name for m in tar if m.name.startswith("cifar10/train/cat/"))
        decoded = tf.io.decode_jpeg(tar.extractfile(cats[0]).read(), channels=3).numpy()
    assert cifar.y_train[15000] == 3
    np.testing.assert_array_equal(cifar.x_train[15000], decoded)


@pytest.mark.slow
def test_tiny_imagenet_layout_val_serves_as_test(data_dir):
    need_data(data_dir / "tiny-imagenet-200-subset.tar.gz", "the Tiny ImageNet archive")
    tiny = zdata.read("tiny_imagenet", data_dir=data_dir)
    assert tiny.x_train.shape == (30000, 64, 64, 3)
    assert np.bincount(tiny.y_train, minlength=200).tolist() == [150] * 200
    assert np.bincount(tiny.y_test, minlength=200).tolist() == [50] * 200
    assert tiny.class_names[0] == "goldfish"  # n01443537, the first wnid in sorted order
    # Greyscale JPEGs come out as RGB with three equal channels.
    grey = (tiny.x_train[..., 0] == tiny.x_train[..., 1]).all(axis=(1, 2))
    assert grey.sum() > 0


def _small_archive(cifar, tmp_path: Path, suffix: str = ".tar.gz") -> Path:
    tree = _small_image_tree(cifar, tmp_path / "tree")
    archive = tmp_path / "data" / f"cifar10-small{suffix}"
    archive.parent.mkdir()
    if suffix == ".zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for path in sorted(tree.rglob("*")):
                zf.write(path, path.relative_to(tree).as_posix())
    else:
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(tree / "cifar10", "cifar10")
    return archive


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_an_archive_is_read_in_memory_once_and_never_extracted(
    cifar, tmp_path, monkeypatch, suffix
):
    archive = _small_archive(cifar, tmp_path, suffix)
    cache = tmp_path / "cache"
    monkeypatch.setenv("ZOO_CACHE_DIR", str(cache))
    first = zdata.read("cifar10", data_dir=archive.parent)
    assert first.source == f"{archive}/cifar10" and first.x_train.shape == (30, 32, 32, 3)
    np.testing.assert_array_equal(
        first.x_train[0], cifar.x_train[np.flatnonzero(cifar.y_train == 0)[0]]
    )
    # The cache holds the decoded arrays and nothing extracted.
    assert len(list(cache.rglob("meta.json"))) == 1
    assert not list(cache.rglob("*.png")) and list(cache.iterdir()) == [cache / "decoded"]
    # A later process reads the cached arrays without opening the archive again.
    zdata.datasets._read.cache_clear()
    monkeypatch.setattr(formats, "read_archive", lambda path: pytest.fail("read again"))
    again = zdata.read("cifar10", data_dir=archive.parent)
    np.testing.assert_array_equal(again.x_train, first.x_train)
    assert again.class_names == first.class_names and again.source == first.source


def test_images_of_the_wrong_size_are_refused_from_an_archive_and_its_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    archive = tmp_path / "cifar10-small.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("train", "test"):
            for name in ("cat", "dog"):
                image = io.BytesIO()
                Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(image, format="PNG")
                member = tarfile.TarInfo(f"cifar10/{split}/{name}/0000.png")
                member.size = image.tell()
                image.seek(0)
                tar.addfile(member, image)
    for _ in range(2):  # read, then from the arrays it cached
        zdata.datasets._read.cache_clear()
        with pytest.raises(zdata.DataError, match=r"should be \(32, 32, 3\), found \(16, 16, 3\)"):
            zdata.read("cifar10", data_dir=archive)


def test_files_that_need_no_decoding_are_read_from_an_archive_too(data_dir, mnist, tmp_path):
    archive = tmp_path / "mnist.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # gzipped IDX files, in a folder of the zip
        for path in sorted((data_dir / "mnist").glob("*-ubyte*")):
            zf.write(path, f"mnist/{path.name}")
    arrays = zdata.read("mnist", data_dir=archive)
    assert arrays.source == f"{archive}/mnist"
    for k in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(arrays, k), getattr(mnist, k))


def test_an_archive_larger_than_the_memory_budget_is_extracted_once(cifar, tmp_path, monkeypatch):
    archive = _small_archive(cifar, tmp_path)
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    in_memory = zdata.read("cifar10", data_dir=archive)
    zdata.datasets._read.cache_clear()
    # Its files' size, as the gzip's trailer gives it: one byte less is over the budget.
    monkeypatch.setenv("ZOO_MEMORY_LIMIT", str(formats.archive_nbytes(archive) - 1))
    assert zdata.read("cifar10", data_dir=archive).source == in_memory.source  # cached first
    zdata.datasets._read.cache_clear()
    cache = tmp_path / "cold cache"
    monkeypatch.setenv("ZOO_CACHE_DIR", str(cache))
    extracted = zdata.read("cifar10", data_dir=archive)
    folder = formats.extract(archive, cache)
    assert extracted.source == str(folder / "cifar10")
    for k in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(extracted, k), getattr(in_memory, k))
    marker = folder / "marker"
    marker.write_text("kept")
    assert formats.extract(archive, cache) == folder
    assert marker.read_text() == "kept"  # not extracted again


def test_the_dataset_folder_itself_and_the_env_variable(data_dir, monkeypatch):
    direct = zdata.read("mnist", data_dir=data_dir / "mnist")
    assert len(direct.y_train) == 60000
    monkeypatch.setenv("ZOO_DATA_DIR", str(data_dir))
    *_, info = zdata.load("mnist", subset=5, test_subset=5)
    assert info.source == str((data_dir / "mnist").resolve())


# --- splits and subsets ------------------------------------------------------------------------


def test_val_split_is_stratified_disjoint_and_stable(mnist):
    keep, held = split_stratified(mnist.y_train, 1 / 6, seed=0)
    assert not set(keep) & set(held)
    assert len(keep) + len(held) == 60000
    per_class = np.bincount(mnist.y_train[held])
    expected = np.round(np.asarray(MNIST_TRAIN_PER_CLASS) / 6)
    np.testing.assert_array_equal(per_class, expected)
    again = split_stratified(mnist.y_train, 1 / 6, seed=0)
    np.testing.assert_array_equal(held, again[1])
    other = split_stratified(mnist.y_train, 1 / 6, seed=1)
    assert not np.array_equal(held, other[1])


def test_subset_fraction_and_per_class_count(mnist):
    tenth = subset_indices(mnist.y_train, 0.1, seed=0)
    assert abs(len(tenth) - 6000) <= 10
    per_class = subset_indices(mnist.y_train, 7, seed=0)
    assert np.bincount(mnist.y_train[per_class]).tolist() == [7] * 10
    with pytest.raises(ValueError, match="fraction must be in"):
        subset_indices(mnist.y_train, 1.5, seed=0)
    with pytest.raises(ValueError, match="per-class count"):
        subset_indices(mnist.y_train, 0, seed=0)


def test_load_mnist_pipelines(data_dir):
    train, val, test, info = zdata.load(
        "mnist", data_dir=data_dir, batch_size=32, subset=60, test_subset=20, augment=False
    )
    assert info.num_examples == {"train": 500, "val": 100, "test": 200}
    assert info.input_shape == (28, 28, 1) and info.num_classes == 10
    x, y = next(iter(train))
    assert x.shape == (32, 28, 28, 1) and x.dtype == tf.float32 and y.dtype == tf.int32
    x_train, y_train = _batches(train)
    x_val, _ = _batches(val)
    assert len(y_train) == 500 and len(x_val) == 100
    assert len(_batches(test)[1]) == 200
    # Standardized with the train split's own statistics.
    assert abs(x_train.mean()) < 1e-3 and x_train.std() == pytest.approx(1.0, abs=1e-3)
    # No validation image is also a training image.
    train_keys = {row.tobytes() for row in x_train.reshape(len(x_train), -1)}
    assert not any(row.tobytes() in train_keys for row in x_val.reshape(len(x_val), -1))


def test_mean_subtraction_keeps_the_pixels_scale(data_dir):
    # CS231n's preprocessing (S0): the mean off, pixels still on the 0-255 scale.
    common = dict(data_dir=data_dir, subset=20, test_subset=1, augment=False, shuffle=False)
    train, *_, info = zdata.load("cifar10", normalize="mean", **common)
    x, _ = _batches(train)
    raw, *_ = zdata.load("cifar10", normalize=False, **common)
    x01, _ = _batches(raw)
    assert info.normalized == "mean" and info.std == pytest.approx((1 / 255,) * 3)
    assert np.abs(x.mean(axis=(0, 1, 2))).max() < 1e-2
    np.testing.assert_allclose(x, (x01 - x01.mean(axis=(0, 1, 2))) * 255, atol=0.1)
    with pytest.raises(ValueError, match="normalize must be True, False or 'mean'"):
        zdata.load("cifar10", normalize="std", **common)


def test_default_val_split_is_the_studies(data_dir):
    *_, info = zdata.load("mnist", data_dir=data_dir, subset=60, test_subset=1)
    assert info.num_examples["val"] == 100  # S2's 5:1


# --- augmentation --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_augmentation_changes_pixels_not_labels_and_is_seeded(data_dir, name):
    common = dict(
        data_dir=data_dir, subset=20, test_subset=1, shuffle=False, normalize=False, seed=3
    )
    plain, *_ = zdata.load(name, augment=False, **common)
    aug_a, *_ = zdata.load(name, augment=True, **common)
    aug_b, *_ = zdata.load(name, augment=True, **common)
    x0, y0 = _batches(plain)
    xa, ya = _batches(aug_a)
    xb, _ = _batches(aug_b)
    np.testing.assert_array_equal(y0, ya)
    changed = (np.abs(xa - x0).reshape(len(xa), -1).max(1) > 0).mean()
    assert changed > 0.5  # most images moved (crops of offset 0 without flip leave a few)
    np.testing.assert_array_equal(xa, xb)  # same seed, same augmentation
    xa2, _ = _batches(aug_a)  # the next epoch draws new augmentations
    assert not np.array_equal(xa, xa2)


def test_crop_and_flip_keep_the_image_content(data_dir):
    aug = zdata.Augment(flip=True)
    common = dict(data_dir=data_dir, subset=5, test_subset=1, shuffle=False, normalize=False)
    plain, *_ = zdata.load("cifar10", augment=False, **common)
    flipped, *_ = zdata.load("cifar10", augment=aug, **common)
    x0, _ = _batches(plain)
    xf, _ = _batches(flipped)
    for a, b in zip(x0, xf, strict=True):
        assert np.array_equal(a, b) or np.array_equal(a[:, ::-1], b)


def test_image_size_averages_each_block_of_pixels_and_scales_the_crop(data_dir):
    common = dict(data_dir=data_dir, subset=6, test_subset=3, augment=False, shuffle=False,
                  normalize=False, seed=3)  # fmt: skip
    full = zdata.load("cifar10", **common)
    half = zdata.load("cifar10", image_size=16, **common)
    assert half[3].input_shape == (16, 16, 3) and half[3].num_examples == full[3].num_examples
    for whole, small in zip(full[:3], half[:3], strict=True):  # train, val, test
        (x32, y32), (x16, y16) = _batches(whole), _batches(small)
        np.testing.assert_array_equal(y16, y32)  # the same images in the same order
        # Each pixel the mean of the 2x2 block it covers, rounded to a uint8 level.
        box = (x32 * 255).reshape(-1, 16, 2, 16, 2, 3).mean(axis=(2, 4))
        assert np.abs(x16 * 255 - box).max() <= 0.5 + 1e-3
    # The standard crop pads by as much of the image as before: 4 of 32 pixels, 2 of 16.
    *_, info = zdata.load("cifar10", data_dir=data_dir, subset=2, test_subset=1, image_size=16)
    assert info.augment.crop_padding == 2
    *_, info = zdata.load("cifar10", data_dir=data_dir, subset=2, test_subset=1, image_size=16,
                          augment={"crop_padding": 3})  # fmt: skip
    assert info.augment.crop_padding == 3  # a padding given is taken as given


def test_image_size_enlarges_too_and_refuses_what_is_not_a_size(data_dir):
    train, *_, info = zdata.load("mnist", data_dir=data_dir, subset=2, test_subset=1,
                                 image_size=32, normalize=False)  # fmt: skip
    x, _ = _batches(train)
    assert x.shape[1:] == (32, 32, 1) == info.input_shape and 0 <= x.min() < x.max() <= 1
    for bad in (0, 16.0, True):
        with pytest.raises(ValueError, match="image_size must be"):
            zdata.load("mnist", data_dir=data_dir, subset=2, image_size=bad)


def test_channel_stats_are_exact_and_a_second_load_reuses_the_first_ones_work(
    data_dir, monkeypatch, tmp_path
):
    from zoo.data import datasets

    arrays = zdata.read("cifar10", data_dir=data_dir)
    rows = subset_indices(arrays.y_train, 40, seed=1)
    pixels = arrays.x_train[rows].astype(np.float64)
    mean, std = channel_stats(arrays.x_train, rows)
    np.testing.assert_allclose(mean, pixels.mean((0, 1, 2)) / 255, rtol=1e-12)
    np.testing.assert_allclose(std, pixels.std((0, 1, 2)) / 255, rtol=1e-12)

    assert all(math.isnan(v) for v in sum(channel_stats(arrays.x_train, rows[:0]), ()))

    calls = []
    for name in ("resize_images", "channel_stats"):
        real = getattr(datasets, name)
        monkeypatch.setattr(datasets, name, lambda *a, f=real: calls.append(f.__name__) or f(*a))
    common = dict(data_dir=data_dir, subset=6, test_subset=3, image_size=16)
    with zdata.reusing():
        (*first, info), (*second, again) = (zdata.load("cifar10", **common, augment=aug, seed=3)
                                            for aug in (True, False))  # fmt: skip
        assert calls == ["resize_images", "resize_images", "channel_stats"]  # train, test, stats
        *_, other_rows = zdata.load("cifar10", **common, seed=4)  # other rows: computed anew
        assert len(calls) == 6 and other_rows.mean != info.mean
    assert again.mean == info.mean and again.std == info.std
    for one, other in zip(first[1:], second[1:], strict=True):  # val and test, unaugmented
        np.testing.assert_array_equal(_batches(one)[0], _batches(other)[0])
    zdata.load("cifar10", **common, seed=4)  # outside the block nothing is kept
    assert len(calls) == 9 and datasets._LAST is None

    # A run's two loads, at its own size and at another, compute the statistics once.
    from zoo.train import train

    for size in (None, 16):
        calls.clear()
        settings = dict(data_dir=str(data_dir), subset=2, test_subset=1, epochs=1,
                        image_size=size, model_kwargs={"filters": (4, 8)})  # fmt: skip
        train(recipe("deeper_convnet", **settings), tmp_path, verbose=0)
        assert calls.count("channel_stats") == 1
        assert calls.count("resize_images") == (2 if size else 0)


def test_alternating_flip_shows_each_image_the_other_way_round_every_epoch(data_dir):
    common = dict(data_dir=data_dir, subset=5, test_subset=1, shuffle=False, normalize=False)
    plain, *_ = zdata.load("cifar10", augment=False, **common)
    x0, _ = _batches(plain)
    # Crops off, so only the flips move pixels; epochs 0..3 as a resumed run would see them.
    alternate = {"crop_padding": 0, "flip": True, "flip_alternate": True}
    seen = []
    for epoch in range(4):
        ds, *_ = zdata.load("cifar10", augment=alternate, epochs=(epoch, epoch + 1), **common)
        seen.append(_batches(ds)[0])
    first = np.array([np.array_equal(a[:, ::-1], b) for a, b in zip(x0, seen[0], strict=True)])
    assert 0.2 < first.mean() < 0.8  # a seeded coin per image in epoch 0
    for epoch in (1, 3):
        np.testing.assert_array_equal(seen[epoch], seen[0][:, :, ::-1])  # all turned over
    np.testing.assert_array_equal(seen[2], seen[0])
    # Without it each epoch draws afresh: some images keep their orientation.
    random, *_ = zdata.load("cifar10", augment={"crop_padding": 0}, epochs=(0, 2), **common)
    x, _ = _batches(random)
    same = [np.array_equal(a, b) for a, b in zip(x[: len(x0)], x[len(x0) :], strict=True)]
    assert 0 < np.mean(same) < 1


def test_reflect_fills_a_shifted_image_with_its_mirror_not_zeros(data_dir):
    common = dict(data_dir=data_dir, subset=5, test_subset=1, shuffle=False, normalize=False)
    plain, *_ = zdata.load("cifar10", augment=False, **common)
    x0, _ = _batches(plain)
    shifted, *_ = zdata.load("cifar10", augment={"crop_padding": 2, "flip": False,
                                                 "reflect": True}, **common)  # fmt: skip
    x, _ = _batches(shifted)
    matched = 0
    for a, b in zip(x0, x, strict=True):
        # Some shift (dy, dx) in ±2 maps the original, padded by reflection, onto the crop.
        padded = np.pad(a, ((2, 2), (2, 2), (0, 0)), mode="symmetric")
        crops = [padded[2 + dy : 34 + dy, 2 + dx : 34 + dx] for dy in range(-2, 3)
                 for dx in range(-2, 3)]  # fmt: skip
        matched += any(np.array_equal(crop, b) for crop in crops)
    assert matched == len(x0)
    with pytest.raises(ValueError, match="Unknown augmentation field.*'flip_alternating'.*Valid"):
        zdata.load("cifar10", augment={"flip_alternating": True}, **common)
    with pytest.raises(ValueError, match="Unknown augmentation field.*'flip_alternating'.*Valid"):
        recipe("airbench", augment={"flip_alternating": True})  # refused before any data


# --- bad input ---------------------------------------------------------------------------------


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Unknown dataset 'cifar'.*Known datasets: cifar10, "):
        zdata.load("cifar")


def test_a_data_dir_without_the_data_is_an_error_not_a_fallback(tmp_path, monkeypatch, data_dir):
    monkeypatch.setenv("ZOO_DATA_DIR", str(data_dir))  # holds MNIST, but data_dir was given
    with pytest.raises(zdata.DataError) as err:
        zdata.read("mnist", data_dir=tmp_path)
    message = str(err.value)
    assert f"No mnist data in data_dir {tmp_path}" in message and "mnist/" in message


def test_nothing_found_names_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path))
    with pytest.raises(zdata.DataError) as err:
        zdata.read("cifar100")
    message = str(err.value)
    assert str(tmp_path) in message and "cifar-100-python/" in message
    assert "TFDS" in message and "offline" in message and "cifar-100-python.tar.gz" in message


def test_missing_data_dir_is_named(tmp_path):
    with pytest.raises(zdata.DataError, match="does not exist"):
        zdata.read("mnist", data_dir=tmp_path / "nowhere")


def _mnist_copy(data_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "mnist"
    shutil.copytree(data_dir / "mnist", folder)
    return folder


def test_truncated_idx_file_is_named(data_dir, tmp_path):
    folder = _mnist_copy(data_dir, tmp_path)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(zdata.DataError, match=r"t10k-labels-idx1-ubyte\.gz: header promises"):
        zdata.read("mnist", data_dir=tmp_path)


def test_missing_idx_file_is_named(data_dir, tmp_path):
    folder = _mnist_copy(data_dir, tmp_path)
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(zdata.DataError, match="missing t10k-images-idx3-ubyte"):
        zdata.read("mnist", data_dir=folder)


def test_image_and_label_counts_must_agree(data_dir, tmp_path):
    folder = _mnist_copy(data_dir, tmp_path)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    fewer = raw[:4] + (9999).to_bytes(4, "big") + raw[8:-1]
    path.write_bytes(gzip.compress(fewer))
    with pytest.raises(
        zdata.DataError, match=r"test images \(10000, 28, 28\) and labels \(9999,\)"
    ):
        zdata.read("mnist", data_dir=folder)


def _small_image_tree(cifar, root: Path, per_class: int = 3) -> Path:
    for split, x, y in (
        ("train", cifar.x_train, cifar.y_train),
        ("test", cifar.x_test, cifar.y_test),
    ):
        for label, name in enumerate(cifar.class_names):
            folder = root / "cifar10" / split / name
            folder.mkdir(parents=True)
            for i, idx in enumerate(np.flatnonzero(y == label)[:per_class]):
                Image.fromarray(x[idx]).save(folder / f"{i:04d}.png")
    return root


def test_image_folder_tree_of_pngs(cifar, tmp_path):
    root = _small_image_tree(cifar, tmp_path)
    arrays = zdata.read("cifar10", data_dir=root)
    assert arrays.x_train.shape == (30, 32, 32, 3)
    np.testing.assert_array_equal(
        arrays.x_train[0], cifar.x_train[np.flatnonzero(cifar.y_train == 0)[0]]
    )


def test_a_first_decode_prints_its_progress_through_the_commands(
    cifar, tmp_path, monkeypatch, capsys
):
    import logging

    from zoo.cli import show_progress
    from zoo.data.formats import images

    root = _small_image_tree(cifar, tmp_path)
    monkeypatch.setattr(images, "PROGRESS_FROM", 10)  # 30 training images count as many
    logger = logging.getLogger("zoo")
    handlers, level = list(logger.handlers), logger.level
    try:
        logger.handlers = []
        show_progress(quiet=True)  # --quiet: nothing
        assert not logger.handlers
        show_progress()
        show_progress()  # once per process, however many commands it runs
        assert len(logger.handlers) == 1
        zdata.read("cifar10", data_dir=root)
        lines = capsys.readouterr().err.splitlines()
        folder = root / "cifar10"
        assert lines[0] == f"zoo: decoding 30 train images of {folder} (once: the cache keeps them)"
        assert re.fullmatch(r"zoo: decoded 30 images in \d+\.\d s", lines[1])
        assert lines[2].startswith("zoo: decoding 30 test images")
    finally:
        logger.handlers, logger.level = handlers, level


def test_corrupt_image_is_named(cifar, tmp_path):
    root = _small_image_tree(cifar, tmp_path)
    bad = root / "cifar10" / "test" / "dog" / "0001.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(zdata.DataError, match=r"dog/0001\.png: cannot decode image") as err:
        zdata.read("cifar10", data_dir=root)
    # TensorFlow's internals stay out of the message: "...(Unknown image file format. ...)."
    assert "function_node" not in str(err.value) and "Op:" not in str(err.value)
    assert "Unknown image file format" in str(err.value)


def test_image_of_another_size_is_named(cifar, tmp_path):
    root = _small_image_tree(cifar, tmp_path)
    odd = root / "cifar10" / "train" / "ship" / "0002.png"
    Image.fromarray(np.zeros((30, 32, 3), np.uint8)).save(odd)
    with pytest.raises(zdata.DataError, match=r"ship/0002\.png: image is \(30, 32, 3\)"):
        zdata.read("cifar10", data_dir=root)


@pytest.mark.parametrize("extracted", [False, True], ids=["in memory", "extracted"])
@pytest.mark.parametrize(
    "member, message",
    [("../escaped.txt", "outside the folder"), ("cifar10/link", "is a link"),
     ("cifar10/a", "both a file and a folder")],
)  # fmt: skip
def test_archive_members_cannot_escape_link_or_clash(tmp_path, monkeypatch, member, message,
                                                     extracted):  # fmt: skip
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    if extracted:
        monkeypatch.setenv("ZOO_MEMORY_LIMIT", "1")  # every archive is over the budget
    archive = tmp_path / "data" / "cifar10-evil.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(member)
        if member.endswith("link"):
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info, io.BytesIO(b""))
        if member == "cifar10/a":
            tar.addfile(tarfile.TarInfo("cifar10/a/b"), io.BytesIO(b""))
    if extracted and member == "cifar10/a":
        message = "cannot extract"  # the file system refuses the second one
    with pytest.raises(zdata.DataError, match=message) as raised:
        zdata.read("cifar10", data_dir=archive.parent)
    assert str(archive) in str(raised.value)
    assert not (tmp_path / "escaped.txt").exists()


@pytest.mark.parametrize("extracted", [False, True], ids=["in memory", "extracted"])
def test_a_link_in_a_zip_is_refused(tmp_path, monkeypatch, extracted):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    if extracted:
        monkeypatch.setenv("ZOO_MEMORY_LIMIT", "1")
    archive = tmp_path / "cifar10.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo("cifar10/link")
        link.external_attr = 0o120777 << 16  # a symbolic link, as zip -y stores one
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(zdata.DataError, match=r"cifar10\.zip: member 'cifar10/link' is a link"):
        zdata.read("cifar10", data_dir=archive)


def test_a_changed_archive_is_read_again_and_one_inside_another_is_cached_once(
    cifar, tmp_path, monkeypatch
):
    archive = _small_archive(cifar, tmp_path)
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    first = zdata.read("cifar10", data_dir=archive)
    # Rewritten with one class fewer: a new size and time, so it is read again.
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "tree" / "cifar10" / "train", "cifar10/train",
                filter=lambda m: None if "/truck" in m.name else m)  # fmt: skip
        tar.add(tmp_path / "tree" / "cifar10" / "test", "cifar10/test",
                filter=lambda m: None if "/truck" in m.name else m)  # fmt: skip
    os.utime(archive, ns=(0, archive.stat().st_mtime_ns + 10**9))
    zdata.datasets._read.cache_clear()
    changed = zdata.read("cifar10", data_dir=archive)
    assert len(first.y_train) == 30 and len(changed.y_train) == 27
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(archive, archive.name)
    zdata.datasets._read.cache_clear()
    nested = zdata.read("cifar10", data_dir=outer)
    np.testing.assert_array_equal(nested.x_train, changed.x_train)
    zdata.datasets._read.cache_clear()
    monkeypatch.setattr(formats, "read_archive", lambda path: pytest.fail(f"{path} read again"))
    np.testing.assert_array_equal(zdata.read("cifar10", data_dir=outer).x_train, changed.x_train)


# --- synthetic, CLI ------------------------------------------------------------------------


def test_synthetic_any_shape():
    train, val, test, info = zdata.load(
        "synthetic", synthetic_shape=(12, 10, 2), synthetic_classes=4, batch_size=16
    )
    x, y = next(iter(train))
    assert x.shape == (16, 12, 10, 2) and info.num_classes == 4
    assert info.num_examples == {"train": 360, "val": 40, "test": 80}


def _cli(*args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "zoo.data", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.slow
def test_bench_cli_prints_figures(data_dir):
    out = _cli("bench", "mnist", "--data-dir", str(data_dir), "--passes", "1")
    assert out.returncode == 0, out.stderr
    assert "images/s" in out.stdout and "first full pass" in out.stdout


@pytest.mark.slow
def test_cli_bad_dataset_exits_2(tmp_path):
    out = _cli("info", "imagenet")
    assert out.returncode == 2 and "Unknown dataset 'imagenet'" in out.stderr
    assert "Traceback" not in out.stderr
    missing = _cli("info", "cifar10", "--data-dir", str(tmp_path))
    assert missing.returncode == 2 and "No cifar10 data in data_dir" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1, missing.stderr


def test_tfds_source_when_nothing_is_on_disk(tmp_path, monkeypatch):
    """TFDS cannot download here, so its own mock stands in for a prepared dataset."""
    from unittest import mock

    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)

    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=40):
        builder_type = type(tfds.builder("cifar100", data_dir=str(tmp_path)))
        with mock.patch.object(builder_type, "is_prepared", return_value=True):
            train, _, _, info = zdata.load(
                "cifar100", tfds_dir=tmp_path, val_split=0.0, batch_size=8
            )
    assert info.source == "tfds:cifar100" and info.num_classes == 100
    assert info.num_examples["train"] == 40
    x, y = next(iter(train))
    assert x.shape == (8, 32, 32, 3) and y.dtype == tf.int32


def _write_cifar_batches(cifar, folder: Path) -> None:
    """CIFAR-10's python layout, written as the original (protocol 2, byte-string keys)."""
    import pickle

    folder.mkdir(parents=True)

    def dump(name: str, x: np.ndarray, y: np.ndarray) -> None:
        batch = {b"data": x.transpose(0, 3, 1, 2).reshape(len(x), -1), b"labels": y.tolist()}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))

    for i in range(5):
        part = slice(i * 10000, (i + 1) * 10000)
        dump(f"data_batch_{i + 1}", cifar.x_train[part], cifar.y_train[part])
    dump("test_batch", cifar.x_test, cifar.y_test)
    names = {b"label_names": [n.encode() for n in cifar.class_names]}
    (folder / "batches.meta").write_bytes(pickle.dumps(names, protocol=2))


@pytest.mark.slow
def test_cifar_python_batches(cifar, tmp_path):
    _write_cifar_batches(cifar, tmp_path / "cifar-10-batches-py")
    arrays = zdata.read("cifar10", data_dir=tmp_path)
    np.testing.assert_array_equal(arrays.x_train, cifar.x_train)
    np.testing.assert_array_equal(arrays.y_test, cifar.y_test)
    assert arrays.class_names == cifar.class_names


def test_cifar_pickles_cannot_run_code(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch pwned",))

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(pickle.dumps(Evil()))
    (folder / "batches.meta").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(zdata.DataError, match="refusing to load"):
        zdata.read("cifar10", data_dir=tmp_path)
    assert not (Path.cwd() / "pwned").exists()
