"""Finding run folders and claiming one: the candidates for a config under `out` (its digest's
name, then folders named under an older rule), the lock, and the folders under given paths."""

from __future__ import annotations

import contextlib
import fcntl
import glob
from collections.abc import Iterator
from pathlib import Path

from zoo.recipes import RunConfig
from zoo.runs.identity import folder_name, same_run
from zoo.runs.layout import read_config
from zoo.runs.state import is_finished


@contextlib.contextmanager
def locked(path: Path) -> Iterator[bool]:
    """Holds an exclusive lock on a run folder; yields False if another process holds it."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _holds(path: Path, config: RunConfig) -> bool | None:
    """Whether the folder holds a run of `config`; None when its config.json is damaged."""
    try:
        return same_run(read_config(path), config)
    except ValueError:
        return None
    except OSError:
        return False


def _renamed(config: RunConfig, out: Path) -> list[Path]:
    """Folders of this run under other names, found by the settings they hold: named under
    an older rule (one that counted the data folder or logging), before a toggle's rename, or
    with a toggle at its default given where this config leaves it out (or the reverse)."""
    base = folder_name(config)
    return [
        p
        for p in sorted(out.glob(f"{config.model}-{config.home_dataset}-*"))
        if not p.name.startswith(base) and _holds(p, config)
    ]


def candidates(config: RunConfig, out: Path) -> Iterator[tuple[Path, bool]]:
    """The folders that may hold `config`'s run, in order, each with whether it is finished:
    its digest's name, then `-2`, `-3`, ... skipping those that hold other settings; before
    a fresh folder, any folder of the same run named under an older rule."""
    base = folder_name(config)
    renamed = None
    for n in range(1, 10_000):
        path = out / (base if n == 1 else f"{base}-{n}")
        if (path / "config.json").exists():
            holds = _holds(path, config)
            if holds is False:
                continue
            # A damaged config.json under this config's digest is ours to repair.
            yield path, bool(holds) and is_finished(path)
            continue
        if renamed is None:
            renamed = _renamed(config, out)
            for old in renamed:
                yield old, is_finished(old)
        yield path, False
    raise RuntimeError(f"{out}: no free run folder for {base}.")


@contextlib.contextmanager
def claim(config: RunConfig, out: Path) -> Iterator[tuple[Path, bool]]:
    """Yields the run folder for `config` and whether it holds the finished run already; an
    unfinished one is locked for this process while the block runs. A finished folder of the
    run wins over an unfinished one met before it (two older names of one run)."""
    done = find(config, out)
    if done is not None:
        yield done, True
        return
    for path, finished in candidates(config, out):
        if finished:  # finished since `find` looked
            yield path, True
            return
        with locked(path) as got:
            if got:
                yield path, False
                return


def find(config: RunConfig, out: str | Path) -> Path | None:
    """The folder under `out` of the finished run of `config`, if there is one."""
    out = Path(out)
    for path, finished in candidates(config, out):
        if finished:
            return path
        if not (path / "config.json").exists():
            return None  # the first free name: nothing after it is this run's
    return None


def first_folder(config: RunConfig, out: Path) -> Path:
    """The folder a run of `config` goes to when no other process holds it: its finished
    folder if it has one, else the first candidate."""
    return find(config, out) or next(candidates(config, out))[0]


def folders_in(folder: str | Path) -> list[Path]:
    """The run folders directly inside `folder` (finished or not), by name."""
    return sorted(p.parent for p in Path(folder).glob("*/config.json"))


def finished_in(folder: str | Path) -> list[Path]:
    """The finished run folders directly inside `folder`, oldest first."""
    found = [p for p in folders_in(folder) if is_finished(p)]
    return sorted(found, key=lambda p: (p / "metrics.json").stat().st_mtime)


def find_runs(patterns: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Evaluated run folders named by paths or globs; a folder of runs (or searches) is searched.

    Returns:
        The run folders with a metrics.json, sorted, and `(path, reason)` for every one
        skipped (not a run, or not evaluated yet).

    Raises:
        FileNotFoundError: Nothing matched, naming what was searched.
    """
    found: set[Path] = set()
    skipped: list[tuple[str, str]] = []
    for pattern in patterns:
        matches = [Path(p) for p in glob.glob(str(Path(pattern).expanduser()))]
        if not matches:
            skipped.append((pattern, "no such file or folder"))
        for path in matches:
            if (path / "config.json").is_file():
                inside = [path]
            elif path.is_dir():
                inside = [p.parent for p in path.rglob("config.json")]
                if not inside:
                    skipped.append((str(path), "not a run folder (no config.json)"))
            else:
                skipped.append((str(path), "not a folder"))
                continue
            for run in inside:
                if (run / "metrics.json").is_file():
                    found.add(run)
                else:
                    skipped.append((str(run), "unfinished run (no metrics.json)"))
    if not found:
        raise FileNotFoundError(
            f"No finished run folders in {', '.join(map(repr, patterns))}"
            + (f" (skipped: {'; '.join(f'{p}: {r}' for p, r in skipped)})." if skipped else ".")
        )
    return sorted(found), skipped
