"""`python -m zoo list [PATTERN]` and `python -m zoo describe NAME`: browse the registry."""

from __future__ import annotations

import json

from zoo.cli import Parser, run_main


def _parser() -> Parser:
    parser = Parser(prog="python -m zoo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="list models with their home dataset and study figure")
    ls.add_argument("pattern", nargs="?", help="shell-style pattern, e.g. '*cnn'")
    ds = sub.add_parser("describe", help="toggles, defaults and parameter count of one model")
    ds.add_argument("name", help="registered model name")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the registry CLI; returns the exit status (2 on misuse)."""
    parser = _parser()
    args = parser.parse_args(argv)
    import zoo
    from zoo import registry

    if args.command == "describe":
        try:  # before TensorFlow loads
            registry.check_model(args.name)
        except ValueError as err:
            parser.exit(2, f"python -m zoo: {err}\n")
    zoo.load()
    from zoo.registry import build, describe, list_models
    from zoo.study.catalog import reported

    try:
        if args.command == "list":
            names = list_models(args.pattern)
            if not names:
                parser.exit(2, f"python -m zoo: no model matches {args.pattern!r}.\n")
            for name in names:
                info = describe(name)
                figure = f"{found[1]:.2%}" if (found := reported(name)) else "-"
                print(f"{name:<22} {info.dataset:<14} {info.study:<3} {figure:>7}  {info.summary}")
        else:
            info = describe(args.name)
            model = build(args.name)
            out = {**info.__dict__, "trainable_params": _trainable(model)}
            print(json.dumps(out, indent=2, default=str))
    except ValueError as err:
        parser.exit(2, f"python -m zoo: {err}\n")
    return 0


def _trainable(model: object) -> int:
    return sum(int(w.numpy().size) for w in model.trainable_weights)  # type: ignore[attr-defined]


if __name__ == "__main__":
    run_main(main)
