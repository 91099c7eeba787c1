"""`python -m zoo.bench MODEL`: the benchmark's command line."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from zoo.cli import Parser, positive_int, run_main, show_progress

if TYPE_CHECKING:
    pass


def _parser() -> Parser:
    parser = Parser(prog="python -m zoo.bench", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    # fmt: off
    add("model", help="registry name of the model, e.g. vgg_a (python -m zoo list)")
    add("--data-dir", default=None, help="data folder (default: $ZOO_DATA_DIR, then TFDS)")
    add("--batch-size", type=positive_int, default=128, help="images per step (default: 128)")
    add("--steps", type=positive_int, default=10, help="steps per timed window (default: 10)")
    add("--windows", type=positive_int, default=5,
        help="timed windows after one warm-up; figures are their median (default: 5)")
    add("--no-pipeline", action="store_true", help="in-memory tensors only, no real pipeline")
    add("--precision", default="auto",
        help="auto (default: the fastest sound one here), float32, mixed_float16, mixed_bfloat16")
    add("--jit", action="store_true", help="compile the training step with XLA")
    add("--steps-per-execution", type=int, default=0,
        help="training steps per call (default: chosen as zoo.train does)")
    add("--profile", metavar="DIR", help="trace training steps into DIR and print the top ops")
    add("--set", action="append", default=[], metavar="KEY=VALUE",
        help="a model toggle, e.g. --set bn=True (repeatable)")
    add("--torch", action="store_true",
        help="also train the model's PyTorch twin, alternating windows, and print the ratio")
    add("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    add("--largest-batch", action="store_true",
        help="only find the largest power-of-two batch whose training step fits in memory")
    # fmt: on
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark CLI; exit status 2 with one line on misuse.

    The arguments are parsed before TensorFlow loads, so --help and misuse answer at once.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    show_progress()
    import zoo
    from zoo import registry

    try:  # before TensorFlow loads
        registry.check_model(args.model)
    except ValueError as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
    zoo.load()
    from zoo.bench.report import report
    from zoo.bench.runner import bench, largest_batch
    from zoo.cli import parse_set
    from zoo.recipes import recipe

    try:
        toggles = parse_set(args.set)
        config = recipe(
            args.model, data_dir=args.data_dir, batch_size=args.batch_size,
            precision=args.precision, jit=args.jit,
            steps_per_execution=args.steps_per_execution,
        )  # fmt: skip
        config = dataclasses.replace(config, model_kwargs={**config.model_kwargs, **toggles})
        if args.largest_batch:
            fits, failed = largest_batch(config)
            beyond = f"; {failed} ran out of memory" if failed else " (the limit tried)"
            print(f"largest batch  {fits}{beyond}")
            return 0
        figures = bench(
            config, steps=args.steps, windows=args.windows, pipeline=not args.no_pipeline,
            torch=args.torch, profile_dir=args.profile,
        )  # fmt: skip
    except ModuleNotFoundError as err:
        parser.exit(2, f"{parser.prog}: --torch needs PyTorch ({err}): pip install -e '.[bench]'\n")
    except (ValueError, TypeError, OSError) as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
    print(report(figures, args.profile))
    if args.json:
        from zoo.files import write_json

        write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    run_main(main)
