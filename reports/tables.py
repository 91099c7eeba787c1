"""Accuracy tables from the runs' DataFrame, written as Markdown, CSV, LaTeX and HTML."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from zoo.files import write_csv, write_text

# The accuracy table's columns, in order, with their printed names.
COLUMNS = {
    "model": "model",
    "variant": "variant",
    "dataset": "dataset",
    "seed": "seed",
    "params": "params",
    "precision": "precision",
    "epochs_run": "epochs",
    "train_accuracy": "train acc.",
    "val_accuracy": "val acc.",
    "test_accuracy": "test acc.",
    "study": "study",
    "study_test_accuracy": "study's test acc.",
    "seconds": "training (s)",
    "images_per_second": "images/s",
    "run": "run",
}


def accuracy_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: model, variant, params, train / val / test accuracy, the study's figure."""
    table = runs.sort_values(["model", "variant", "seed", "run"])[list(COLUMNS)]
    return table.rename(columns=COLUMNS).reset_index(drop=True)


def ablation_table(
    runs: pd.DataFrame, rows: str = "model", value: str = "test_accuracy"
) -> pd.DataFrame:
    """Pivot of `value`: `rows` down (model, or a toggle such as depth), variants across.

    Cells are `mean ± std (n)` over the runs (seeds) that share a row and a variant, or the
    single value when one run did.

    Raises:
        KeyError: `rows` or `value` is not a column or toggle of the runs.
    """
    frame = _with_toggle(runs, rows)
    if value not in frame:
        raise KeyError(f"No column {value!r}; columns: {', '.join(frame.columns)}.")
    if rows != "model":  # the row toggle is not part of the column's variant
        frame["variant"] = [_drop(v, rows) for v in frame["variant"]]
    if "settings" in frame:
        frame["variant"] = _tell_apart(frame, rows)
    cells = frame.groupby([rows, "variant"])[value].agg(["mean", "std", "count"])
    percent = value.endswith("accuracy")
    text = cells.apply(_cell, axis=1, percent=percent).unstack("variant").fillna("")
    order = ["baseline"] + sorted(c for c in text.columns if c != "baseline")
    return text[[c for c in order if c in text.columns]]


def _tell_apart(frame: pd.DataFrame, rows: str) -> list[str]:
    """Variant labels that also name the settings (epochs, subset, ...) in which runs of one
    cell differ, so that a cell averages only runs that differ in nothing but the seed."""
    labels = list(frame["variant"])
    for _, group in frame.groupby([rows, "variant"]):
        if group["settings"].nunique() < 2:
            continue
        settings = {i: json.loads(text) for i, text in group["settings"].items()}
        names = {k for s in settings.values() for k in s}
        keys = sorted(
            k for k in names
            if len({json.dumps(s.get(k), default=str) for s in settings.values()}) > 1
        )  # fmt: skip
        for i, s in settings.items():
            position = frame.index.get_loc(i)
            extra = ", ".join(f"{k}={s.get(k)}" for k in keys)
            labels[position] = f"{labels[position]} [{extra}]"
    return labels


def _with_toggle(runs: pd.DataFrame, name: str) -> pd.DataFrame:
    frame = runs.copy()
    if name in frame:
        return frame
    values = [json.loads(t).get(name) for t in frame["toggles"]]
    if all(v is None for v in values):
        raise KeyError(f"No column or toggle {name!r} in these runs.")
    frame[name] = ["(default)" if v is None else str(v) for v in values]
    return frame


def _drop(label: str, toggle: str) -> str:
    parts = [p for p in label.split("+") if p != toggle and not p.startswith(f"{toggle}=")]
    return "+".join(parts) or "baseline"


def _cell(stats: pd.Series, percent: bool = False) -> str:
    """`mean ± std (n)`: accuracies in % with one decimal, the std in points; losses as they are."""
    if not np.isfinite(stats["mean"]):
        return "–"
    if percent:
        mean, std = f"{stats['mean']:.1%}", f"{stats['std'] * 100:.1f}"
    else:
        mean, std = f"{stats['mean']:.4f}", f"{stats['std']:.4f}"
    if stats["count"] > 1 and np.isfinite(stats["std"]):
        return f"{mean} ± {std} ({int(stats['count'])})"
    return mean


def display(table: pd.DataFrame) -> pd.DataFrame:
    """The table as a reader sees it: accuracies in % with one decimal, counts with thousands
    separators, seconds with one decimal, and nothing where a value is missing."""
    shown = table.copy()
    for column in shown.columns:
        values = shown[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            shown[column] = values.map(lambda v: "" if v is None or v is np.nan else v)
            continue
        if "acc." in str(column):
            form = "{:.1%}".format
        elif pd.api.types.is_integer_dtype(values) or column in ("params", "images/s"):
            form = "{:,.0f}".format
        else:
            form = "{:,.1f}".format
        shown[column] = values.map(lambda v, f=form: "" if pd.isna(v) else f(v))
    return shown


def to_markdown(table: pd.DataFrame, index: bool = False) -> str:
    """A GitHub Markdown table (pandas' own needs the optional tabulate package)."""
    frame = table.reset_index() if index else table
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_text(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join([header, rule, *body]) + "\n"


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def write_table(table: pd.DataFrame, out: Path, name: str, index: bool = False) -> list[Path]:
    """Writes `name`.md, .csv, .tex and .html into `out`; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.{ext}" for ext in ("md", "csv", "tex", "html")]
    shown = display(table)
    write_text(paths[0], to_markdown(shown, index))
    write_csv(paths[1], table, index=index)
    write_text(paths[2], shown.to_latex(index=index, na_rep=""))
    write_text(paths[3], html_page(name, shown.to_html(index=index, na_rep="", border=0)))
    return paths


STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:90em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top}img{max-width:100%}"
    ".reproduced{color:#176117}.refuted{color:#a3161f}.undecided{color:#6b5600}"
)


def html_page(title: str, body: str) -> str:
    """A whole HTML page with the reports' small stylesheet around `body`."""
    import html

    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )
