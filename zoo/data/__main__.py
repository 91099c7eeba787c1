"""`python -m zoo.data bench NAME` times the train pipeline; `info NAME` describes a dataset."""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

import zoo.data as zdata
from zoo.cli import Parser, positive_int, run_main, show_progress


def bench(args: argparse.Namespace) -> None:
    """Prints load time, first full pass and images/s of later passes of the train pipeline."""
    if args.cold:
        # A fresh cache folder makes the first load read (or extract) and decode archives.
        os.environ["ZOO_CACHE_DIR"] = tempfile.mkdtemp(prefix="zoo-bench-")
    start = time.perf_counter()
    train, _, _, info = zdata.load(
        args.name, data_dir=args.data_dir, batch_size=args.batch_size,
        augment=not args.no_augment, stream=True if args.stream else None,
    )  # fmt: skip
    loaded = time.perf_counter() - start
    count = _one_pass(train)
    first = time.perf_counter() - start
    print(f"dataset           {info.name} from {info.source}")
    print(f"train images      {count} of {info.input_shape}, batch {args.batch_size}")
    print(f"augmentation      {info.augment}")
    print(f"find + decode     {loaded:.1f} s{' (cold cache)' if args.cold else ''}")
    print(f"first full pass   {first:.1f} s (decode included)")
    rates = []
    for _ in range(args.passes):
        t = time.perf_counter()
        _one_pass(train)
        rates.append(count / (time.perf_counter() - t))
    rates.sort()
    print(f"later passes      {rates[len(rates) // 2]:,.0f} images/s (median of {args.passes})")
    where = "streamed from the cache folder on disk" if info.streaming else "in memory"
    print(f"images            {where}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory       {peak:,.0f} MiB resident")


def _one_pass(dataset: object) -> int:
    count = 0
    for _, labels in dataset:  # type: ignore[attr-defined]
        count += int(labels.shape[0])
    return count


def info(args: argparse.Namespace) -> None:
    """Prints the class names, split sizes and statistics of a dataset."""
    *_, meta = zdata.load(args.name, data_dir=args.data_dir)
    print(f"dataset      {meta.name} from {meta.source}")
    print(f"shape        {meta.input_shape}, {meta.num_classes} classes")
    print(f"examples     {meta.num_examples}")
    print(f"mean / std   {[round(m, 4) for m in meta.mean]} / {[round(s, 4) for s in meta.std]}")
    print(
        f"classes      {', '.join(meta.class_names[:20])}{' ...' if meta.num_classes > 20 else ''}"
    )


def _parser() -> Parser:
    parser = Parser(prog="python -m zoo.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for command, fn in (("bench", bench), ("info", info)):
        p = sub.add_parser(command, help=fn.__doc__)
        p.add_argument("name", help="dataset name, e.g. mnist or cifar10 (a wrong one lists all)")
        p.add_argument("--data-dir", default=None, help="folder with the data (or $ZOO_DATA_DIR)")
        p.set_defaults(fn=fn)
        if command == "bench":
            p.add_argument("--batch-size", type=positive_int, default=128, help="default 128")
            p.add_argument("--passes", type=positive_int, default=3,
                           help="timed passes after the first (default 3)")  # fmt: skip
            p.add_argument("--no-augment", action="store_true", help="time it without augmentation")
            p.add_argument("--cold", action="store_true",
                           help="an empty cache: read and decode archives anew")  # fmt: skip
            p.add_argument("--stream", action="store_true",
                           help="read images from disk (default: if too big)")  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the data CLI; exit status 2 on misuse or data errors, with one line."""
    parser = _parser()
    args = parser.parse_args(argv)
    show_progress()
    import zoo

    zoo.load()
    try:
        args.fn(args)
    except (ValueError, OSError) as err:
        parser.exit(2, f"python -m zoo.data: {err}\n")
    return 0


if __name__ == "__main__":
    run_main(main)
