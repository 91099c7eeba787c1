"""The six studies as data: their runs, the figures they reported, and their tables' layout.

Each run is a model's recipe with the study's toggles and settings on top; `reported` is the
study's own test accuracy for it (None where it gave none). Runs marked `extra` are the zoo's
own, beyond the study, and are labelled so in every table. The digest of the studies is
shared/design/STUDIES.md; the originals are the course reports it cites. S5 is the zoo's own:
airbench94's public ablation ladder (Jordan 2024), rebuilt in Keras.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from zoo.recipes import RunConfig, recipe


@dataclasses.dataclass(frozen=True)
class StudyRun:
    """One configuration a study trained.

    Attributes:
        name: The run's name in the study's tables.
        model: Registry name.
        toggles: Builder toggles on top of the recipe's.
        settings: Run settings (`RunConfig` fields) on top of the recipe's.
        reported: The study's test accuracy for this run (0 to 1), or None.
        extra: The zoo's own run beyond the study (for example with a sounder schedule).
        note: What the run is, in a few words.
    """

    name: str
    model: str
    toggles: dict[str, Any] = dataclasses.field(default_factory=dict)
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    reported: float | None = None
    extra: bool = False
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Table:
    """A table as the study laid it out: each cell names the run it shows.

    Attributes:
        name: File name of the table.
        title: Its caption.
        rows: Row labels, top to bottom.
        columns: Column labels, left to right.
        cells: `(row, column) -> run name`; a missing cell stays empty (as in the study).
    """

    name: str
    title: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: dict[tuple[str, str], str]


@dataclasses.dataclass(frozen=True)
class Claim:
    """One comparison a conclusion rests on: cell `a` against cell `b`, or against a fixed
    test accuracy (near chance, an assignment's goal).

    Attributes:
        a: A run's name.
        relation: `>` (a beats b), `<` (a trails b) or `≈` (a within `margin` of b).
        b: A run's name, or an accuracy (0 to 1).
        margin: For `≈`: how far apart a and b may be, as a fraction (0.01: one point).
    """

    a: str
    relation: Literal[">", "<", "≈"]
    b: str | float
    margin: float = 0.0

    def __post_init__(self) -> None:
        if self.relation not in (">", "<", "≈"):
            raise ValueError(f"relation must be >, < or ≈, got {self.relation!r}.")
        if (self.margin > 0) != (self.relation == "≈"):
            raise ValueError(f"{self}: a margin goes with ≈, and only with it.")
        if not isinstance(self.b, str) and not 0 < self.b < 1:
            raise ValueError(f"{self}: a level is an accuracy in (0, 1), got {self.b!r}.")

    def __str__(self) -> str:
        b = self.b if isinstance(self.b, str) else f"{self.b * 100:g} %"
        if self.relation != "≈":
            return f"{self.a} {self.relation} {b}"
        points = self.margin * 100
        return f"{self.a} ≈ {b} (within {points:g} point{'' if points == 1 else 's'})"


@dataclasses.dataclass(frozen=True)
class Conclusion:
    """A conclusion the study drew, and the comparisons of its cells it rests on: reproduced
    when every comparison holds, refuted when one is reversed (study_runner.verdicts).

    Attributes:
        text: The conclusion, in a few words.
        claims: The comparisons.
    """

    text: str
    claims: tuple[Claim, ...]


@dataclasses.dataclass(frozen=True)
class LossBand:
    """A model against its ablation, drawn as the study drew it (the training loss's range over
    several learning rates, `reports.landscape`) and beside it Santurkar et al.'s probes of the
    same pair (`reports.smoothness`), which measure what the band only suggests.

    Attributes:
        model: Registry name.
        compare: The ablation's toggles.
        lrs: The study's learning rates for the band.
    """

    model: str
    compare: dict[str, Any]
    lrs: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class StudySearch:
    """A search a study ran, as a `tuning` space, with its score at each point and its choice.

    Attributes:
        space: The `tuning` space.
        keys: The hyperparameters, in the order of `reported`'s values.
        reported: Values -> the study's accuracy there (S2 scored its grid on the test set
            after training on its search subset; the zoo scores on the validation split).
        chose: The values the study went on with.
    """

    space: str
    keys: tuple[str, ...]
    reported: dict[tuple[Any, ...], float]
    chose: tuple[Any, ...]


# How each budget scales the searches (`tuning.run_search` arguments); {}: the space's own.
SEARCH_BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": dict(epochs=1, subset=5, max_trials=2),
    "cpu": {},
    "full": {},
}

# How each budget scales the landscape figures: the band's runs (epochs and training images,
# every learning rate and both variants alike) and the probes' training steps. The study's own
# width scaling applies on top. `full` is what the studies drew.
LANDSCAPE_BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": dict(epochs=1, subset=5, test_subset=2, batch_size=16, steps=4, every=2),
    "cpu": dict(epochs=2, subset=0.04, test_subset=10, steps=60, every=10),
    "full": dict(epochs=5, steps=200, every=10),
}


@dataclasses.dataclass(frozen=True)
class Study:
    """A study: its runs, tables, figures, searches and how each budget scales it.

    Attributes:
        name: `S0` ... `S5`.
        title: What it studied.
        runs: Every configuration it trained.
        tables: Its tables, as it laid them out.
        conclusions: What it concluded, each as comparisons of its runs.
        landscape: The model and ablation whose loss band it drew, if any.
        searches: The `tuning` spaces it searched.
        budgets: Settings (and toggles under `"toggles"`) applied to every run at a budget;
            `full` is the study's own settings, and `smoke` adds to `SMOKE`.
        scaling: For each budget other than `full`, how it scales the study, in words.
        score: The metric its cells and verdicts compare: `test` accuracy, or `test_tta`
            (with test-time augmentation, the plain accuracy shown beside it).
        timed: Its cells also show each run's wall time (a study of speed).
    """

    name: str
    title: str
    runs: tuple[StudyRun, ...]
    tables: tuple[Table, ...]
    conclusions: tuple[Conclusion, ...] = ()
    landscape: LossBand | None = None
    searches: tuple[StudySearch, ...] = ()
    budgets: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    scaling: dict[str, str] = dataclasses.field(default_factory=dict)
    score: Literal["test", "test_tta"] = "test"
    timed: bool = False

    def __post_init__(self) -> None:
        # Whether every run tests with TTA needs the recipes, which load TensorFlow: misuse of
        # `zoo.study` is answered before that, so tests/test_study.py checks it instead.
        if self.score not in ("test", "test_tta"):
            raise ValueError(f"{self.name}: score must be test or test_tta, got {self.score!r}.")

    def run(self, name: str) -> StudyRun:
        """The run called `name`.

        Raises:
            KeyError: No such run (naming the study's runs).
        """
        for run in self.runs:
            if run.name == name:
                return run
        raise KeyError(f"{self.name} has no run {name!r}; its runs: {_names(self.runs)}.")

    def compared(self) -> list[str]:
        """The runs its conclusions compare, in the study's order: those that need seeds."""
        named = {c.a for x in self.conclusions for c in x.claims}
        named |= {c.b for x in self.conclusions for c in x.claims if isinstance(c.b, str)}
        return [run.name for run in self.runs if run.name in named]


def _names(runs: tuple[StudyRun, ...]) -> str:
    return ", ".join(run.name for run in runs)


def _one_column(name: str, title: str, runs: tuple[StudyRun, ...]) -> Table:
    """A table with a row per run, in the runs' order."""
    return Table(name, title, tuple(r.name for r in runs), ("test",),
                 {(r.name, "test"): r.name for r in runs})  # fmt: skip


SMOKE: dict[str, Any] = dict(epochs=1, subset=5, test_subset=5, batch_size=16)

# --- S0: CS231n's convnets on CIFAR-10 --------------------------------------------------------

# S0's runs differ from its final recipe: the baseline is CS231n's DeeperConvNet defaults,
# Adam 1e-3 for 10 epochs at a constant rate without early stopping.
_S0_PLAIN = dict(lr=1e-3, schedule="constant", early_stopping=0, epochs=10)
_S0_BASE = dict(hidden=100, init_std=1e-3, weight_decay=1e-3, bn=False, head_bn=False, dropout=0.0)
# CS231n's use_batchnorm normalized the convs (`bn`) and the hidden affine layer (`head_bn`).
_S0_BN = dict(bn=True, head_bn=True)
_S0_RUNS = (
    StudyRun("three-layer", "three_layer_convnet", note="CS231n's three-layer net"),
    StudyRun("baseline", "deeper_convnet", _S0_BASE, _S0_PLAIN, 0.632),
    StudyRun("+BN", "deeper_convnet", {**_S0_BASE, **_S0_BN}, _S0_PLAIN),
    StudyRun("+dropout", "deeper_convnet", {**_S0_BASE, "dropout": 0.5}, _S0_PLAIN),
    StudyRun(
        "+BN+dropout",
        "deeper_convnet",
        {**_S0_BASE, "hidden": 128, **_S0_BN, "dropout": 0.5},
        _S0_PLAIN,
        0.138,
        note="keep ratio 0.5: collapsed",
    ),  # fmt: skip
    StudyRun(
        "+BN+dropout wide",
        "deeper_convnet",
        dict(
            filters=(64, 128), hidden=512, init_std=1e-2, weight_decay=5e-4, **_S0_BN, dropout=0.2
        ),
        {**_S0_PLAIN, "epochs": 15},
        0.128,
        note="keep ratio 0.8: collapsed",
    ),  # fmt: skip
    StudyRun(
        "BN, no lr decay",
        "deeper_convnet",
        dict(hidden=128, init_std=1e-2, weight_decay=1e-4, **_S0_BN, dropout=0.0),
        {**_S0_PLAIN, "epochs": 20},
        0.107,
        note="20 epochs at lr 1e-3: diverged",
    ),  # fmt: skip
    StudyRun(
        "final",
        "deeper_convnet",
        reported=0.692,
        note="hidden 256, reg 5e-4, lr 5e-4 halved every 5 epochs, early stopping 5",
    ),
    StudyRun(
        "+BN+dropout, lr decay",
        "deeper_convnet",
        {"dropout": 0.2},
        extra=True,
        note="the final recipe with dropout 0.2: BN and dropout together can train",
    ),
)
_S0_CONCLUSIONS = (
    Conclusion("BN and dropout together collapse training to near chance (13.8 %, 12.8 %)",
               (Claim("+BN+dropout", "<", 0.2), Claim("+BN+dropout wide", "<", 0.2))),
    Conclusion("BN without lr decay diverges to near chance in 20 epochs (10.7 %)",
               (Claim("BN, no lr decay", "<", 0.2),)),
    Conclusion("The tuned final model beats the baseline (69.2 % against 63.2 %)",
               (Claim("final", ">", "baseline"),)),
    Conclusion("The final model passes the assignment's 60 % (a goal set on validation "
               "accuracy; judged here on test)", (Claim("final", ">", 0.6),)),
)  # fmt: skip
S0 = Study(
    "S0", "CS231n's convnets on CIFAR-10: batch norm, dropout, and a tuned final model",
    _S0_RUNS, (_one_column("s0", "S0: test accuracy of each model", _S0_RUNS),),
    conclusions=_S0_CONCLUSIONS,
    budgets={"cpu": dict(subset=0.35)},
    scaling={"cpu": "35 % of the training images (15,750), every run's own epochs"},
)  # fmt: skip

# --- S1: BasicCNN / ImprovedCNN / ResidualCNN, VGG-A +- BN on CIFAR-10 -----------------------

_S1_RUNS = (
    StudyRun("BasicCNN", "basic_cnn", reported=0.8291),
    StudyRun("ImprovedCNN", "improved_cnn", reported=0.9261),
    StudyRun("ResidualCNN", "resnet_cnn", reported=0.9157),
    StudyRun("VGG-A", "vgg_a", reported=0.84),
    StudyRun("VGG-A-BN", "vgg_a", {"bn": True}, reported=0.89),
)
# The zoo's fast recipe: S5's training tricks that fit any net, on each net's own optimizer,
# with the budget's data, epochs and schedule unchanged, so a row costs what S1's row costs.
# Muon is left out: its rates are set for airbench's net, whose every conv feeds a batch norm
# (BasicCNN has none, and Muon's kernel rescaling would change what it computes).
_S1_FAST = dict(
    label_smoothing=0.2, tta=2, lookahead=True,
    augment={"crop_padding": 2, "reflect": True, "flip": True, "flip_alternate": True},
)  # fmt: skip
_S1_FAST_NETS = ("BasicCNN", "ResidualCNN", "VGG-A-BN")
_S1_FAST_RUNS = tuple(
    StudyRun(f"{run.name}, fast recipe", run.model, run.toggles, _S1_FAST, extra=True,
             note="S5's tricks: label smoothing 0.2, reflect-padded 2-pixel crops, alternating "
                  "flip, lookahead, TTA level 2 (beside the plain test)")
    for run in _S1_RUNS if run.name in _S1_FAST_NETS
)  # fmt: skip
_S1_CONCLUSIONS = (
    Conclusion(
        "ImprovedCNN is the best of the three (92.61 %)",
        (Claim("ImprovedCNN", ">", "ResidualCNN"), Claim("ImprovedCNN", ">", "BasicCNN")),
    ),
    Conclusion(
        "ResidualCNN comes within about a point of ImprovedCNN (91.57 % against 92.61 %)",
        (Claim("ResidualCNN", "≈", "ImprovedCNN", 0.015),),
    ),
    Conclusion(
        "The residual net beats BasicCNN (91.57 % against 82.91 %)",
        (Claim("ResidualCNN", ">", "BasicCNN"),),
    ),
    Conclusion("Batch norm helps VGG-A (89 % against 84 %)", (Claim("VGG-A-BN", ">", "VGG-A"),)),
)
S1 = Study(
    "S1", "Three CNNs on CIFAR-10, and VGG-A with and without batch norm",
    _S1_RUNS + _S1_FAST_RUNS,
    (
        _one_column("s1_models", "S1: the three models", _S1_RUNS[:3]),
        _one_column("s1_vgg", "S1: VGG-A against VGG-A-BN", _S1_RUNS[3:]),
        Table(
            "s1_fast", "S1's nets: their recipe against the zoo's fast recipe, in the same time",
            _S1_FAST_NETS, ("S1's recipe", "fast recipe"),
            {**{(net, "S1's recipe"): net for net in _S1_FAST_NETS},
             **{(net, "fast recipe"): f"{net}, fast recipe" for net in _S1_FAST_NETS}},
        ),  # fmt: skip
    ),
    conclusions=_S1_CONCLUSIONS,
    landscape=LossBand("vgg_a", {"bn": True}, (1e-3, 2e-3, 1e-4, 5e-4)),
    # Half of every width buys twice the epochs: at full widths an hour with three seeds left
    # four epochs, after which ImprovedCNN (47 %) and ResidualCNN (46 %) trailed BasicCNN (55 %),
    # a ranking of undertrained nets. A cosine decay over the budget's epochs, since S1's
    # constant rate and early stopping never settle in eight.
    budgets={"cpu": dict(subset=0.35, epochs=8, early_stopping=0, schedule="cosine",
                         toggles={"width": 0.5}),
             "smoke": dict(toggles={"width": 0.25})},
    scaling={"cpu": "half of every width, 35 % of the training images (15,750), 8 epochs, the "
                    "rate decayed by a cosine over them"},
)  # fmt: skip

# --- S2: MLP and LeNet on MNIST ----------------------------------------------------------------

_S2_RUNS = (
    StudyRun("MLP", "mlp_mnist", reported=0.9806, note="S2's recipe (our L2 1e-4)"),
    StudyRun("MLP, no L2", "mlp_mnist", {"weight_decay": 0.0}, reported=0.9803),
    StudyRun("MLP, augmented", "mlp_mnist", settings={"augment": True}, reported=0.9826),
    StudyRun("MLP, sigmoid", "mlp_mnist", {"activation": "sigmoid"}),
    StudyRun("MLP, relu", "mlp_mnist", {"activation": "relu"}),
    StudyRun("MLP, leaky_relu", "mlp_mnist", {"activation": "leaky_relu"}),
    StudyRun("LeNet", "lenet", reported=0.9836),
)
# S2's grid, scored on the test set after 20 epochs on a 10 % subset, then its gamma sweep at
# the point it chose (lr 0.1, hidden 1000, L2 1e-3).
_S2_GRID = (
    0.9203, 0.9581, 0.9611, 0.9465, 0.9595, 0.9578, 0.9515, 0.9611, 0.9611,
    0.9441, 0.9436, 0.9436, 0.9449, 0.9441, 0.9439, 0.9447, 0.9459, 0.9420,
    0.9165, 0.9187, 0.9192, 0.9235, 0.9200, 0.9251, 0.9269, 0.9261, 0.9263,
)  # fmt: skip
_S2_POINTS = [(lr, h, wd) for lr in (1e-1, 1e-2, 1e-3) for h in (500, 1000, 2000)
              for wd in (1e-2, 1e-3, 1e-4)]  # fmt: skip
_S2_SEARCHES = (
    StudySearch("mlp_mnist", ("lr", "hidden", "weight_decay"),
                dict(zip(_S2_POINTS, _S2_GRID, strict=True)), (1e-1, 1000, 1e-3)),
    StudySearch("mlp_mnist_gamma", ("gamma",),
                {(1.0,): 0.9688, (0.5,): 0.9674, (0.1,): 0.9668, (0.05,): 0.9649}, (0.1,)),
)  # fmt: skip
_S2_CONCLUSIONS = (
    Conclusion("LeNet beats the MLP (98.36 % against 98.06 %)", (Claim("LeNet", ">", "MLP"),)),
    Conclusion("L2 makes no difference to the MLP (S2: 98.06 % with L2 1e-3 against 98.03 % "
               "without; here the zoo's MLP recipe, L2 1e-4)",
               (Claim("MLP", "≈", "MLP, no L2", 0.003),)),
    Conclusion("Augmentation helps the MLP (98.26 % against 98.06 %)",
               (Claim("MLP, augmented", ">", "MLP"),)),
)  # fmt: skip
S2 = Study(
    "S2", "An MLP and LeNet on MNIST, with S2's grid search and gamma sweep",
    _S2_RUNS, (_one_column("s2", "S2: test accuracy of each model", _S2_RUNS),),
    conclusions=_S2_CONCLUSIONS,
    searches=_S2_SEARCHES,
    budgets={"cpu": {}},
    scaling={"cpu": "S2's own settings: the whole study fits the budget"},
)  # fmt: skip

# --- S3: depth ablation on Tiny ImageNet -------------------------------------------------------

# S3's norm normalized every layer: the convs (`bn`) and the dense head (`head_bn`).
_ALL = dict(bn=True, head_bn=True, dropout=0.5, residual=True)
_S3_TOGGLES = {
    "baseline": ({}, {}),
    "+decay": ({}, {"schedule": "plateau"}),
    "+norm": ({"bn": True, "head_bn": True}, {}),
    "+dropout": ({"dropout": 0.5}, {}),
    # Identity shortcuts without batch norm add each block's output to its input: under He's
    # init, which the plain nets need, the long net's logits start with a std in the hundreds
    # and it never leaves chance; under Glorot's they start near 1 (tests/test_models.py).
    # S3's PyTorch default init is smaller still. The column changes the init with the blocks.
    "+residual": ({"residual": True, "init": "glorot_uniform"}, {}),
    "+all": (_ALL, {"schedule": "plateau"}),
    "+cosine": ({}, {"schedule": "cosine"}),
}
_S3_REPORTED = {
    ("short", "baseline"): 0.2271, ("long", "baseline"): 0.1407,
    ("short", "+decay"): 0.2666, ("long", "+decay"): 0.151,
    ("short", "+norm"): 0.3406, ("long", "+norm"): 0.1459,
    ("short", "+dropout"): 0.2414, ("long", "+dropout"): 0.2901,
    ("short", "+residual"): 0.0049, ("long", "+residual"): 0.1393,
    ("short", "+all"): 0.4302, ("long", "+all"): 0.2762, ("mid", "+all"): 0.3617,
}  # fmt: skip
# The zoo's own column: a decay that acts within any budget. S3's plateau decay fires only when
# validation accuracy stalls; cosine decay takes the rate from lr to 0 over the run's epochs.
_S3_OWN = {("short", "+cosine"): None, ("long", "+cosine"): None}
_S3_NOTES = {"+cosine": "cosine lr decay", "+residual": "Glorot's init (He's diverges here)"}
_S3_RUNS = tuple(
    StudyRun(f"{depth} {column}", "tiny_baseline", {"depth": depth, **_S3_TOGGLES[column][0]},
             _S3_TOGGLES[column][1], reported, extra=(depth, column) in _S3_OWN,
             note=_S3_NOTES.get(column, ""))
    for (depth, column), reported in {**_S3_REPORTED, **_S3_OWN}.items()
)  # fmt: skip


def _both_depths(text: str, column: str) -> Conclusion:
    """`column` beats the baseline, in the short net and in the long one."""
    return Conclusion(text, tuple(Claim(f"{d} {column}", ">", f"{d} baseline")
                                  for d in ("short", "long")))  # fmt: skip


_S3_CONCLUSIONS = (
    Conclusion("Deeper is worse (long 14.07 % against short 22.71 %)",
               (Claim("long baseline", "<", "short baseline"),)),
    Conclusion("Deeper is worse even with every toggle on (short 43.02 %, mid 36.17 %, long "
               "27.62 %)",
               (Claim("mid +all", "<", "short +all"), Claim("long +all", "<", "mid +all"))),
    _both_depths("Normalization helps at both depths", "+norm"),
    _both_depths("Plateau lr decay helps at both depths", "+decay"),
    _both_depths("Dropout helps at both depths", "+dropout"),
    Conclusion("Residual blocks alone make the short net diverge (0.49 %)",
               (Claim("short +residual", "<", 0.02),)),
    Conclusion("Residual blocks alone leave the long net where it was (13.93 % against "
               "14.07 %)", (Claim("long +residual", "≈", "long baseline", 0.01),)),
    _both_depths("Every toggle together beats the baseline at both depths", "+all"),
)  # fmt: skip
S3 = Study(
    "S3", "Depth against batch norm, dropout, lr decay and residual blocks on Tiny ImageNet",
    _S3_RUNS,
    (Table("s3", "S3: test accuracy, depth down, toggles across", ("short", "mid", "long"),
           tuple(_S3_TOGGLES), {key: f"{key[0]} {key[1]}" for key in (*_S3_REPORTED, *_S3_OWN)}),),
    conclusions=_S3_CONCLUSIONS,
    # The plain long nets need 3-4 epochs before they leave chance (He's init, Adam 3e-4), so
    # the budget buys epochs with width: a quarter of every width costs half of a half's.
    # 32x32 images in batches of 32 cost less but left a plain long net at chance on one
    # seed of three (docs/studies/S3.md), so the images stay 64x64.
    # The plateau decay needs a plateau: in 6 epochs validation accuracy rises every epoch, so
    # a rise under half a point (about the 2,000-image split's own noise) counts as none.
    budgets={"cpu": dict(subset=100, epochs=6, early_stopping=0, lr_patience=0,
                         lr_min_delta=0.005, toggles={"width": 0.25}),
             "smoke": dict(toggles={"width": 0.25}, test_subset=2)},
    scaling={"cpu": "a quarter of every width, 100 training images per class (20,000), 6 "
                    "epochs, the plateau decay acting after any epoch whose validation accuracy "
                    "rose by less than half a point (patience 0: 6 epochs leave no room for "
                    "more)"},
)  # fmt: skip

# --- S4: Inception and VGG on CIFAR-10 ---------------------------------------------------------

_S4_RUNS = (
    StudyRun("Inception v1", "inception_v1", reported=0.85),
    StudyRun("residual Inception", "inception_v1", {"residual": True}, reported=0.87,
             note="S4's first change: residual blocks, nothing else"),
    StudyRun("residual Inception, Adam", "inception_v1", {"residual": True, "weight_decay": 1e-4},
             reported=0.87, note="its second: L2 1e-4 and 300 epochs, with each optimizer"),
    StudyRun("residual Inception, AdamW", "inception_v1", {"residual": True},
             {"optimizer": "adamw", "decoupled_decay": 1e-4}),
    StudyRun("residual Inception, RMSprop", "inception_v1", {"residual": True,
             "weight_decay": 1e-4}, {"optimizer": "rmsprop", "rho": 0.99}),
    StudyRun("VGG", "vgg_a", {"weight_decay": 1e-4}, reported=0.85),
    StudyRun("VGG-BN", "vgg_a", {"bn": True, "weight_decay": 1e-4}, reported=0.88),
)  # fmt: skip
_S4_CONCLUSIONS = (
    Conclusion(
        "Residual connections help Inception (87 % against 85 %)",
        (Claim("residual Inception", ">", "Inception v1"),),
    ),
    Conclusion(
        "The optimizers differ little (all about 87 %)",
        (
            Claim("residual Inception, AdamW", "≈", "residual Inception, Adam", 0.01),
            Claim("residual Inception, RMSprop", "≈", "residual Inception, Adam", 0.01),
        ),
    ),
    Conclusion("Batch norm helps VGG (88 % against 85 %)", (Claim("VGG-BN", ">", "VGG"),)),
)
S4 = Study(
    "S4", "GoogLeNet and its residual form, VGG against VGG-BN, on CIFAR-10",
    _S4_RUNS,
    (
        _one_column("s4_inception", "S4: Inception and its residual form", _S4_RUNS[:5]),
        _one_column("s4_vgg", "S4: VGG against VGG-BN", _S4_RUNS[5:]),
    ),
    conclusions=_S4_CONCLUSIONS,
    landscape=LossBand("vgg_a", {"bn": True}, (1e-3, 1e-4, 5e-4, 5e-5)),
    # What limits S4 at an hour is data, not the rate (docs/studies/S4.md): a quarter of every
    # width costs about half of a half's (the nets move memory more than they multiply). At
    # 15 % of the images it took 68 min; 10 % leaves a fifth of the hour for a slower day (the
    # same machine has run 1.4-1.6 times slower for hours).
    budgets={"cpu": dict(subset=0.10, epochs=6, early_stopping=0, toggles={"width": 0.25}),
             "smoke": dict(toggles={"width": 0.25})},
    scaling={"cpu": "a quarter of every width, 10 % of the training images (4,500), 6 epochs"},
)  # fmt: skip

# --- S5: airbench94 on CIFAR-10, one trick per rung -------------------------------------------

# The public ladder (KellerJordan/cifar10-zoo, airbench/ablations): each rung adds one trick
# and is trained for the epochs it needs to reach 94 % on an A100, with Nesterov SGD; the
# zoo's rungs all train the Muon form for its 8 epochs, so a rung's worth shows as accuracy.
_S5_FLIP = {"crop_padding": 2, "reflect": True, "flip": True, "flip_alternate": False}
_S5_RUNS = (
    StudyRun("network", "airbench", {"whiten": False, "dirac": False}, {"augment": _S5_FLIP},
             note="public rung 0: 34.0 epochs to 94 % (standard init, random flip)"),
    StudyRun("+whitening", "airbench", {"dirac": False}, {"augment": _S5_FLIP},
             note="public rung 1: 21.0 epochs"),
    StudyRun("+Dirac init", "airbench", {}, {"augment": _S5_FLIP},
             note="public rung 2: 18.0 epochs"),
    StudyRun("+alternating flip", "airbench", reported=0.9401,
             note="the full recipe; public rung 7: 9.9 epochs with SGD, 8 with Muon (94.01 %)"),
    StudyRun("+lookahead", "airbench", {}, {"lookahead": True}, extra=True,
             note="public rung 5 (12.0 epochs) on SGD; not in the Muon form"),
    StudyRun("full recipe, 16 epochs", "airbench", {}, {"epochs": 16}, extra=True,
             note="twice the recipe; about 16 min a run on a 2-core AMX Xeon"),
)  # fmt: skip
# Row labels: each rung with the public ladder's epochs to 94 % on an A100.
_S5_RUNGS = {
    "network (public: 34.0 epochs)": "network",
    "+whitening (public: 21.0)": "+whitening",
    "+Dirac init (public: 18.0)": "+Dirac init",
    "+alternating flip (public: 9.9; Muon form 8)": "+alternating flip",
    "+lookahead (public, SGD: 12.0 from 13.5)": "+lookahead",
    "full recipe, 16 epochs": "full recipe, 16 epochs",
}
_S5_CONCLUSIONS = (
    Conclusion(
        "The full recipe at 16 epochs, inside a CPU's half hour, passes 93.5 % with TTA on our "
        "JPEG copy of CIFAR-10 (airbench94_muon: 94.01 % in 8 epochs, mean of 200, on the "
        "canonical files)",
        (Claim("full recipe, 16 epochs", ">", 0.935),),
    ),
)
S5 = Study(
    "S5", "airbench94 on CIFAR-10: what each trick buys, on a CPU",
    _S5_RUNS,
    (Table("s5", "S5: test accuracy with TTA (level 2), one trick added per rung",
           tuple(_S5_RUNGS), ("zoo, Muon form",),
           {(row, "zoo, Muon form"): run for row, run in _S5_RUNGS.items()}),),
    conclusions=_S5_CONCLUSIONS,
    budgets={"cpu": {}},
    scaling={"cpu": "the recipe as it is: all 50,000 training images, 8 epochs"},
    score="test_tta",
    timed=True,
)  # fmt: skip

STUDIES: dict[str, Study] = {s.name: s for s in (S0, S1, S2, S3, S4, S5)}

BUDGETS = ("smoke", "cpu", "full")


def get_study(name: str) -> Study:
    """The study called `name` (`S0` ... `S5`, any case).

    Raises:
        ValueError: Unknown study, naming the valid ones.
    """
    study = STUDIES.get(name.upper())
    if study is None:
        raise ValueError(f"Unknown study {name!r}. Studies: {', '.join(STUDIES)}.")
    return study


def config(
    study: Study, run: StudyRun, budget: str, *, seed: int = 0, data_dir: str | None = None,
    precision: str = "auto", test_subset: float | int | None = None,
) -> RunConfig:  # fmt: skip
    """The `RunConfig` of one study run at a budget: its recipe, the run's toggles and
    settings, then the budget's scaling, which is the same for every run of the study, and
    the study's precision; `test_subset` (a fraction, or images per class), when given,
    replaces the budget's test set.

    Raises:
        ValueError: Unknown budget.
    """
    if budget not in BUDGETS:
        raise ValueError(f"Unknown budget {budget!r}. Budgets: {', '.join(BUDGETS)}.")
    scaling = {} if budget == "full" else dict(study.budgets.get(budget, {}))
    if budget == "smoke":
        scaling = {**SMOKE, **scaling}
    toggles = scaling.pop("toggles", {})
    if test_subset is not None:
        scaling["test_subset"] = test_subset
    base = recipe(run.model)
    return dataclasses.replace(
        base,
        **{**run.settings, **scaling},
        model_kwargs={**base.model_kwargs, **run.toggles, **toggles},
        seed=seed,
        data_dir=data_dir,
        budget=budget,
        precision=precision,
    )


def reported(model: str) -> tuple[str, float] | None:
    """The study and test accuracy reported for a model at its recipe (the study's settings
    and the builder's defaults), if a study reported that configuration."""
    from zoo import registry

    defaults = registry.describe(model).toggles

    def settled(cfg: RunConfig) -> RunConfig:  # toggles spelt out, as the builder sees them
        toggles = {**defaults, **cfg.model_kwargs}
        return dataclasses.replace(cfg, budget=None, precision="float32", model_kwargs=toggles)

    target = settled(recipe(model))
    for study in STUDIES.values():
        for run in study.runs:
            if run.model == model and run.reported is not None:
                if settled(config(study, run, "full")) == target:
                    return study.name, run.reported
    return None
