"""A study's tables: cells (mean ± std over seeds beside the study's figure), the study's own
layout of them, and the report they are written to (markdown, CSV, HTML)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pandas as pd

from zoo.files import write_csv, write_text
from zoo.runs import Run
from zoo.study.catalog import Study, Table


def cells_of(study: Study, runs: dict[tuple[str, int], Run]) -> pd.DataFrame:
    rows = []
    for run in study.runs:
        scores = [
            r.metrics["test"]["accuracy"]
            for (name, _), r in runs.items()
            if name == run.name and "test" in r.metrics
        ]
        mean = statistics.fmean(scores) if scores else math.nan
        std = statistics.stdev(scores) if len(scores) > 1 else math.nan
        rows.append(dict(
            run=run.name, model=run.model, seeds=len(scores), mean=mean, std=std,
            study=run.reported, difference=mean - run.reported if run.reported else math.nan,
            extra=run.extra, note=run.note,
        ))  # fmt: skip
    return pd.DataFrame(rows).set_index("run")


def within_spread(a: pd.Series, b: pd.Series) -> bool:
    """Whether two cells' means differ by no more than their spreads (one std each) add up
    to: a difference a rerun could undo. Cells of one run have no spread to judge by."""
    if a["seeds"] < 2 or b["seeds"] < 2:
        return False
    return abs(a["mean"] - b["mean"]) <= a["std"] + b["std"]


def _text(cell: pd.Series, reference: pd.Series | None) -> str:
    if not cell["seeds"]:
        return "not run"
    ours = f"{cell['mean']:.2%}"
    if cell["seeds"] > 1:
        ours += f" ± {cell['std']:.2%} ({cell['seeds']})"
    parts = [ours]
    if not math.isnan(cell["study"] or math.nan):
        parts.append(f"study {cell['study']:.2%} ({cell['difference']:+.2%})")
    if reference is not None and within_spread(cell, reference):
        parts.append(f"≈ {reference.name} (within spread)")
    if cell["extra"]:
        parts.append("zoo's own run")
    return "; ".join(parts)


def layout(table: Table, cells: pd.DataFrame, study: Study, budget: str) -> pd.DataFrame:
    """The table as the study laid it out; each cell: ours (mean ± std, seeds), the study's
    figure and the difference, and `≈` where it lies within the spread of the row's first cell.
    """
    frame = pd.DataFrame("", index=list(table.rows), columns=list(table.columns))
    for row in table.rows:
        first = next(
            (table.cells[(row, c)] for c in table.columns if (row, c) in table.cells), None
        )
        for column in table.columns:
            name = table.cells.get((row, column))
            if name is None:
                continue
            reference = cells.loc[first] if first and first != name else None
            frame.loc[row, column] = _text(cells.loc[name], reference)
    frame.attrs["title"] = f"{table.title} — budget {budget}: {_scaling(study, budget)}"
    return frame


def _scaling(study: Study, budget: str) -> str:
    if budget == "full":
        return "the study's own settings"
    if budget == "smoke":
        return "a smoke test (1 epoch, 5 images per class): not a result"
    return study.scaling.get(budget, "")


def write_report(
    study: Study, budget: str, folder: Path, tables: dict[str, pd.DataFrame],
    cells: pd.DataFrame, figures: list[tuple[str, Path]],
) -> None:  # fmt: skip
    report = folder / "report"
    report.mkdir(parents=True, exist_ok=True)
    sections = [f"# {study.name}: {study.title}\n"]
    for name, frame in tables.items():
        write_csv(report / f"{name}.csv", frame)
        sections.append(f"## {frame.attrs['title']}\n\n{_markdown(frame)}\n")
        write_text(report / f"{name}.html",
                   f"<h2>{frame.attrs['title']}</h2>\n" + frame.to_html(border=0))  # fmt: skip
    write_csv(report / "cells.csv", cells)
    for caption, path in figures:
        relative = path.relative_to(report).as_posix()
        sections.append(f"## {caption} — budget {budget}\n\n![{caption}]({relative})\n")
    write_text(report / "README.md", "\n".join(sections))


def _markdown(frame: pd.DataFrame) -> str:
    header = "| | " + " | ".join(frame.columns) + " |"
    rule = "|---" * (len(frame.columns) + 1) + "|"
    rows = [f"| {i} | " + " | ".join(str(v) for v in row) + " |" for i, row in frame.iterrows()]
    return "\n".join([header, rule, *rows])
