"""Prints pip constraints that pin every dependency of pyproject.toml at its lower bound.

`.ci/run` installs the project a second time with them, so the oldest versions the project
claims are tested as well as the newest that pip picks. pyproject.toml stays the one source of
the bounds.
"""

import re
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
for requirement in project["dependencies"]:
    found = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*>=\s*([^,;\s]+)", requirement)
    if not found:
        raise SystemExit(f"pyproject.toml: {requirement!r} has no lower bound (>=) to test.")
    print(f"{found[1]}=={found[3]}")
