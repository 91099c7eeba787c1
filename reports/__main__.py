"""`python -m reports build RUN_DIR_OR_GLOB... --out DIR` writes tables, figures and index.html.

Arguments are run folders, globs, or folders holding runs (a `runs/` folder or a search
project), searched recursively. Folders that are not finished runs are reported and skipped.
"""

from __future__ import annotations

import argparse

from zoo.cli import Parser, parse_count, parse_set, positive_int, run_main, show_progress


def _parser() -> Parser:
    parser = Parser(prog="python -m reports", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="tables and figures from run folders")
    build.add_argument("runs", nargs="+", metavar="RUN_DIR_OR_GLOB",
                       help="run folders, globs, or folders holding runs")  # fmt: skip
    build.add_argument("--out", default="report", help="report folder (default: report)")
    build.add_argument("--rows", default="model",
                       help="ablation table rows: model, or a toggle such as depth")  # fmt: skip
    build.add_argument("--formats", default="png,svg", help="figure formats, e.g. png,pdf")
    build.add_argument("--quiet", action="store_true", help="print nothing but errors")
    land = commands.add_parser("landscape", help="S1 / S4 loss-range bands of a model and ablation")
    land.add_argument("model", help="registered model name, e.g. vgg_a")
    land.add_argument("--compare", action="append", default=[], metavar="TOGGLE=VALUE",
                      help="the ablation's toggles, e.g. --compare bn=True")  # fmt: skip
    land.add_argument(
        "--lrs", default="1e-3,2e-3,1e-4,5e-4", help="S1's rates (S4: 1e-3,1e-4,5e-4,5e-5)"
    )
    land.add_argument("--epochs", type=positive_int, default=5, help="epochs per run (default 5)")
    land.add_argument("--out", default="landscape", help="runs and figure (default: landscape)")
    land.add_argument("--data-dir", help="folder with the data (default: $ZOO_DATA_DIR, then TFDS)")
    land.add_argument("--subset", type=parse_count, help="fraction of train, or images per class")
    land.add_argument("--batch-size", type=positive_int, help="default: the recipe's")
    land.add_argument("--seed", type=int, default=0, help="seed of every run (default 0)")
    land.add_argument("--quiet", action="store_true", help="print nothing but errors")
    smooth = commands.add_parser(
        "smoothness", help="Santurkar et al.'s loss and gradient probes of a model and ablation"
    )
    smooth.add_argument("model", help="registered model name, e.g. vgg_a")
    smooth.add_argument("--compare", action="append", default=[], metavar="TOGGLE=VALUE",
                        help="the ablation's toggles, e.g. --compare bn=True")  # fmt: skip
    smooth.add_argument("--steps", type=positive_int, default=200,
                        help="training steps of each model (default 200)")  # fmt: skip
    smooth.add_argument("--every", type=positive_int, default=10,
                        help="probe every this many steps (default 10)")  # fmt: skip
    smooth.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    smooth.add_argument("--batch-size", type=positive_int, help="default: the recipe's")
    smooth.add_argument("--subset", type=parse_count, help="fraction of train, or per class")
    smooth.add_argument("--data-dir", help="folder with the data (default: $ZOO_DATA_DIR)")
    smooth.add_argument("--seed", type=int, default=0, help="seed of both models and the data")
    smooth.add_argument("--out", default="smoothness", help="default: smoothness")
    smooth.add_argument("--quiet", action="store_true", help="print nothing but errors")
    surf = commands.add_parser("surface", help="Li et al.'s filter-normalized loss line and grid")
    surf.add_argument("run", metavar="RUN_DIR", help="a finished run folder")
    surf.add_argument("--points", type=int, default=21, help="grid points per direction")
    surf.add_argument("--span", type=float, default=1.0, help="extent of each direction")
    surf.add_argument("--images", type=int, default=1000, help="evaluation images")
    surf.add_argument("--dims", type=int, choices=(1, 2), default=2,
                      help="1: the line only; 2: the line and the grid (default)")  # fmt: skip
    surf.add_argument("--split", choices=("test", "val", "train"), default="test",
                      help="the images the loss is measured on (default test)")  # fmt: skip
    surf.add_argument("--seed", type=int, default=0, help="seed of the random directions")
    surf.add_argument("--out", help="default: RUN_DIR/landscape")
    surf.add_argument("--trajectory", action="store_true",
                      help="the run's path over its kept epochs (--keep-epochs) on the plane "
                           "of their two principal directions")  # fmt: skip
    surf.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the reports CLI; returns the exit status.

    2 on misuse or a fault (one line: a bad value, missing runs, an --out that cannot be
    written), 130 on Ctrl-C, saying what the same command will reuse.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    show_progress(getattr(args, "quiet", False))
    try:
        return _main(parser, args)
    except KeyboardInterrupt as stop:
        # `landscape` trains through zoo.train: finished runs are kept, and an interrupted one
        # resumes from its last finished epoch. The other commands keep nothing.
        kept = "nothing was kept"
        if args.command == "landscape":
            path = getattr(stop, "path", None)  # None: no epoch of it had finished
            kept = "the same command continues: finished runs are reused" + (
                f", and {path} resumes from its last finished epoch" if path else ""
            )
        parser.exit(130, f"{parser.prog}: interrupted; {kept}\n")
    except OSError as err:  # an --out that is a file, read-only or full
        what = f"{err.filename}: {err.strerror}" if err.filename else str(err)
        parser.exit(2, f"{parser.prog}: {what}\n")


def _main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    import zoo

    zoo.load()
    if args.command == "surface":
        return _surface(parser, args)
    if args.command == "landscape":
        return _landscape(parser, args)
    if args.command == "smoothness":
        return _smoothness(parser, args)
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    unknown = sorted(set(formats) - {"png", "svg", "pdf"})
    if unknown:
        parser.exit(
            2, f"{parser.prog}: unknown format(s) {', '.join(unknown)}; use png, svg, pdf\n"
        )
    from reports.build import build as build_report

    try:
        build_report(args.runs, args.out, rows=args.rows, formats=formats, verbose=not args.quiet)
    except FileNotFoundError as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
    return 0


def _surface(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from reports.surface import surface
    from reports.trajectory import trajectory

    if args.points < 2 or args.images < 1:
        parser.exit(2, f"{parser.prog}: --points must be >= 2 and --images >= 1\n")
    try:
        if args.trajectory:
            trajectory(
                args.run, points=args.points, images=args.images, split=args.split,
                seed=args.seed, out=args.out, verbose=not args.quiet,
            )  # fmt: skip
        else:
            surface(
                args.run, points=args.points, span=args.span, images=args.images,
                dims=args.dims, split=args.split, seed=args.seed, out=args.out,
                verbose=not args.quiet,
            )  # fmt: skip
    except (ValueError, TypeError, FileNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
    return 0


def _smoothness(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from reports.smoothness import smoothness

    try:
        smoothness(
            args.model, parse_set(args.compare), steps=args.steps, every=args.every, lr=args.lr,
            batch_size=args.batch_size, subset=args.subset, data_dir=args.data_dir,
            seed=args.seed, out=args.out, verbose=not args.quiet,
        )  # fmt: skip
    except (ValueError, TypeError, FileNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
    return 0


def _landscape(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from reports.landscape import study_landscape

    settings = {k: getattr(args, k) for k in ("data_dir", "subset", "batch_size", "seed")
                if getattr(args, k) is not None}  # fmt: skip
    try:
        lrs = [float(x) for x in args.lrs.split(",") if x.strip()]
        study_landscape(
            args.model, parse_set(args.compare), lrs=lrs, epochs=args.epochs, out=args.out,
            verbose=not args.quiet, **settings,
        )  # fmt: skip
    except (ValueError, TypeError, FileNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
    return 0


if __name__ == "__main__":
    run_main(main)
