"""From decoded uint8 arrays to tf.data pipelines: splits, subsets, batched augmentation.

Images stay uint8 in memory. A training batch is gathered by index from that array, augmented
as a whole batch with one projective-transform op (crop-with-padding, flip, rotation and shift
are all affine maps, so they compose into one matrix per image), normalized, and prefetched.
Randomness is stateless and seeded, so a pipeline is the same under the same seed.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from zoo.data.specs import Augment


def split_stratified(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Splits indices per class: `round(n_c * fraction)` of each class go to the second part.

    Returns:
        `(keep, held_out)` index arrays, each sorted, disjoint, covering every index.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"val_split must be in [0, 1), got {fraction!r}.")
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        rng.shuffle(idx)
        n = round(len(idx) * fraction)
        held.append(idx[:n])
        keep.append(idx[n:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def subset_indices(labels: np.ndarray, subset: float | int, seed: int) -> np.ndarray:
    """A stratified random subset: a fraction in (0, 1], or a count per class (int >= 1).

    Raises:
        ValueError: For a fraction outside (0, 1] or a count below 1.
    """
    if isinstance(subset, bool) or not isinstance(subset, (int, float)):
        raise ValueError(f"subset must be a fraction or a per-class count, got {subset!r}.")
    if isinstance(subset, float) and not 0 < subset <= 1:
        raise ValueError(f"subset fraction must be in (0, 1], got {subset!r}.")
    if isinstance(subset, int) and subset < 1:
        raise ValueError(f"subset per-class count must be >= 1, got {subset!r}.")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        n = min(
            len(idx), subset if isinstance(subset, int) else max(1, math.ceil(len(idx) * subset))
        )
        chosen.append(rng.choice(idx, n, replace=False))
    return np.sort(np.concatenate(chosen))


def resize_images(images: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """`images[rows]` resized to `size` x `size`, uint8, in memory (also from a memory map).

    Smaller images average the pixels each one covers (TensorFlow's `area` resize; for a whole
    factor, as 64 -> 32, the box filter of downsampled ImageNet, Chrabaszcz et al. 2017);
    larger ones are interpolated bilinearly.
    """
    method = "area" if size < images.shape[1] else "bilinear"
    out = np.empty((len(rows), size, size, images.shape[3]), np.uint8)
    for start in range(0, len(rows), 4096):  # chunks: the float copy is 4 bytes a pixel
        part = _read_rows(images, np.asarray(rows[start : start + 4096]))
        resized = tf.image.resize(part, (size, size), method=method).numpy()
        out[start : start + len(part)] = np.clip(np.round(resized), 0, 255)
    return out


def channel_stats(
    images: np.ndarray, rows: np.ndarray | None = None
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (those at `rows`, default all), on [0, 1]."""
    rows = np.arange(len(images)) if rows is None else rows
    channels = images.shape[-1]
    if not len(rows):
        return (math.nan,) * channels, (math.nan,) * channels
    # Exact, from each channel's histogram of the 256 values, in chunks: no float copy of
    # the whole set (nor, for images on disk, a copy of them in memory), and 2-3x faster than
    # float64 sums of the chunks.
    counts = np.zeros((channels, 256), np.int64)
    step = max(1, (1 << 22) // max(1, int(np.prod(images.shape[1:-1]))))
    for start in range(0, len(rows), step):
        chunk = images[rows[start : start + step]].reshape(-1, channels)
        for channel in range(channels):
            counts[channel] += np.bincount(chunk[:, channel], minlength=256)
    values = np.arange(256, dtype=np.float64)
    pixels = counts.sum(1)
    mean = counts @ values / pixels
    std = np.sqrt(np.maximum(counts @ values**2 / pixels - mean**2, 0.0))
    return tuple(float(m) / 255 for m in mean), tuple(float(s) / 255 for s in std)


def augment_batch(
    images: tf.Tensor, aug: Augment, seed: tf.Tensor, flips: tf.Tensor | None = None
) -> tf.Tensor:
    """Augments a batch `(B, H, W, C)` with one projective transform per image.

    `seed` is a shape-(2,) int tensor for the stateless random ops; `flips` `(B,)` bool,
    which images `aug.flip` mirrors (default: each with probability 0.5).
    """
    batch = tf.shape(images)[0]
    height = tf.cast(tf.shape(images)[1], tf.float32)
    width = tf.cast(tf.shape(images)[2], tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, 7)
    zeros, ones = tf.zeros([batch]), tf.ones([batch])

    def uniform(i: int, low: float, high: float) -> tf.Tensor:
        return tf.random.stateless_uniform([batch], seeds[i], low, high)

    def chance(i: int, p: float) -> tf.Tensor:
        return tf.random.stateless_uniform([batch], seeds[i]) < p

    # The transform maps output pixel (x, y) to input (a x + b y + c, d x + e y + f).
    a, b, c, d, e, f = ones, zeros, zeros, zeros, ones, zeros
    if aug.rotate_degrees:
        angle = uniform(0, -aug.rotate_degrees, aug.rotate_degrees) * (math.pi / 180)
        angle = tf.where(chance(1, aug.p), angle, 0.0)
        cos, sin = tf.cos(angle), tf.sin(angle)
        cx, cy = (width - 1) / 2, (height - 1) / 2
        a, b, c = cos, -sin, cx - cos * cx + sin * cy
        d, e, f = sin, cos, cy - sin * cx - cos * cy
    shift_x, shift_y = zeros, zeros
    if aug.shift_fraction:
        on = chance(2, aug.p)
        shift_x = tf.where(on, uniform(3, -aug.shift_fraction, aug.shift_fraction) * width, 0.0)
        shift_y = tf.where(on, uniform(4, -aug.shift_fraction, aug.shift_fraction) * height, 0.0)
    if aug.crop_padding:
        pad = aug.crop_padding
        offsets = tf.random.stateless_uniform([2, batch], seeds[5], -pad, pad + 1, dtype=tf.int32)
        shift_x += tf.cast(offsets[0], tf.float32)
        shift_y += tf.cast(offsets[1], tf.float32)
    c, f = c + shift_x, f + shift_y
    if aug.flip:
        # Mirror the output x axis, x -> (W - 1) - x, by folding it into the map's first column.
        flip = chance(6, 0.5) if flips is None else flips
        c = tf.where(flip, c + a * (width - 1), c)
        f = tf.where(flip, f + d * (width - 1), f)
        a, d = tf.where(flip, -a, a), tf.where(flip, -d, d)
    transforms = tf.stack([a, b, c, d, e, f, zeros, zeros], axis=1)
    smooth = aug.rotate_degrees or aug.shift_fraction
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR" if smooth else "NEAREST",
        fill_mode="REFLECT" if aug.reflect else "CONSTANT",
    )


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    mean: tuple[float, ...] | None,
    std: tuple[float, ...] | None,
    augment: Augment | None = None,
    shuffle: bool = False,
    seed: int = 0,
    epochs: tuple[int, int] | None = None,
    rows: np.ndarray | None = None,
) -> tf.data.Dataset:
    """A batched dataset of `(float32 images, int32 labels)` from uint8 arrays: those at
    `rows` (default all), in memory, or read batch by batch from disk for a `numpy.memmap`.

    Shuffling and augmentation are drawn from `(seed, epoch)` alone. With `epochs=(first,
    last)` the dataset is the stream of epochs `first .. last - 1` back to back, so a run that
    resumes at epoch k sees exactly the batches an uninterrupted run saw from epoch k on.
    Without it, each pass over the dataset draws a fresh, seeded epoch.
    """
    on_disk = isinstance(images, np.memmap)
    if rows is not None:
        labels = labels[rows]
        if not on_disk:
            images = images[rows]
    n = len(labels)
    y = tf.constant(labels)
    if on_disk:
        at = np.arange(len(images)) if rows is None else np.asarray(rows)
        shape = images.shape[1:]

        def gather(idx: tf.Tensor) -> tf.Tensor:
            # Sorted reads touch the file in order; the batch keeps its shuffled order.
            read = tf.numpy_function(
                lambda i: _read_rows(images, at[i]), [idx], tf.uint8, stateful=False
            )
            return tf.ensure_shape(read, [None, *shape])
    else:
        x = tf.constant(images)

        def gather(idx: tf.Tensor) -> tf.Tensor:
            return tf.gather(x, idx)

    if mean is not None:
        scale = tf.constant([255.0 * s for s in std], tf.float32)
        offset = tf.constant([255.0 * m for m in mean], tf.float32)

    def to_float(batch: tf.Tensor) -> tf.Tensor:
        batch = tf.cast(batch, tf.float32)
        return (batch - offset) / scale if mean is not None else batch / 255.0

    augmenting = augment is not None and augment.active
    if augmenting and augment.flip and augment.flip_alternate:
        # Each image's orientation in epoch 0, drawn once; odd epochs show the other one.
        first_flip = tf.random.stateless_uniform([n], tf.constant([seed, -1], tf.int64)) < 0.5

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        key = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
        order = tf.range(n, dtype=tf.int64)
        if shuffle:
            order = tf.argsort(tf.random.stateless_uniform([n], key), stable=True)
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size).enumerate()

        def load(step: tf.Tensor, idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            images = gather(idx)
            if augmenting:
                batch_key = tf.random.experimental.stateless_fold_in(key, step)
                flips = None
                if augment.flip and augment.flip_alternate:
                    flips = tf.not_equal(tf.gather(first_flip, idx), epoch % 2 == 1)
                images = augment_batch(images, augment, batch_key, flips)
            return to_float(images), tf.gather(y, idx)

        return batches.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    if epochs is not None:
        stream = tf.data.Dataset.range(*epochs)
    elif shuffle or augmenting:
        # A new random epoch key on every pass (seeded, so the sequence of passes repeats).
        stream = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    else:
        stream = tf.data.Dataset.range(1)
    passes = epochs[1] - epochs[0] if epochs is not None else 1
    # flat_map hides the length; Keras needs it to run validation without a warning.
    length = tf.data.experimental.assert_cardinality(passes * math.ceil(n / batch_size))
    return stream.flat_map(one_epoch).apply(length).prefetch(tf.data.AUTOTUNE)


def _read_rows(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`images[rows]`, read from a memory map in ascending row order."""
    order = np.argsort(rows, kind="stable")
    out = np.empty((len(rows), *images.shape[1:]), images.dtype)
    out[order] = images[rows[order]]
    return out
