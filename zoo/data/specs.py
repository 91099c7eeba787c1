"""The datasets the zoo reads, as data: shape, classes, split sizes, where to get them.

The one home of these facts (no TensorFlow here): the registry's home datasets, the data
loaders, study time estimates and the PyTorch twins read them from `DATASETS`.
"""

from __future__ import annotations

import dataclasses

__all__ = ["DATASETS", "HOME_DATASETS", "Augment", "DatasetSpec"]


@dataclasses.dataclass(frozen=True)
class Augment:
    """Training-time augmentation; every field off (0 / False) disables that part.

    Attributes:
        crop_padding: Random crop back to the image size after zero-padding this many pixels on
            every side (torchvision's `RandomCrop(size, padding)`).
        flip: Horizontal flip with probability 0.5.
        flip_alternate: With `flip`, each image is flipped in alternate epochs, starting from a
            seeded random choice, instead of at random every epoch (airbench's alternating
            flip: no image is seen in the same orientation two epochs running).
        reflect: Fill what a crop or shift uncovers with the image's reflection, not zeros
            (TensorFlow's reflection repeats the edge pixel; PyTorch's `reflect` does not).
        rotate_degrees: Rotation by an angle uniform in +-this, applied with probability `p`.
        shift_fraction: Translation uniform in +-this fraction of height and width, applied
            with probability `p`.
        p: Probability of the rotation and of the shift (each drawn on its own).
    """

    crop_padding: int = 0
    flip: bool = False
    flip_alternate: bool = False
    reflect: bool = False
    rotate_degrees: float = 0.0
    shift_fraction: float = 0.0
    p: float = 0.5

    def changed(self, fields: dict) -> Augment:
        """This augmentation with `fields` replaced; unknown names raise ValueError."""
        valid = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(fields) - set(valid))
        if unknown:
            raise ValueError(
                f"Unknown augmentation field(s) {', '.join(map(repr, unknown))}. "
                f"Valid fields: {', '.join(valid)}."
            )
        return dataclasses.replace(self, **fields)

    @property
    def active(self) -> bool:
        """True if any part is on."""
        return bool(self.crop_padding or self.flip or self.rotate_degrees or self.shift_fraction)


_FASHION = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What the zoo knows of a dataset before reading it: its one home for shapes and counts."""

    folders: tuple[str, ...]  # usual folder names; archives start with one of them
    formats: tuple[str, ...]  # readers tried, in order
    shape: tuple[int, int, int]
    tfds: str | None
    val_split: float  # the studies' choice
    augment: Augment
    get: str  # how a user gets the files
    classes: int
    train: int  # images in the canonical train split
    test: int
    class_names: tuple[str, ...] = ()


_MNIST_AUG = Augment(rotate_degrees=10.0, shift_fraction=0.1, p=0.5)  # S2
_CIFAR_AUG = Augment(crop_padding=4, flip=True)  # S1

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        ("mnist", "MNIST"),
        ("idx", "image_folder"),
        (28, 28, 1),
        "mnist",
        1 / 6,  # S2's 5:1 train/valid
        _MNIST_AUG,
        "the four IDX files (train-images-idx3-ubyte.gz, ...) from the MNIST page",
        10,
        60_000,
        10_000,
        tuple(str(i) for i in range(10)),
    ),
    "fashion_mnist": DatasetSpec(
        ("fashion_mnist", "fashion-mnist", "FashionMNIST"),
        ("idx", "image_folder"),
        (28, 28, 1),
        "fashion_mnist",
        1 / 6,
        _MNIST_AUG,
        "the four IDX files from github.com/zalandoresearch/fashion-mnist",
        10,
        60_000,
        10_000,
        _FASHION,
    ),
    "cifar10": DatasetSpec(
        ("cifar-10-batches-py", "cifar10", "cifar-10", "cifar-10-python"),
        ("cifar_pickle", "image_folder"),
        (32, 32, 3),
        "cifar10",
        0.1,
        _CIFAR_AUG,
        "cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html",
        10,
        50_000,
        10_000,
    ),
    "cifar100": DatasetSpec(
        ("cifar-100-python", "cifar100", "cifar-100"),
        ("cifar_pickle", "image_folder"),
        (32, 32, 3),
        "cifar100",
        0.1,
        _CIFAR_AUG,
        "cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html",
        100,
        50_000,
        10_000,
    ),
    "tiny_imagenet": DatasetSpec(
        ("tiny-imagenet-200", "tiny_imagenet", "tiny-imagenet"),
        ("tiny_imagenet", "image_folder"),
        (64, 64, 3),
        None,
        0.1,
        Augment(crop_padding=8, flip=True),
        "tiny-imagenet-200.zip from http://cs231n.stanford.edu/tiny-imagenet-200.zip",
        200,
        100_000,
        10_000,
    ),
}

# The datasets models are built for: a builder's default input shape and class count.
HOME_DATASETS = ("mnist", "cifar10", "tiny_imagenet")
