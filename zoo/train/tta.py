"""Test-time augmentation: logits averaged over mirrored and shifted copies of each image."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def _views(images: tf.Tensor, level: int) -> list[tuple[float, tf.Tensor]]:
    """(weight, view) pairs: level 1 the image and its mirror, a half each; level 2 also the
    two copies shifted one pixel up-left and down-right (reflect-padded), and their mirrors,
    the unshifted pair then weighing a half and the four shifted views an eighth each, as
    airbench94's level 2."""
    pairs = [(1.0, images)]
    if level >= 2:
        padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
        h, w = images.shape[1], images.shape[2]
        shifted = [padded[:, :h, :w], padded[:, 2 : h + 2, 2 : w + 2]]
        pairs = [(0.5, images)] + [(0.25, view) for view in shifted]
    if level >= 1:
        pairs = [(p / 2, v) for weight, view in pairs for p, v in
                 ((weight, view), (weight, tf.reverse(view, axis=[2])))]  # fmt: skip
    return pairs


def accuracy(model: keras.Model, dataset: tf.data.Dataset, level: int) -> float:
    """Top-1 accuracy of `model` on `dataset` with test-time augmentation at `level` (0: none,
    1: mirror, 2: mirror and one-pixel shifts)."""
    right = total = 0
    for images, labels in dataset:
        logits = sum(
            weight * tf.cast(model(view, training=False), tf.float32)
            for weight, view in _views(images, level)
        )
        labels = np.asarray(labels)
        labels = labels.argmax(-1) if labels.ndim > 1 else labels
        right += int((np.asarray(logits).argmax(-1) == labels).sum())
        total += len(labels)
    return right / max(total, 1)
