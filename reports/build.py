"""`build`: run folders -> tables, figures and one self-contained index.html.

from reports.build import build
report = build(["runs/*"], "report")
report.runs        # the DataFrame behind every table
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reports import figures
from reports.runs import gather
from reports.tables import ablation_table, accuracy_table, display, html_page, write_table
from zoo import runs as zoo_runs
from zoo.files import save_figure, write_csv, write_text
from zoo.runs import find_runs


@dataclasses.dataclass
class Report:
    """What `build` wrote.

    Attributes:
        out: The report folder.
        runs: One row per run (also runs.csv).
        skipped: `(path, reason)` of every folder left out.
        files: Every file written, tables and figures.
    """

    out: Path
    runs: pd.DataFrame
    skipped: list[tuple[str, str]]
    files: list[Path]


def build(
    patterns: list[str],
    out: str | Path = "report",
    *,
    rows: str = "model",
    formats: tuple[str, ...] = ("png", "svg"),
    verbose: bool = True,
) -> Report:
    """Reads run folders and writes the report.

    Args:
        patterns: Run folders, globs, or folders holding runs (searched recursively).
        out: The report folder.
        rows: Rows of the ablation table: `model`, or a toggle such as `depth`.
        formats: Figure formats (`png` is always written: index.html embeds it).
        verbose: Print what is skipped and where the report is.

    Returns:
        The `Report`.

    Raises:
        FileNotFoundError: No finished run in `patterns` (naming them).
    """
    out = Path(out)
    paths, skipped = find_runs(patterns)
    runs, unreadable = gather(paths)
    skipped += unreadable
    if runs.empty:
        raise FileNotFoundError(f"No readable run in {', '.join(map(repr, patterns))}.")
    formats = tuple(dict.fromkeys(("png", *formats)))
    # A run whose history, steps or model cannot be read is left out and listed, whatever the
    # reason (garbage CSV, a truncated or foreign best.keras, one safe_mode refuses).
    drawn_runs: dict[int, dict[str, Figure] | list[Path]] = {}
    histories, datasets, stamps = {}, {}, {}
    for index, run in runs.iterrows():
        path = Path(run["path"])
        label = f"{run['model']} {run['variant']} seed {run['seed']}"
        # What the figures are drawn from, taken before drawing: a run that changes meanwhile
        # does not match it at the next build, and is drawn again then.
        stamps[index] = {"label": label, "formats": list(formats), "drawing": _drawing(),
                         "sources": _sources(path)}  # fmt: skip
        try:
            drawn = _drawn_before(out / "runs" / run["run"], stamps[index])
            drawn = _run_figures(path, label) if drawn is None else drawn
            history = zoo_runs.read_history(path)
        except Exception as err:  # noqa: BLE001  (any damage to one folder skips that folder)
            skipped.append((str(path), f"unreadable: {type(err).__name__}: {err}".strip()))
            continue
        drawn_runs[index] = drawn
        if len(history):
            histories[f"{run['run']} ({run['variant']})"] = history
            datasets[f"{run['run']} ({run['variant']})"] = run["dataset"]
    stamps = [stamps[index] for index in drawn_runs]
    runs = runs.loc[list(drawn_runs)].reset_index(drop=True)
    if runs.empty:
        raise FileNotFoundError(f"No readable run in {', '.join(map(repr, patterns))}.")
    files: list[Path] = []
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "runs.csv", runs, index=False)
    files.append(out / "runs.csv")
    tables = {"accuracy": accuracy_table(runs)}
    try:
        tables["ablation"] = ablation_table(runs, rows)
    except KeyError as err:
        skipped.append((rows, f"no ablation table: {err}"))
    for name, table in tables.items():
        files += write_table(table, out, name, index=name == "ablation")

    sections: list[str] = []
    for (_, run), drawn, stamp in zip(runs.iterrows(), drawn_runs.values(), stamps, strict=True):
        label = f"{run['model']} {run['variant']} seed {run['seed']}"
        if isinstance(drawn, dict):
            folder = out / "runs" / run["run"]
            # Gone while the figures are replaced: a build killed meanwhile leaves none to trust.
            (folder / _STAMP).unlink(missing_ok=True)
            saved = _save_all(drawn, folder, formats)
            write_text(folder / _STAMP, json.dumps({**stamp, "files": [p.name for p in saved]}))
        else:
            saved = drawn
        files += saved
        sections.append(_section(label, run, [p for p in saved if p.suffix == ".png"], out))
    if len(histories) > 1:
        # Runs without a validation split (S5's) have training accuracy only.
        held = any("val_accuracy" in history for history in histories.values())
        accuracy = "val_accuracy" if held else "accuracy"
        overlays = {
            f"overlay_{accuracy}": figures.overlay(histories, accuracy, datasets),
            "overlay_loss": figures.overlay(histories, "loss", datasets),
        }
        saved = _save_all(overlays, out, formats)
        files += saved
        sections.insert(
            0, _section("all runs", None, [p for p in saved if p.suffix == ".png"], out)
        )
    index = out / "index.html"
    write_text(index, _index(tables, sections, skipped))
    files.append(index)
    if verbose:
        for path, reason in skipped:
            print(f"skipped {path}: {reason}")
        print(f"{out}: {len(runs)} runs, {len(files)} files; open {index}")
    return Report(out, runs, skipped, files)


# A study's report is rebuilt after every run it trains, over all of them: a run's figures are
# drawn again only when what they are drawn from changed (S3's 50 runs took 17 minutes).
_STAMP = "drawn.json"
_SOURCES = (zoo_runs.HISTORY, zoo_runs.STEPS, zoo_runs.BEST, zoo_runs.METRICS, zoo_runs.CONFUSION)


def _sources(path: Path) -> dict[str, list[int]]:
    """Size and modification time of each file a run's figures are drawn from."""
    found = {}
    for name in _SOURCES:
        try:
            stat = (path / name).stat()
        except OSError:
            continue
        found[name] = [stat.st_size, stat.st_mtime_ns]
    return found


@functools.cache
def _drawing() -> str:
    """A digest of the code that draws a run's figures: changing it redraws them."""
    digest = hashlib.sha1()
    for module in (figures.__file__, __file__):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()[:12]


def _drawn_before(folder: Path, stamp: dict) -> list[Path] | None:
    """The figures an earlier build drew into `folder`, when they were drawn from `stamp`."""
    try:
        record = json.loads((folder / _STAMP).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or any(record.get(k) != v for k, v in stamp.items()):
        return None
    saved = [folder / name for name in record.get("files", [])]
    return saved if saved and all(p.is_file() for p in saved) else None


def _run_figures(path: Path, label: str) -> dict[str, Figure]:
    drawn: dict[str, Figure] = {}
    history, steps = zoo_runs.read_history(path), zoo_runs.read_steps(path)
    if len(history):
        drawn["curves"] = figures.curves(history, steps, label)
        if "lr" in history:
            drawn["lr"] = figures.lr_schedule(history)
    matrix = zoo_runs.read_confusion(path)
    if matrix is not None:
        drawn["confusion"] = figures.confusion(matrix)
    drawn.update(_weight_figures(path))
    return drawn


def _weight_figures(path: Path) -> dict[str, Figure]:
    """First conv layer's filters, and for a dense first layer on grey images, its units."""
    import keras

    if not (path / zoo_runs.BEST).is_file():
        return {}  # a run that diverged before its first finite epoch
    model = zoo_runs.best_model(path)
    shape = tuple(model.input_shape[1:])
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        weights = np.asarray(keras.ops.convert_to_numpy(kernel))
        if weights.ndim == 4:
            return {"filters": figures.filters(weights, f"{layer.name} filters")}
        if weights.ndim == 2 and weights.shape[0] == int(np.prod(shape)) and shape[-1] == 1:
            return {"dense_weights": figures.dense_tiles(weights, shape[:2], title=layer.name)}
        return {}
    return {}


def _save_all(drawn: dict[str, Figure], folder: Path, formats: tuple[str, ...]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for name, fig in drawn.items():
        for ext in formats:
            saved.append(folder / f"{name}.{ext}")
            save_figure(saved[-1], fig, dpi=110)
    return saved


def _section(title: str, run: pd.Series | None, pngs: list[Path], out: Path) -> str:
    parts = [f"<h3>{html.escape(title)}</h3>"]
    if run is not None:
        parts.append("<p>" + html.escape(", ".join(_facts(run))) + "</p>")
    for png in pngs:
        data = base64.b64encode(png.read_bytes()).decode()
        name = html.escape(str(png.relative_to(out)))
        parts.append(f'<figure><img alt="{name}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{name}</figcaption></figure>")  # fmt: skip
    return "\n".join(parts)


def _facts(run: pd.Series) -> list[str]:
    """A run's settings and scores as a reader wants them: accuracies in %, toggles as k=v,
    nothing for what the run does not have (no validation split, no test score)."""
    facts = [f"{run[k]}" for k in ("run", "dataset") if _shown(run.get(k))]
    facts += [f"{k} {run[k]:g}" if k == "lr" else f"{k} {run[k]}"
              for k in ("optimizer", "lr", "schedule") if _shown(run.get(k))]  # fmt: skip
    if _shown(run.get("epochs_run")):
        facts.append(f"{int(run['epochs_run'])} epochs")
    facts += [f"{split} {run[f'{split}_accuracy']:.1%}" for split in ("train", "val", "test")
              if _shown(run.get(f"{split}_accuracy"))]  # fmt: skip
    if _shown(run.get("stop_reason")):
        facts.append(f"stopped: {run['stop_reason']}")
    toggles = json.loads(run["toggles"]) if _shown(run.get("toggles")) else {}
    facts += [f"{k}={v}" for k, v in sorted(toggles.items())]
    return facts


def _shown(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _index(tables: dict[str, pd.DataFrame], sections: list[str], skipped: list) -> str:
    body = ["<h1>Report</h1>"]
    for name, table in tables.items():
        body.append(f"<h2>{name} table</h2>")
        body.append(display(table).to_html(index=name == "ablation", na_rep="", border=0))
    if skipped:
        body.append("<h2>skipped</h2><ul>")
        body += [f"<li>{html.escape(p)}: {html.escape(r)}</li>" for p, r in skipped]
        body.append("</ul>")
    body.append("<h2>figures</h2>")
    body += sections
    return html_page("Report", "".join(body))
