"""Run settings: one frozen dataclass, and a recipe per model that reproduces its study.

cfg = recipe("resnet_cnn")                      # S1's settings
cfg = dataclasses.replace(cfg, epochs=5)        # derived, never copied
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from zoo import machine, registry

Optimizer = Literal["sgd", "momentum", "adam", "adamw", "rmsprop", "muon"]
Schedule = Literal[
    "constant", "step", "multistep", "exponential", "halving", "plateau", "cosine",
    "warmup_linear",
]  # fmt: skip
Precision = Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"]
Strategy = Literal["default", "mirrored", "multiworker"]

# The momentum an optimizer runs with where `RunConfig.momentum` is None.
DEFAULT_MOMENTUM = {"momentum": 0.9, "rmsprop": 0.0, "muon": 0.6}


# Settings with a range, checked before any time is spent: (name, low, high, low excluded).
_RANGES: tuple[tuple[str, float, float | None, bool], ...] = (
    ("epochs", 1, None, False),
    ("batch_size", 1, None, False),
    ("lr", 0, None, True),
    ("other_lr", 0, None, False),
    ("head_lr", 0, None, False),
    ("momentum", 0, 1, False),
    ("rho", 0, 1, False),
    ("decoupled_decay", 0, None, False),
    ("step_size", 1, None, False),
    ("gamma", 0, None, True),
    ("lr_patience", 0, None, False),
    ("lr_min_delta", 0, 1, False),
    ("min_lr", 0, None, False),
    ("warmup", 0, 1, False),
    ("label_smoothing", 0, 1, False),
    ("early_stopping", 0, None, False),
    ("time_limit", 0, None, False),
    ("val_split", 0, 1, False),
    ("image_size", 1, None, False),
)


@dataclass(frozen=True)
class RunConfig:
    """Every setting of a training run; `model_kwargs` go verbatim to the model's builder.

    Attributes:
        model: Registry name.
        dataset: Dataset name; None means the model's home dataset.
        data_dir: Folder with the data (see `zoo.data.load`); None: `$ZOO_DATA_DIR`, then TFDS.
        epochs: Maximum number of epochs.
        batch_size: Global batch size (split across replicas under a distribution strategy).
        optimizer: `sgd`, `momentum` (SGD with `momentum`), `adam`, `adamw`, `rmsprop`, `muon`
            (`zoo.optimizers.Muon`: Muon for conv kernels, Nesterov SGD for the rest).
        lr: Initial learning rate.
        other_lr: `muon`'s initial SGD rate for biases, BN offsets and (without `head_lr`)
            dense kernels; 0: `lr`.
        head_lr: `muon`'s initial SGD rate for dense kernels (airbench's head); 0: `other_lr`.
        momentum: Momentum of `momentum`, `rmsprop` and `muon`'s conv kernels; None: the
            optimizer's default, 0.9 for `momentum`, none for `rmsprop`, 0.6 for `muon`. A
            value equal to that default is stored as None, so one run has one config (and one
            folder name).
        rho: Decay of `rmsprop`'s squared-gradient average (PyTorch's `alpha`).
        decoupled_decay: The optimizer's decoupled weight decay (AdamW's; Keras applies it the
            same way for every optimizer, for plain SGD the same as an L2 penalty). The
            model's own L2 penalty is the builder toggle `weight_decay`.
        schedule: Learning-rate schedule, stepped once per epoch; `warmup_linear` once per
            step (`zoo.train.callbacks.warmup_linear`).
        step_size: Epochs between decays of `step` (and `halving`).
        gamma: Decay factor of `step`, `multistep`, `exponential` and `plateau`.
        milestones: Epochs at which `multistep` decays.
        lr_patience: Epochs without val-accuracy gain before `plateau` decays.
        lr_min_delta: The smallest rise of val accuracy that counts as a gain for `plateau`
            (Keras's `min_delta`, 1e-4 by default): a rise within the validation split's own
            sampling noise is no gain.
        min_lr: Floor of `cosine` and `plateau`, the last step's rate of `warmup_linear`.
        warmup: Fraction of the steps `warmup_linear` warms up over, from a fifth of `lr`.
        tta: Test-time augmentation of the test accuracy reported as `test_tta`, beside the
            plain one: 1 averages the logits of each image and its mirror, 2 also of one-pixel
            shifts (`zoo.train.tta`).
        lookahead: airbench94's Lookahead from 30 % of the run: every 5 steps the weights
            move back towards a slow copy, ever more so towards the end
            (`zoo.train.callbacks.Lookahead`).
        label_smoothing: Label smoothing of the cross-entropy.
        early_stopping: Patience in epochs on val accuracy; 0 turns early stopping off.
        time_limit: Stop after the epoch that passes this many minutes of training; 0: none.
        augment: The dataset's standard training augmentation; False: none; a dict of
            `zoo.data.Augment` fields changes those in the standard one, e.g. airbench's
            `{"crop_padding": 2, "reflect": True, "flip_alternate": True}`.
        normalize: Standardize inputs with the train split's mean and std; False: scale to
            [0, 1]; `"mean"`: subtract the mean and keep the 0-255 scale, as CS231n's data
            (whose 1e-3 initialization is sized for pixels of that scale).
        val_split: Held-out fraction of train; None: the dataset's default.
        subset: Fraction or per-class count of train to use (see `zoo.data.load`).
        test_subset: The same for test.
        image_size: Train and test on images resized to this many pixels a side (see
            `zoo.data.load`): a scaling of the data, as `subset` is; None: the dataset's size.
        seed: Seed of weights, data order and augmentation.
        precision: Keras dtype policy; `auto` (the default) becomes the fastest sound one on
            this machine when the config is made (`zoo.machine.auto_precision`), so the policy
            a run trained with is the one its config.json records.
        jit: Compile train and eval steps with XLA.
        steps_per_execution: Training steps per call into the backend (Keras's
            `steps_per_execution`); 0 picks it from the model's size
            (`zoo.train.steps_per_execution`; always 1 under a distribution strategy), which
            spares small models most of Keras's per-step overhead. Above 1, steps.csv has a
            row per call: its steps' mean loss.
        strategy: `default` (one device), `mirrored` (all local GPUs), `multiworker` (TF_CONFIG).
        tensorboard: Also write TensorBoard logs in the run folder.
        evaluate_test: Evaluate the best weights on test at the end (searches turn it off:
            a trial never looks at test).
        keep_epochs: Also keep the weights of every epoch in `epochs/` (for the training
            trajectory of `python -m reports surface --trajectory`).
        budget: The study budget (`smoke`, `cpu`, `full`) a `zoo.study` run was scaled to;
            None for a run of its own. Recorded so a scaled figure is never taken for a full one.
        model_kwargs: Builder toggles, checked against the builder's signature.
        stream: Read the images from disk, not memory (see `zoo.data.load`); None: when they
            would not fit.

    `data_dir`, `stream` and `tensorboard` say where the data is read from and what is
    logged, not what is trained: they are not part of the run's identity (`zoo.runs`), so
    configs differing only in them are equal and name the same run folder.
    """

    model: str
    dataset: str | None = None
    # Where the data is read from, not what is trained: the same run either way (`zoo.runs`).
    data_dir: str | None = field(default=None, compare=False)
    epochs: int = 30
    batch_size: int = 128
    optimizer: Optimizer = "adam"
    lr: float = 1e-3
    other_lr: float = 0.0
    head_lr: float = 0.0
    momentum: float | None = None
    rho: float = 0.99
    decoupled_decay: float = 0.0
    schedule: Schedule = "constant"
    step_size: int = 5
    gamma: float = 0.1
    milestones: tuple[int, ...] = ()
    lr_patience: int = 3
    lr_min_delta: float = 1e-4
    min_lr: float = 0.0
    warmup: float = 0.0
    tta: Literal[0, 1, 2] = 0
    lookahead: bool = False
    label_smoothing: float = 0.0
    early_stopping: int = 0
    time_limit: float = 0.0
    augment: bool | dict[str, Any] = True
    normalize: bool | Literal["mean"] = True
    val_split: float | None = None
    subset: float | int | None = None
    test_subset: float | int | None = None
    image_size: int | None = None
    seed: int = 0
    precision: Precision = "auto"
    jit: bool = False
    steps_per_execution: int = 0
    strategy: Strategy = "default"
    tensorboard: bool = field(default=False, compare=False)  # logging, not identity
    evaluate_test: bool = True
    keep_epochs: bool = False
    budget: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    # How the data is read, not what is trained: the same batches either way, so the same run.
    stream: bool | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # Study names become ours and JSON lists become tuples, so a config read back from
        # config.json equals the one that was written.
        toggles = registry.resolve_toggles(self.model, self.model_kwargs)
        object.__setattr__(self, "model_kwargs", toggles)
        if isinstance(self.milestones, list):
            object.__setattr__(self, "milestones", tuple(self.milestones))
        if self.momentum is not None and self.momentum == DEFAULT_MOMENTUM.get(self.optimizer):
            object.__setattr__(self, "momentum", None)
        check_settings({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        if self.precision == "auto":
            object.__setattr__(self, "precision", machine.auto_precision())
        if self.steps_per_execution < 0:
            raise ValueError(
                f"steps_per_execution must be >= 0 (0: chosen from the model's size), "
                f"got {self.steps_per_execution}."
            )
        if self.steps_per_execution > 1 and self.strategy != "default":
            # Keras 3.15's multi-step loop fails inside tf.distribute strategies.
            raise ValueError(
                f"steps_per_execution {self.steps_per_execution} does not run under the "
                f"{self.strategy} strategy; use 0 (chosen: 1 there) or 1."
            )

    @property
    def home_dataset(self) -> str:
        """`dataset`, or the model's home dataset when it is None."""
        return self.dataset or registry.describe(self.model).dataset


def check_settings(settings: dict[str, Any]) -> None:
    """Checks run settings' types and ranges (not the model's toggles), without the registry's
    models, so a command refuses a bad value before TensorFlow loads.

    Raises:
        TypeError: An unknown setting, or a value of the wrong type.
        ValueError: A value out of its range or choices.
    """
    hints = typing.get_type_hints(RunConfig)
    unknown = sorted(set(settings) - set(hints))
    if unknown:
        raise TypeError(
            f"Unknown run setting(s) {', '.join(map(repr, unknown))}. Valid settings: "
            f"{', '.join(f.name for f in dataclasses.fields(RunConfig))}."
        )
    for name, value in settings.items():
        if name != "model_kwargs":
            registry.check_type("run", name, value, hints[name])
    if isinstance(settings.get("augment"), dict):
        from zoo.data.specs import Augment

        Augment().changed(settings["augment"])
    for name, low, high, low_open in _RANGES:
        value = settings.get(name)
        if value is None:
            continue
        inside = math.isfinite(value) and (value > low if low_open else value >= low)
        if not (inside and (high is None or value < high)):
            bound = f"{'>' if low_open else '>='} {low:g}" + (
                f" and < {high:g}" if high is not None else ""
            )
            raise ValueError(f"{name} must be a number {bound}, got {value!r}.")


_S1 = dict(optimizer="adamw", lr=1e-3, decoupled_decay=5e-4, early_stopping=6, epochs=60)


@functools.cache
def _recipes() -> dict[str, RunConfig]:
    # Made on first use: a RunConfig checks its toggles against the registry's builders,
    # which load TensorFlow; a command checks its flags before that.
    return {
        # S2: SGD momentum lr 0.1, StepLR(2, 0.1), batch 32, 5 epochs, pixels in [0, 1]: 98.06 %.
        # Its L2 of 1e-3 gave 97.91 % here; 1e-4, also in S2's grid, gives 98.25 %.
        "mlp_mnist": RunConfig(
            "mlp_mnist", optimizer="momentum", lr=0.1, schedule="step", step_size=2, gamma=0.1,
            batch_size=32, epochs=5, augment=False, normalize=False,
            model_kwargs=dict(weight_decay=1e-4),
        ),
        # S2's CNN: momentum lr 0.01, StepLR(5, 0.1), batch 32, 5 epochs: 98.36 %.
        "lenet": RunConfig(
            "lenet", optimizer="momentum", lr=0.01, schedule="step", step_size=5, gamma=0.1,
            batch_size=32, epochs=5, augment=False, normalize=False,
        ),
        # CS231n's solver: Adam 1e-3, batch 100, 49,000 / 1,000 train / val, no augmentation,
        # the mean image subtracted from pixels of 0-255 (here the per-channel mean): its 1e-3
        # initialization is sized for that scale, and on standardized pixels the deeper net's
        # signal vanishes and it stays at chance.
        "three_layer_convnet": RunConfig(
            "three_layer_convnet", lr=1e-3, batch_size=100, epochs=10, augment=False,
            val_split=0.02, normalize="mean",
        ),
        # S0's final model: Adam 5e-4, batch 100, halving every 5 epochs, patience 5, 69.2 %.
        "deeper_convnet": RunConfig(
            "deeper_convnet", lr=5e-4, batch_size=100, epochs=30, schedule="halving", step_size=5,
            early_stopping=5, augment=False, val_split=0.02, normalize="mean",
            model_kwargs=dict(hidden=(256,), init_std=1e-2, weight_decay=5e-4, bn=True,
                              head_bn=True),
        ),
        # S1: AdamW 1e-3, decoupled weight decay 5e-4, crop + flip, patience 6.
        "basic_cnn": RunConfig("basic_cnn", **_S1),
        "improved_cnn": RunConfig("improved_cnn", label_smoothing=0.1, **_S1),
        "resnet_cnn": RunConfig("resnet_cnn", **_S1),
        # S1 / S4: Adam 1e-3, about 100 epochs (VGG-A-BN early-stopped at 45).
        "vgg_a": RunConfig("vgg_a", lr=1e-3, epochs=100, early_stopping=10),
        # S4: Adam 1e-4, 200 epochs.
        "inception_v1": RunConfig("inception_v1", lr=1e-4, epochs=200, early_stopping=20),
        # S5: airbench94's Muon form (Jordan 2024): batch 2000, 8 epochs, label smoothing 0.2,
        # Muon 0.24 (momentum 0.6) on the block convs, Nesterov SGD (0.85) on the rest, all
        # decaying linearly to 0, reflect-padded 2-pixel crops, alternating flip, TTA level 2.
        # Its SGD rates (0.053 for biases, 0.67 for the head) are for a loss summed over the
        # batch: x 2000 for the mean loss here. Its decay, 2e-6 x 2000 per step through
        # momentum 0.85 (4e-3 / 0.15 = 0.027 of each weight per step), is Keras's decoupled
        # decay at 0.027 / 0.24. Both hold at batch 2000 and the full widths only: airbench
        # scales its head by 1 / its input width, and its rates and decay with the batch.
        "airbench": RunConfig(
            "airbench", batch_size=2000, epochs=8, optimizer="muon", lr=0.24, other_lr=106.0,
            head_lr=1340.0, decoupled_decay=0.111, label_smoothing=0.2, schedule="warmup_linear",
            tta=2, val_split=0.0,
            augment={"crop_padding": 2, "reflect": True, "flip": True, "flip_alternate": True},
        ),
        # S3: batch 64; its "decay" toggle is schedule="plateau". S3 named no optimizer, rate or
        # initializer: with Adam 1e-3 and Glorot's init the plain long net (20 ReLU convs) only
        # ever learns the class prior; He's init and Adam 3e-4 let it train.
        "tiny_baseline": RunConfig(
            "tiny_baseline", batch_size=64, lr=3e-4, epochs=100, early_stopping=10,
            model_kwargs=dict(init="he_normal"),
        ),
    }  # fmt: skip


def __getattr__(name: str) -> Any:
    if name == "RECIPES":  # every model's study recipe, by model name
        return _recipes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def recipe(model: str, **overrides: Any) -> RunConfig:
    """The study recipe of a model, with overrides applied (`dataclasses.replace`).

    Models without a recipe of their own get `RunConfig`'s defaults.

    Raises:
        ValueError: Unknown model (listing the valid ones).
        TypeError: Unknown setting or a value of the wrong type.
    """
    registry.describe(model)  # unknown names fail here with the valid list
    base = _recipes().get(model) or RunConfig(model)
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(RunConfig)})
    if unknown:
        raise TypeError(
            f"Unknown run setting(s) {', '.join(map(repr, unknown))}. Valid settings: "
            f"{', '.join(f.name for f in dataclasses.fields(RunConfig))}."
        )
    return replace(base, **overrides)


def list_recipes() -> dict[str, RunConfig]:
    """Every registered model's recipe."""
    return {name: recipe(name) for name in registry.list_models()}
