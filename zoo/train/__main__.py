"""`python -m zoo.train MODEL [flags] [--set key=value ...]` trains a model's study recipe.

Flags override the recipe (`python -m zoo.train --list` prints every recipe); `--set` takes
builder toggles (first: `--set weight_decay=0` is the model's L2 penalty) and any other run
setting (`--set decoupled_decay=5e-4` is the optimizer's decoupled decay, as is
`--decoupled-decay 5e-4`), values parsed as Python literals. Rerunning the same command with
the same `--out` resumes an unfinished run; `--resume RUN_DIR` resumes one by its folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.cli import Parser, parse_count, parse_set, run_main, show_progress

if TYPE_CHECKING:
    from zoo.recipes import RunConfig

# Flags of the common knobs: RunConfig field -> (type, help). RunConfig checks the values.
FLAGS: dict[str, tuple[type, str]] = {
    "dataset": (str, "dataset name (default: the model's home dataset)"),
    "data_dir": (str, "folder with the data (default: $ZOO_DATA_DIR, then TFDS)"),
    "epochs": (int, "most epochs to train"),
    "batch_size": (int, "global batch size"),
    "optimizer": (str, "sgd, momentum, adam, adamw, rmsprop or muon"),
    "lr": (float, "initial learning rate"),
    "momentum": (float, "momentum of momentum SGD (default 0.9), rmsprop (0) and muon (0.6)"),
    "other_lr": (float, "muon's SGD rate for biases and BN offsets (default: lr)"),
    "head_lr": (float, "muon's SGD rate for dense kernels (default: other-lr)"),
    "decoupled_decay": (float, "the optimizer's decoupled weight decay (AdamW's)"),
    "schedule": (
        str,
        "constant, step, multistep, exponential, halving, plateau, cosine or warmup_linear",
    ),
    "step_size": (int, "epochs between decays of step and halving"),
    "gamma": (float, "decay factor of step, multistep, exponential and plateau"),
    "lr_patience": (int, "epochs without gain before plateau decays"),
    "lr_min_delta": (float, "smallest rise of val accuracy that plateau counts as a gain"),
    "min_lr": (float, "floor of cosine and plateau, end of warmup_linear"),
    "warmup": (float, "fraction of the steps warmup_linear warms up over"),
    "tta": (int, "test-time augmentation, reported beside test accuracy: 0, 1 (mirror), 2"),
    "label_smoothing": (float, "label smoothing of the cross-entropy, in [0, 1)"),
    "early_stopping": (int, "patience in epochs on val accuracy (0: off)"),
    "time_limit": (float, "stop after this many minutes, inside an epoch if need be (0: off)"),
    "val_split": (float, "held-out fraction of train (default: the dataset's)"),
    "image_size": (int, "resize every image to this many pixels a side (default: as it is)"),
    "seed": (int, "seed of weights, data order and augmentation"),
    "precision": (
        str,
        "auto (default: the fastest sound one here), float32, mixed_float16 or mixed_bfloat16",
    ),
    "steps_per_execution": (int, "training steps per call (0: chosen from the model's size)"),
    "strategy": (str, "default, mirrored (all local GPUs) or multiworker (TF_CONFIG)"),
}


class _Renamed(argparse.Action):
    """`--weight-decay` named two decays: refused with the two names that replaced it."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        x = values or "X"
        parser.error(
            f"--weight-decay is gone: use --set weight_decay={x} for the model's L2 penalty "
            f"or --decoupled-decay {x} for the optimizer's decoupled decay."
        )


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m zoo.train", description=__doc__)
    p.add_argument("model", nargs="?", help="registered model name (python -m zoo list)")
    p.add_argument("--list", action="store_true", help="print every model's recipe and exit")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in this folder")
    p.add_argument("--out", default="runs", help="folder of run folders (default: runs)")
    for name, (kind, text) in FLAGS.items():
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, help=text)
    p.add_argument("--weight-decay", nargs="?", action=_Renamed, help=argparse.SUPPRESS)
    p.add_argument("--milestones", type=lambda s: tuple(int(v) for v in s.split(",")),
                   help="epochs at which multistep decays, e.g. 30,60")  # fmt: skip
    p.add_argument("--subset", type=parse_count, help="fraction of train, or images per class")
    p.add_argument("--test-subset", type=parse_count, help="the same for the test split")
    p.add_argument("--no-augment", action="store_true", help="turn training augmentation off")
    p.add_argument("--jit", action="store_true", help="compile steps with XLA")
    p.add_argument("--stream", action="store_true",
                   help="read images from disk (default: if they would not fit)")  # fmt: skip
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs")
    p.add_argument("--keep-epochs", action="store_true",
                   help="keep every epoch's weights (reports surface --trajectory)")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a model toggle or run setting, e.g. --set bn=True")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no per-epoch output")
    return p


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The recipe of `args.model` with the flags and `--set` pairs applied.

    Raises:
        ValueError: Unknown model, bad `--set` syntax or values.
        TypeError: Unknown keys or wrong types.
    """
    from zoo import registry
    from zoo.recipes import RunConfig, recipe

    overrides = _flags(args)
    settings = {f.name for f in dataclasses.fields(RunConfig)} - {"model", "model_kwargs"}
    toggles: dict[str, Any] = {}
    info = registry.describe(args.model)
    for key, value in parse_set(args.set).items():
        # Toggles first: a name both could take is the model's here (run settings have
        # their own flags). The run setting once called weight_decay is decoupled_decay.
        is_toggle = key in info.toggles or key in info.aliases
        (toggles if is_toggle or key not in settings else overrides)[key] = value
    base = recipe(args.model)
    if toggles:
        try:  # the study's names (reg) become ours, so they replace the recipe's values
            toggles = registry.resolve_toggles(args.model, toggles)
        except TypeError as err:
            raise TypeError(f"{err} Run settings: {', '.join(sorted(settings))}.") from None
        overrides["model_kwargs"] = {**base.model_kwargs, **toggles}
    return recipe(args.model, **overrides)


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    """The run settings the flags (not `--set`) give."""
    overrides: dict[str, Any] = {k: getattr(args, k) for k in FLAGS if getattr(args, k) is not None}
    for key in ("milestones", "subset", "test_subset"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    switches = {
        "no_augment": ("augment", False), "jit": ("jit", True), "stream": ("stream", True),
        "tensorboard": ("tensorboard", True), "keep_epochs": ("keep_epochs", True),
    }  # fmt: skip
    for flag, (key, value) in switches.items():
        if getattr(args, flag):
            overrides[key] = value
    return overrides


def _settings_given(args: argparse.Namespace) -> list[str]:
    """The run-setting flags given on the command line."""
    given = [f"--{k.replace('_', '-')}" for k in (*FLAGS, "milestones", "subset", "test_subset")
             if getattr(args, k) is not None]  # fmt: skip
    # --stream is left out: it changes how the data is read, not the run.
    flags = {"no_augment": "--no-augment", "jit": "--jit", "tensorboard": "--tensorboard",
             "keep_epochs": "--keep-epochs"}  # fmt: skip
    given += [flag for key, flag in flags.items() if getattr(args, key)]
    return given + [f"--set {pair}" for pair in args.set]


def main(argv: list[str] | None = None) -> int:
    """Runs the training CLI; returns the exit status.

    2 on misuse or a fault (one line: a bad value, missing data, an --out that cannot be
    written), 130 on Ctrl-C (with the command that resumes the run).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    show_progress(args.quiet)
    if args.resume and _settings_given(args):
        parser.error(
            f"--resume continues {args.resume} with its own settings; "
            f"{', '.join(_settings_given(args))} would make another run: "
            "give them without --resume to start it."
        )
    try:
        return _main(parser, args)
    except KeyboardInterrupt as stop:
        path = getattr(stop, "path", None)  # zoo.train.Interrupted: Ctrl-C inside a run
        where = (f"resume with: python -m zoo.train --resume {path}" if path else
                 "no epoch had finished, so nothing was kept")  # fmt: skip
        parser.exit(130, f"{parser.prog}: interrupted; {where}\n")
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
    except OSError as err:  # an --out that is read-only, full or a file; unreadable data
        what = f"{err.filename}: {err.strerror}" if err.filename else str(err)
        parser.exit(2, f"{parser.prog}: {what}\n")


def _main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    import zoo

    if args.model and not (args.list or args.resume):
        # Before TensorFlow loads: an unknown model or a bad flag value answers at once.
        from zoo import registry
        from zoo.recipes import check_settings

        registry.check_model(args.model)
        check_settings(_flags(args))
    zoo.load()
    from zoo.recipes import RunConfig, list_recipes

    if args.list:
        for name, cfg in list_recipes().items():
            fields = {
                k: v
                for k, v in dataclasses.asdict(cfg).items()
                if v != getattr(RunConfig(name), k) or k == "optimizer"
            }
            print(f"{name:<22} {json.dumps(fields, default=str)}")
        return 0
    if args.resume:
        from zoo.train import load_config, resume

        saved = load_config(args.resume)
        if args.model and args.model != saved.model:
            raise ValueError(f"{args.resume} holds a {saved.model} run, not {args.model}.")
        run = resume(args.resume, verbose=0 if args.quiet else None, stream=args.stream or None)
    else:
        if not args.model:
            raise ValueError("give a MODEL, --resume RUN_DIR or --list.")
        config = config_from_args(args)
        from zoo.train import train

        run = train(config, Path(args.out), verbose=0 if args.quiet else None)
    m = run.metrics
    accuracies = ", ".join(
        f"{split} {m[split]['accuracy']:.4f}" for split in ("train", "val", "test") if split in m
    )
    if not run.trained:
        print(f"{run.path}: finished earlier, read back without training "
              "(another --seed or --out trains it again)")  # fmt: skip
    print(
        f"{run.path}: {accuracies}; {m['epochs_run']} epochs, stopped: {m['stop_reason']}; "
        f"{run.config.precision}"
    )
    if m["stop_reason"] == "time_limit" and run.trained:  # its last epoch's state is kept
        print(f"{run.path}: stopped by its time limit; the same command continues it")
    return 0


if __name__ == "__main__":
    run_main(main)
