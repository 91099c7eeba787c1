"""What every command line of the project shares: misuse ends in one line and exit status 2.

This module imports no TensorFlow, so a command answers --help and misuse at once.
"""

from __future__ import annotations

import argparse
import ast
import gc
import importlib
import logging
import sys
from collections.abc import Callable
from typing import Any, NoReturn


class Parser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose errors are one line (no usage dump), exit status 2."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: {message}\n")


def run_main(main: Callable[[], int | None]) -> NoReturn:
    """Runs a command's `main` and exits with its status.

    The interpreter's last garbage collections would walk every object TensorFlow made: 1-2 s
    at the end of each command on 2 cores. After a command that succeeded, its objects are
    frozen first, so those collections skip them; exit handlers still run. A command that
    failed or was interrupted (any other status) exits as Python does, collecting and closing
    what it left open, such as a training run's TensorBoard writers.
    """
    code = main()
    if not code:
        gc.freeze()
    sys.exit(code)


def parse_set(pairs: list[str]) -> dict[str, Any]:
    """Parses `--set KEY=VALUE` pairs; values are Python literals, a bare word is a string.

    Raises:
        ValueError: A pair without `=` or without a key.
    """
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}.")
        try:
            parsed[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            parsed[key] = text  # e.g. --set activation=relu
    return parsed


def parse_count(text: str) -> float | int:
    """Parses a `--subset` value: a fraction (0.1) or a per-class count (20).

    Raises:
        argparse.ArgumentTypeError: Anything else.
    """
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise argparse.ArgumentTypeError(f"expected a fraction or a count, got {text!r}")
    return value


def lazy_exports(package: str, exports: dict[str, str] | str) -> Callable[[str], Any]:
    """A module `__getattr__` that imports each exported name from its module on first use.

    `exports` maps names to the modules that define them, or names one module that serves
    every name. The packages whose commands run with `python -m` (zoo.train, zoo.data,
    tuning, reports) are imported before their command parses its arguments; deferring their
    TensorFlow-heavy modules lets --help and misuse answer at once.
    """

    def __getattr__(name: str) -> Any:
        module = exports if isinstance(exports, str) else exports.get(name)
        if module is None or name.startswith("__"):
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def show_progress(quiet: bool = False) -> None:
    """Prints the zoo's progress lines (a first read or decode of a dataset, which take
    tens of seconds) to stderr, unless `quiet`. Library callers see them only if they configure
    logging themselves."""
    logger = logging.getLogger("zoo")
    if quiet or any(getattr(h, "_zoo", False) for h in logger.handlers):
        return
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("zoo: %(message)s"))
    handler._zoo = True  # one handler however many commands a process runs (the tests)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


class _Stderr(logging.StreamHandler):
    """A handler on whatever sys.stderr is when a line is written, not when it was made."""

    def emit(self, record: logging.LogRecord) -> None:  # noqa: D102
        self.stream = sys.stderr
        super().emit(record)
