"""`python -m zoo.study NAME [--budget cpu] [--seeds N]` reruns a study and lays out its tables.

Finished runs are reused and an interrupted one resumes, so the same command continues a study
killed at any point. `--list` prints the studies, their runs and the time each budget takes.
"""

from __future__ import annotations

from zoo.cli import Parser, parse_count, positive_int, run_main, show_progress


def _parser() -> Parser:
    p = Parser(prog="python -m zoo.study", description=__doc__)
    p.add_argument("study", nargs="?", help="S0, S1, S2, S3, S4 or S5")
    p.add_argument("--list", action="store_true",
                   help="print the studies, their runs and each budget's time")  # fmt: skip
    p.add_argument("--budget", choices=("smoke", "cpu", "full"), default="cpu",
                   help="smoke: seconds; cpu: scaled to train on 2 cores (--list estimates "
                        "each); full: the study's own settings (default cpu)")  # fmt: skip
    p.add_argument("--seeds", type=positive_int, default=1,
                   help="runs per configuration; cells show mean ± std (default 1)")  # fmt: skip
    p.add_argument("--data-dir", help="folder with the data (default: $ZOO_DATA_DIR, then TFDS)")
    p.add_argument("--out", default="studies", help="folder of study folders (default: studies)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--only", nargs="+", metavar="RUN", help="train only these runs (by name)")
    which.add_argument("--compared", action="store_true",
                       help="train only the runs the study's conclusions compare (with "
                            "--seeds: give every verdict its seeds)")  # fmt: skip
    p.add_argument("--precision", default="auto",
                   help="auto (default: a study continues in its own, a new one takes this "
                        "machine's fastest), float32, mixed_float16 or mixed_bfloat16")  # fmt: skip
    p.add_argument("--test-subset", type=parse_count,
                   help="score every run on this fraction of test, or images per class (the "
                        "study folder keeps it; the noise floor widens to match)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return p


def _list() -> None:
    from study_runner import estimate_seconds
    from zoo import machine
    from zoo.study import STUDIES

    cpu = machine.cpu_description()
    print(f"Times: training and evaluation on 2 cores of this CPU ({cpu['model']}; "
          f"{cpu['vector']}) at {machine.auto_precision()}, one seed; then with "
          f"`--compared --seeds 3` on top.\n")  # fmt: skip
    for study in STUDIES.values():
        times = []
        for budget in ("cpu", "full"):
            one = estimate_seconds(study, budget)
            more = one + 2 * estimate_seconds(study, budget, only=study.compared())
            times.append(f"{budget} ~{_duration(one)} ({_duration(more)})")
        print(f"{study.name}  {study.title}  ({', '.join(times)})")
        for run in study.runs:
            figure = f"{run.reported:.2%}" if run.reported is not None else "-"
            extra = "  [zoo's own]" if run.extra else ""
            print(f"    {run.name:<30} {run.model:<20} {figure:>7}{extra}")


def _duration(seconds: float) -> str:
    return f"{seconds / 60:,.0f} min" if seconds < 5400 else f"{seconds / 3600:,.1f} h"


def main(argv: list[str] | None = None) -> int:
    """Runs the study CLI; 2 on misuse or a fault (one line), 130 on Ctrl-C."""
    parser = _parser()
    args = parser.parse_args(argv)
    show_progress(args.quiet)
    import logging

    import zoo

    # Keras warns of retracing when one process trains many models; here that is expected.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        if args.study:  # before TensorFlow loads: the study, its run names and the precision
            from zoo import machine
            from zoo.study.catalog import get_study

            study = get_study(args.study)
            for name in args.only or []:
                study.run(name)
            if args.compared:
                args.only = study.compared()
                if not args.only:
                    raise ValueError(f"{study.name} has no conclusions to compare runs for.")
        elif args.compared:
            raise ValueError("--compared needs a STUDY.")
            if args.precision != "auto":
                machine.resolve_precision(args.precision)
        zoo.load()
        if args.list:
            _list()
            return 0
        if not args.study:
            raise ValueError("give a STUDY (S0 ... S5) or --list.")
        from study_runner import run_study

        run_study(
            args.study, budget=args.budget, seeds=args.seeds, data_dir=args.data_dir,
            out=args.out, only=args.only, precision=args.precision,
            test_subset=args.test_subset, verbose=not args.quiet,
        )  # fmt: skip
    except KeyboardInterrupt:
        parser.exit(130, f"{parser.prog}: interrupted; the same command continues the study\n")
    except (ValueError, TypeError, KeyError, FileNotFoundError, RuntimeError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        parser.exit(2, f"{parser.prog}: {message}\n")
    except OSError as err:
        what = f"{err.filename}: {err.strerror}" if err.filename else str(err)
        parser.exit(2, f"{parser.prog}: {what}\n")
    return 0


if __name__ == "__main__":
    run_main(main)
