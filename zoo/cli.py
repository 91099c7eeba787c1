"""What every command line of the project shares: misuse ends in one line and exit status 2."""

from __future__ import annotations

import argparse


class Parser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose errors are one line (no usage dump), exit status 2."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: {message}\n")
