"""`python -m tuning.search SPACE [flags]` runs a Keras Tuner search over a study's space.

Results go to OUT/SPACE-TUNER: trials.csv, best.json, Keras Tuner's project files and
TensorBoard HParams logs. Rerunning the same command continues the search; a trial that was
killed continues from its last finished epoch. `--set NAME=VALUE` holds a hyperparameter.
For a distributed search, start the same command once with KERASTUNER_TUNER_ID=chief and
once per worker (tuner0, tuner1, ...), all with KERASTUNER_ORACLE_IP and
KERASTUNER_ORACLE_PORT pointing at the chief and the same --out on a shared disk.
"""

from __future__ import annotations

import argparse

from tuning import OBJECTIVES, TUNERS
from zoo.cli import Parser, parse_count, parse_set, positive_int, run_main, show_progress


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m tuning.search", description=__doc__)
    p.add_argument("space", nargs="?", help="search space (--list prints them)")
    p.add_argument("--list", action="store_true", help="print every space's hyperparameters")
    p.add_argument("--tuner", default="grid", help=f"one of {', '.join(TUNERS)} (default grid)")
    p.add_argument("--max-trials", type=positive_int,
                   help="most trials to run (default: the whole grid; 10 otherwise)")  # fmt: skip
    p.add_argument("--epochs", type=positive_int, help="epochs per trial (default: the space's)")
    p.add_argument("--subset", type=parse_count, help="fraction of train, or images per class")
    p.add_argument("--objective", default="val_accuracy", help=", ".join(OBJECTIVES))
    p.add_argument("--executions-per-trial", type=positive_int, default=1,
                   help="trainings per trial, their scores averaged (default 1)")  # fmt: skip
    p.add_argument("--data-dir", help="folder with the data (default: $ZOO_DATA_DIR, then TFDS)")
    p.add_argument("--seed", type=int, default=0, help="seed of the tuner and of every trial")
    p.add_argument("--precision", default="auto",
                   help="auto (default: a search continues in its own, a new one takes this "
                        "machine's fastest), float32, mixed_float16 or mixed_bfloat16")  # fmt: skip
    p.add_argument("--out", default="searches", help="folder of search projects")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="hold a hyperparameter at a value, e.g. --set hidden=1000")  # fmt: skip
    p.add_argument("--isolate", action="store_true", help="train each trial in a new process")
    p.add_argument("--overwrite", action="store_true", help="start the project afresh")
    p.add_argument("--train-best", action="store_true",
                   help="retrain the best configuration on all of train, then test it")  # fmt: skip
    p.add_argument("--best-epochs", type=positive_int, help="epochs of that retraining")
    p.add_argument("--test-subset", type=parse_count,
                   help="fraction or images per class of test that retraining is scored on "
                        "(trials never see test)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def main(argv: list[str] | None = None) -> int:
    """Runs the search CLI; returns the exit status (2 on misuse, with one line)."""
    parser = _parser()
    args = parser.parse_args(argv)
    show_progress(args.quiet)
    import zoo
    from tuning.spaces import get_space

    try:  # before TensorFlow loads
        if args.space:
            get_space(args.space)
    except ValueError as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
    zoo.load()
    from tuning.spaces import hyperparameters, list_spaces
    from tuning.tuner import run_search

    try:
        if args.list:
            for name in list_spaces():
                names = ", ".join(item.name for item in hyperparameters(name).space)
                print(f"{name:<18} {names}")
            return 0
        if not args.space:
            raise ValueError(f"give a SPACE or --list. Spaces: {', '.join(list_spaces())}.")
        run_search(
            args.space, args.out, tuner=args.tuner, max_trials=args.max_trials,
            epochs=args.epochs, subset=args.subset, objective=args.objective,
            executions_per_trial=args.executions_per_trial, data_dir=args.data_dir,
            seed=args.seed, precision=args.precision, fixed=parse_set(args.set),
            isolate=args.isolate, overwrite=args.overwrite, train_best=args.train_best,
            best_epochs=args.best_epochs, test_subset=args.test_subset, verbose=not args.quiet,
        )  # fmt: skip
    except KeyboardInterrupt:
        parser.exit(130, f"{parser.prog}: interrupted; the same command continues the search\n")
    except (ValueError, TypeError, FileNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
    except OSError as err:  # an --out that is read-only, full, or a file
        what = f"{err.filename}: {err.strerror}" if err.filename else str(err)
        parser.exit(2, f"{parser.prog}: cannot write the search: {what}\n")
    return 0


if __name__ == "__main__":
    run_main(main)
