"""`python -m tuning.memory` measures how a long search's resident memory grows.

Runs a random search of many tiny trials (MNIST, a few images per class, one epoch) over
`mlp_mnist_wide`, whose trials differ in width, activation and optimizer, and prints the
search process's resident memory after each trial and its growth between two trials
(default: trial 5 to the last). `--isolate` runs the same with each trial in its own process.
"""

from __future__ import annotations

import tempfile

from zoo.cli import Parser, positive_int, run_main


def _parser() -> Parser:
    p = Parser(prog="python -m tuning.memory", description=__doc__)
    p.add_argument("--trials", type=positive_int, default=30, help="trials to run (default 30)")
    p.add_argument("--from-trial", type=positive_int, default=5,
                   help="growth is measured from here (default 5)")  # fmt: skip
    p.add_argument("--subset", type=positive_int, default=10, help="training images per class")
    p.add_argument("--data-dir", help="folder with the data (default: $ZOO_DATA_DIR, then TFDS)")
    p.add_argument("--isolate", action="store_true", help="each trial in its own process")
    return p


def main(argv: list[str] | None = None) -> int:
    """Runs the memory benchmark; returns the exit status."""
    p = _parser()
    args = p.parse_args(argv)
    if not 1 <= args.from_trial <= args.trials:
        p.error(f"--from-trial must be between 1 and --trials ({args.trials})")
    import zoo

    zoo.load()
    from tuning.tuner import run_search

    with tempfile.TemporaryDirectory() as out:
        result = run_search(
            "mlp_mnist_wide", out, tuner="random", max_trials=args.trials, epochs=1,
            subset=args.subset, data_dir=args.data_dir, isolate=args.isolate, verbose=False,
        )  # fmt: skip
    rss = result.trials["rss_mib"].tolist()
    for n, value in enumerate(rss, 1):
        print(f"trial {n:>3}: rss {value:8.1f} MiB")
    first, last = rss[args.from_trial - 1], rss[-1]
    print(
        f"rss growth from trial {args.from_trial} to trial {len(rss)}: {last - first:+.1f} MiB "
        f"({first:.1f} -> {last:.1f} MiB, {'isolated' if args.isolate else 'in-process'} trials)"
    )
    return 0


if __name__ == "__main__":
    run_main(main)
