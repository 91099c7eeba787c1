"""A study's tables: cells (mean ± std and a 95 % interval over seeds beside the study's
figure), the study's own layout of them, its verdicts, and the report they are written to
(markdown, CSV, HTML)."""

from __future__ import annotations

import html
import math
import statistics
from pathlib import Path

import pandas as pd

from reports.tables import html_page
from study_runner.stats import Difference, Estimate, compare, noise_floor
from study_runner.verdicts import summaries
from zoo.data.specs import DATASETS
from zoo.files import write_csv, write_text
from zoo.recipes import RunConfig
from zoo.runs import Run
from zoo.study.catalog import Study, Table, config


def test_images(cfg: RunConfig) -> int:
    """How many test images a run is scored on: its home dataset's test split, or
    `test_subset` of it (a fraction of each class, or images per class)."""
    spec = DATASETS[cfg.home_dataset]
    if cfg.test_subset is None:
        return spec.test
    if isinstance(cfg.test_subset, float):  # as zoo.data takes it: rounded up in each class
        return spec.classes * math.ceil(spec.test / spec.classes * cfg.test_subset)
    return min(spec.test, cfg.test_subset * spec.classes)


def scores_of(runs: dict[tuple[str, int], Run], score: str = "test") -> dict[str, list[float]]:
    """Run name -> the accuracy (`test`, or `test_tta`) of each of its seeds that was scored."""
    scores: dict[str, list[float]] = {}
    for (name, _), run in sorted(runs.items(), key=lambda item: item[0][1]):
        accuracy = run.metrics.get(score, {}).get("accuracy")
        if accuracy is not None and math.isfinite(accuracy):  # a diverged run's NaN: no score
            scores.setdefault(name, []).append(accuracy)
    return scores


def cells_of(
    study: Study, runs: dict[tuple[str, int], Run], budget: str,
    test_subset: float | int | None = None,
) -> pd.DataFrame:  # fmt: skip
    """One row per run of the study: seeds, mean, std and the 95 % t-interval of the mean
    (`low`, `high`), the test set's binomial noise floor at that mean (`floor`, a half-width),
    the test images, the chance level, the study's figure and the difference, the mean
    wall minutes of a seed; where the study scores with TTA the mean without (`plain`), and
    where it scores without, the mean with TTA of runs that tested with it (`tta`).
    `test_subset`: the study folder's (`study_test_subset`), which sets the test images."""
    scores = scores_of(runs, study.score)
    plain = scores_of(runs) if study.score != "test" else {}
    tta = scores_of(runs, "test_tta") if study.score == "test" else {}
    rows = []
    for run in study.runs:
        est = Estimate.of(scores.get(run.name, []))
        without, with_tta = plain.get(run.name), tta.get(run.name)
        cfg = config(study, run, budget, test_subset=test_subset)
        images = test_images(cfg)
        floor = noise_floor(est.mean, images) if est.seeds else math.nan
        walls = [r.metrics.get("wall_seconds") for (name, _), r in runs.items()
                 if name == run.name and r.metrics.get("wall_seconds") is not None]  # fmt: skip
        rows.append(dict(
            run=run.name, model=run.model, seeds=est.seeds, mean=est.mean, std=est.std,
            low=est.low, high=est.high, floor=floor, test_images=images,
            chance=1 / DATASETS[cfg.home_dataset].classes, study=run.reported,
            difference=est.mean - run.reported if run.reported else math.nan,
            minutes=statistics.fmean(walls) / 60 if walls else math.nan,
            plain=statistics.fmean(without) if without else math.nan,
            tta=statistics.fmean(with_tta) if with_tta else math.nan,
            extra=run.extra, note=run.note,
        ))  # fmt: skip
    return pd.DataFrame(rows).set_index("run")


def _text(cell: pd.Series, reference: tuple[str, Difference] | None, timed: bool = False) -> str:
    if not cell["seeds"]:
        return "not run"
    ours = f"{cell['mean']:.2%}"
    if cell["seeds"] > 1:
        ours += f" ± {cell['std']:.2%} [{cell['low']:.2%}, {cell['high']:.2%}] ({cell['seeds']})"
    parts = [ours]
    if not math.isnan(cell.get("plain", math.nan)):
        parts.append(f"without TTA {cell['plain']:.2%}")
    if not math.isnan(cell.get("tta", math.nan)):
        parts.append(f"with TTA {cell['tta']:.2%}")
    if timed and not math.isnan(cell["minutes"]):
        parts.append(f"{cell['minutes']:.1f} min a run")
    if not math.isnan(cell["study"] or math.nan):
        parts.append(f"study {cell['study']:.2%} ({cell['difference'] * 100:+.2f} points)")
    if reference is not None:
        name, diff = reference
        shown = f"{diff.mean * 100:+.2f}"
        if math.isnan(diff.low):
            parts.append(f"vs {name} {shown}: undecided (one seed)")
        else:
            span = f"[{diff.low * 100:+.2f}, {diff.high * 100:+.2f}]"
            verdict = ""
            if not diff.decided:
                needed = diff.seeds_needed
                verdict = ": undecided" + (f" (about {needed} seeds would decide it)" if needed
                                           else "")  # fmt: skip
            parts.append(f"vs {name} {shown} {span}{verdict}")
    if cell["extra"]:
        parts.append("zoo's own run")
    return "; ".join(parts)


def layout(table: Table, cells: pd.DataFrame, study: Study, budget: str) -> pd.DataFrame:
    """The table as the study laid it out; each cell: ours (mean ± std, the 95 % t-interval
    and the seeds), the study's figure and the difference, and, in a row of several cells,
    the difference from the row's first cell with its interval, marked undecided unless the
    interval excludes zero. The title gives the test set's noise floor."""
    frame = pd.DataFrame("", index=list(table.rows), columns=list(table.columns))
    for row in table.rows:
        first = next(
            (table.cells[(row, c)] for c in table.columns if (row, c) in table.cells), None
        )
        for column in table.columns:
            name = table.cells.get((row, column))
            if name is None:
                continue
            reference = None
            if first and first != name and cells.loc[name, "seeds"] and cells.loc[first, "seeds"]:
                reference = (
                    first,
                    compare(_estimate(cells.loc[name]), _estimate(cells.loc[first])),
                )
            frame.loc[row, column] = _text(cells.loc[name], reference, study.timed)
    frame.attrs["title"] = f"{table.title} — budget {budget}: {_scaling(study, budget)}" + _floor(
        cells.loc[[n for n in table.cells.values()]]
    )
    return frame


def _estimate(cell: pd.Series) -> Estimate:
    return Estimate.summary(cell["seeds"], cell["mean"], cell["std"])


def _floor(cells: pd.DataFrame) -> str:
    """The table's noise floor: the binomial half-width at its cells' accuracies."""
    ran = cells[cells["seeds"] > 0]
    if ran.empty:
        return ""
    low, high = ran["floor"].min() * 100, ran["floor"].max() * 100
    span = f"±{high:.2f}" if round(low, 2) == round(high, 2) else f"±{low:.2f} to ±{high:.2f}"
    images = ", ".join(f"{n:,}" for n in sorted(set(ran["test_images"])))
    return f"; test-set noise floor {span} points (95 % binomial, {images} test images)"


def _scaling(study: Study, budget: str) -> str:
    if budget == "full":
        return "the study's own settings"
    if budget == "smoke":
        return "a smoke test (1 epoch, 5 images per class): not a result"
    return study.scaling.get(budget, "")


def write_report(
    study: Study, budget: str, folder: Path, tables: dict[str, pd.DataFrame],
    cells: pd.DataFrame, figures: list[tuple[str, Path]], verdicts: pd.DataFrame | None = None,
) -> None:  # fmt: skip
    """Writes `folder/report`: README.md (verdicts, tables, figures), each table as CSV and
    HTML, cells.csv and verdicts.csv."""
    report = folder / "report"
    report.mkdir(parents=True, exist_ok=True)
    sections = [f"# {study.name}: {study.title}\n"]
    if verdicts is not None and not verdicts.empty:
        write_csv(report / "verdicts.csv", verdicts, index=False)
        sections.append(_verdicts_markdown(verdicts, budget))
    for name, frame in tables.items():
        write_csv(report / f"{name}.csv", frame)
        sections.append(f"## {frame.attrs['title']}\n\n{_markdown(frame)}\n")
        title = html.escape(frame.attrs["title"])
        table = frame.to_html(border=0, na_rep="")
        write_text(report / f"{name}.html", html_page(name, f"<h2>{title}</h2>\n{table}"))
    write_csv(report / "cells.csv", cells)
    for caption, path in figures:
        relative = path.relative_to(report).as_posix()
        sections.append(f"## {caption} — budget {budget}\n\n![{caption}]({relative})\n")
    write_text(report / "README.md", "\n".join(sections))
    write_text(report / "index.html", _index_html(study, budget, report, tables, figures, verdicts))


def _index_html(
    study: Study, budget: str, report: Path, tables: dict[str, pd.DataFrame],
    figures: list[tuple[str, Path]], verdicts: pd.DataFrame | None,
) -> str:  # fmt: skip
    """One page that shows the verdicts and every table, and links every file and figure."""
    e = html.escape
    body = [f"<h1>{e(study.name)}: {e(study.title)}</h1>"]
    links = [(f"{name}.csv", f"{name} (CSV)") for name in tables]
    links += [("cells.csv", "every cell (CSV)")]
    if verdicts is not None and not verdicts.empty:
        links.append(("verdicts.csv", "verdicts (CSV)"))
        body.append(f"<h2>The study's conclusions — budget {e(budget)}</h2><ul>")
        for verdict, text, evidence in summaries(verdicts):
            items = "".join(f"<li>{e(line)}</li>" for line in evidence)
            body.append(
                f"<li><b class='{e(verdict)}'>{e(verdict)}</b>: {e(text)}<ul>{items}</ul></li>"
            )
        body.append("</ul>")
    for frame in tables.values():
        body.append(f"<h2>{e(frame.attrs['title'])}</h2>")
        body.append(frame.to_html(border=0, na_rep=""))
    for caption, path in figures:
        relative = e(path.relative_to(report).as_posix())
        image = f"<img src='{relative}' alt='{e(caption)}'>"
        body.append(f"<h2>{e(caption)}</h2><a href='{relative}'>{image}</a>")
    if (report / "runs" / "index.html").is_file():
        links.append(("runs/index.html", "every run: curves, confusion matrix, filters"))
    body.append("<h2>Files</h2><ul>")
    body += [f"<li><a href='{e(href)}'>{e(text)}</a></li>" for href, text in links]
    body.append("</ul>")
    return html_page(f"{study.name} — {budget}", "".join(body))


def _verdicts_markdown(verdicts: pd.DataFrame, budget: str) -> str:
    lines = [
        f"## The study's conclusions — budget {budget}\n",
        "Each comparison's difference is in points, with its 95 % Welch t-interval over seeds "
        "(against a fixed level: the cell's t-interval widened by the test set's binomial "
        "noise); a conclusion is reproduced when every comparison's interval lies on its side "
        "of zero (inside the margin for ≈), refuted when one lies on the other side, undecided "
        "otherwise, and undecided where a compared net sits at chance and the study's did "
        "not.\n",
    ]
    for verdict, text, evidence in summaries(verdicts):
        lines.append(f"- **{verdict}**: {text}")
        lines += [f"  - {line}" for line in evidence]
    return "\n".join(lines) + "\n"


def _markdown(frame: pd.DataFrame) -> str:
    header = "| | " + " | ".join(frame.columns) + " |"
    rule = "|---" * (len(frame.columns) + 1) + "|"
    rows = [f"| {i} | " + " | ".join(str(v) for v in row) + " |" for i, row in frame.iterrows()]
    return "\n".join([header, rule, *rows])
