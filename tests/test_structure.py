"""The project's layers, read from its source: the library imports no application, nothing
imports the study runner but its command, and only `zoo.runs` names a run folder's files."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
APPLICATIONS = ("tuning", "reports", "study_runner")
# Commands: they parse a command line and may call any layer.
COMMANDS = {"zoo/__main__.py", "zoo/train/__main__.py", "zoo/data/__main__.py",
            "zoo/study/__main__.py", "zoo/bench/__main__.py", "tuning/search.py",
            "tuning/memory.py", "reports/__main__.py"}  # fmt: skip


def _modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def _relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _upward(path: Path, above: tuple[str, ...]) -> list[str]:
    return sorted(m for m in _imports(path) if m.split(".")[0] in above)


@pytest.mark.parametrize("module", [_relative(p) for p in _modules("zoo")])
def test_the_library_imports_no_application(module):
    if module in COMMANDS:
        pytest.skip("a command")
    assert _upward(REPO / module, APPLICATIONS) == []


@pytest.mark.parametrize("package", ["tuning", "reports"])
def test_tuning_and_reports_do_not_import_the_study_runner(package):
    for path in _modules(package):
        assert _upward(path, ("study_runner",)) == [], _relative(path)
        assert "zoo.study.__main__" not in _imports(path)


def test_only_the_run_folder_module_names_a_run_folders_files():
    """Every other module goes through `zoo.runs` (its constants and readers)."""
    names = {"config.json", "metrics.json", "history.csv", "steps.csv", "best.keras",
             "confusion_matrix.csv", "state.weights.h5"}  # fmt: skip
    offenders = []
    for package in ("zoo", *APPLICATIONS, "tools"):
        for path in _modules(package):
            if _relative(path).startswith("zoo/runs/"):
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in names:
                    offenders.append(f"{_relative(path)}:{node.lineno} {node.value}")
    assert offenders == []


MISUSE = [
    ("zoo.train", "lenet", "--epochs", "-1"),
    ("zoo.train", "nosuch"),
    ("zoo.train", "lenet", "--optimizer", "bogus"),
    ("zoo.study", "S9"),
    ("zoo.study", "S2", "--only", "nosuch"),
    ("zoo.bench", "nosuch"),
    ("zoo", "describe", "nosuch"),
    ("tuning.search", "nosuch"),
    ("tuning.search", "mlp_mnist", "--epochs", "-1"),
]


@pytest.mark.parametrize("command", MISUSE, ids=" ".join)
def test_misuse_is_refused_in_one_line_before_tensorflow_loads(command, tmp_path):
    # A TensorFlow that cannot be imported: the answer must come without it.
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('TensorFlow was loaded')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    done = subprocess.run(
        [sys.executable, "-m", *command], capture_output=True, text=True, env=env, cwd=REPO,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "TensorFlow was loaded" not in done.stderr
