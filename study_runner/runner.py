"""A study as one command: train its missing runs through `zoo.train`, then lay out its tables.

The study runner sits above the library and its other applications: it reads the study as
data (`zoo.study.catalog`), trains through `zoo.train`, searches through `tuning` and draws
through `reports`; nothing below imports it.

    from study_runner import run_study
    result = run_study("S3", budget="cpu", seeds=2, data_dir="~/data", out="studies")
    result.tables["s3"]           # the study's layout: ours (mean ± std) against its figure

Runs go to `out/<study>-<budget>/runs`, named by their settings, so a rerun reuses finished runs
and resumes an interrupted one from its last finished epoch. Each run records its budget in
config.json (`RunConfig.budget`), and every table says which budget it shows.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from study_runner.tables import cells_of, layout, test_images, write_report
from study_runner.verdicts import summaries, verdicts
from zoo import runs as zoo_runs
from zoo.data.specs import DATASETS
from zoo.files import write_json
from zoo.recipes import RunConfig, recipe
from zoo.runs import Run
from zoo.study.catalog import (
    LANDSCAPE_BUDGETS,
    SEARCH_BUDGETS,
    Study,
    StudySearch,
    config,
    get_study,
)

# A run's time on 2 CPU cores: its arithmetic, its memory traffic (the values its layers
# write), its steps and a fixed start. The AMX rates are fitted to the measured cells in
# results/ (`python tools/fit_estimate.py` refits them; docs/studies.md says how close they
# come). AVX-512 BF16 and float32 keep zoo.bench's step rates, which include some traffic;
# their traffic rates are assumed: AMX's for bfloat16, half of it for float32 (twice the bytes).
CPU_FLOPS = {"amx": 1000e9, "avx512_bf16": 250e9, "float32": 150e9}
ACTIVATIONS_PER_SECOND = {"amx": 3.0e9, "avx512_bf16": 3.0e9, "float32": 1.5e9}
RUN_SECONDS = 12.0
# What a training step costs beyond its arithmetic (the step's dispatch, the callbacks, the
# input), which decides the small MNIST models' time: fitted to S2's runs (batch 32).
STEP_SECONDS = 0.004


def cpu_kind(precision: str, flags: set[str] | None = None) -> str:
    """Which `CPU_FLOPS` and `ACTIVATIONS_PER_SECOND` rates a run in `precision` gets on a CPU
    with these flags (default: this machine's)."""
    from zoo import machine

    flags = machine.cpu_flags() if flags is None else flags
    if precision != "mixed_bfloat16":
        return "float32"
    return "amx" if "amx_bf16" in flags else "avx512_bf16" if "avx512_bf16" in flags else "float32"


@dataclasses.dataclass
class StudyResult:
    """What `run_study` trained and wrote.

    Attributes:
        study: The study.
        budget: `smoke`, `cpu` or `full`.
        folder: `out/<study>-<budget>`: its runs and report.
        runs: `(run name, seed) -> zoo.train.Run`.
        tables: Table name -> the table as laid out (a DataFrame of text cells).
        cells: One row per cell: run, seeds, mean, std, interval, noise floor, the study's
            figure, the difference (`study_runner.tables.cells_of`).
        verdicts: One row per comparison behind each conclusion (`study_runner.verdicts`).
    """

    study: Study
    budget: str
    folder: Path
    runs: dict[tuple[str, int], Run]
    tables: dict[str, pd.DataFrame]
    cells: pd.DataFrame
    verdicts: pd.DataFrame


def estimate_seconds(
    study: Study, budget: str, seeds: int = 1, only: list[str] | None = None
) -> float:
    """Time to expect on 2 cores of this CPU, from each model's FLOPs and activations and its
    image counts: training (three forward passes' worth per image), each epoch's validation, and
    the final evaluation of train, val and test, at the `CPU_FLOPS` and
    `ACTIVATIONS_PER_SECOND` rates of this CPU and the run's precision, plus each step's and
    each run's fixed cost; for every run (or those named in `only`) and seed, and every point of the
    study's searches (not with `only`)."""
    runs = [run for run in study.runs if only is None or run.name in only]
    total = sum(_seconds(config(study, run, budget)) for run in runs) * seeds
    for search in study.searches if only is None else ():
        from tuning.spaces import get_space, hyperparameters

        scale = dict(SEARCH_BUDGETS[budget])
        points = min(len(search.reported), scale.pop("max_trials", len(search.reported)))
        cfg = dataclasses.replace(get_space(search.space)(hyperparameters(search.space)), **scale)
        total += points * _seconds(cfg)
    return total


def _passes(cfg: RunConfig) -> tuple[float, float]:
    """Images through the model, in forward passes (a training image counts 3: the forward
    pass and two gradients), and training steps, of one run."""
    spec = DATASETS[cfg.home_dataset]
    held = spec.val_split if cfg.val_split is None else cfg.val_split
    pool = spec.train
    if isinstance(cfg.subset, float):
        pool *= cfg.subset
    elif isinstance(cfg.subset, int):
        pool = min(pool, cfg.subset * spec.classes)
    images, val = pool * (1 - held), pool * held
    # Each epoch's validation, train and val at the end, test in each test-time view.
    views = {0: 1, 1: 2, 2: 6}[cfg.tta] + (1 if cfg.tta else 0)
    passes = 3 * images * cfg.epochs + val * (cfg.epochs + 1) + images + test_images(cfg) * views
    return passes, images * cfg.epochs / cfg.batch_size


def _seconds(cfg: RunConfig) -> float:
    import zoo
    from zoo.train import forward_activations, forward_flops

    passes, steps = _passes(cfg)
    shape = {}
    if cfg.image_size:
        channels = DATASETS[cfg.home_dataset].shape[2]
        shape = dict(input_shape=(cfg.image_size, cfg.image_size, channels))
    model = zoo.build(cfg.model, **shape, **cfg.model_kwargs)
    kind = cpu_kind(cfg.precision)
    compute = forward_flops(model) * passes / CPU_FLOPS[kind]
    traffic = forward_activations(model) * passes / ACTIVATIONS_PER_SECOND[kind]
    return compute + traffic + STEP_SECONDS * steps + RUN_SECONDS


def run_study(
    name: str,
    *,
    budget: str = "cpu",
    seeds: int = 1,
    data_dir: str | None = None,
    out: str | Path = "studies",
    only: list[str] | None = None,
    precision: str = "auto",
    test_subset: float | int | None = None,
    verbose: bool = True,
) -> StudyResult:
    """Trains every missing run of a study at a budget, then writes its tables.

    Args:
        name: `S0` ... `S5`.
        budget: `smoke` (seconds, for tests), `cpu` (scaled to train on 2 CPU cores, aimed
            at an hour with three seeds on the compared runs) or `full` (the study's own).
        seeds: Runs per configuration, seeds 0 ... seeds - 1.
        data_dir: Folder with the data (see `zoo.data.load`).
        out: Folder of study folders.
        only: Names of the runs to train (default all); the tables show what exists.
        precision: Keras dtype policy of every run; `auto` continues a study folder in the
            precision it was started with, and starts a new one in this machine's
            (`zoo.machine.auto_precision`). Another precision than a folder's is refused
            (`study_precision`), so one table never mixes precisions.
        test_subset: Score every run on this part of the test set (a fraction, or images per
            class) instead of the budget's; recorded like the precision (`study_test_subset`),
            so a table never mixes test sets. Each cell's noise floor widens to match.
        verbose: Print each run's result.

    Returns:
        The `StudyResult`.

    Raises:
        ValueError: Unknown study or budget, or seeds < 1.
        KeyError: Unknown run name (listing the study's runs).
    """
    from zoo.train import train

    study = get_study(name)
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}.")
    wanted = [study.run(n) for n in only] if only else list(study.runs)
    folder = Path(out) / f"{study.name}-{budget}"
    precision = study_precision(folder, precision)
    test_subset = study_test_subset(folder, test_subset)
    runs: dict[tuple[str, int], Run] = {}
    for seed in range(seeds):
        for run in wanted:
            cfg = config(study, run, budget, seed=seed, data_dir=data_dir, precision=precision,
                         test_subset=test_subset)  # fmt: skip
            done = train(cfg, folder / "runs", verbose=0)
            runs[(run.name, seed)] = done
            if verbose:
                accuracy = done.metrics.get(study.score, {}).get("accuracy")
                shown = f"{accuracy:.2%}" if accuracy is not None else "no score"
                shown = f"{study.score.replace('_', ' ')} {shown}"
                where = done.path.name + ("" if done.trained else ", finished earlier: read back")
                print(f"{study.name} {run.name} seed {seed}: {shown} ({where})")
    # The tables show every finished run of the study in its folder, so a rerun of some runs
    # (--only) or of fewer seeds keeps the rest.
    runs = {**_finished_runs(study, budget, folder, precision, test_subset), **runs}
    cells = cells_of(study, runs, budget, test_subset)
    judged = verdicts(study, cells)
    tables = {t.name: layout(t, cells, study, budget) for t in study.tables}
    for frame in tables.values():  # which precision every cell trained in
        frame.attrs["title"] += f"; precision {precision}"
    # The tables first: figures train more.
    write_report(study, budget, folder, tables, cells, [], judged)
    # Like the figures, searches are not part of a run subset: --only shows those run before.
    for search in study.searches:
        frame = search_table(study, search, budget, folder, data_dir, verbose, precision,
                             run=not only)  # fmt: skip
        if frame is not None:
            tables[frame.attrs["name"]] = frame
    write_report(study, budget, folder, tables, cells, [], judged)
    # With --only the figures are not drawn, but those drawn before stay in the report.
    figures = landscape_figures(
        study, budget, folder, data_dir, verbose, draw=not only, precision=precision
    )
    # Each run's curves, confusion matrix and first-layer filters, as `python -m reports` draws,
    # before the last write of the report, whose index links them.
    from reports.build import build as build_report

    build_report([str(folder / "runs")], folder / "report" / "runs", verbose=False)
    write_report(study, budget, folder, tables, cells, figures, judged)
    if verbose:
        for verdict, text, evidence in summaries(judged):
            print(f"{study.name}: {verdict}: {text}")
            for line in evidence:
                print(f"    {line}")
        print(f"{folder}: {len(runs)} runs; tables in {folder / 'report'}")
    return StudyResult(study, budget, folder, runs, tables, cells, judged)


def _finished_runs(
    study: Study, budget: str, folder: Path, precision: str,
    test_subset: float | int | None = None,
) -> dict[tuple[str, int], Run]:  # fmt: skip
    """Every finished run of the study in `folder`, read back: seeds 0, 1, ... while found."""
    found = {}
    for run in study.runs:
        for seed in range(10_000):
            cfg = config(study, run, budget, seed=seed, precision=precision,
                         test_subset=test_subset)  # fmt: skip
            path = zoo_runs.find(cfg, folder / "runs")
            if path is None:
                break
            found[(run.name, seed)] = Run.read(path, trained=False)
    return found


def study_precision(folder: Path, precision: str = "auto") -> str:
    """The precision a study folder trains in, recorded in its study.json.

    `auto` keeps the recorded one; a folder from before study.json keeps its runs' (all
    float32 then); a new folder takes this machine's. A study folder holds one precision, so
    its tables and searches never mix two: another is refused, naming the folder's.

    Raises:
        ValueError: An unknown precision, or one other than the folder's.
    """
    from zoo import machine

    record = folder / "study.json"
    kept = None
    if record.is_file():
        kept = json.loads(record.read_text()).get("precision")
    elif zoo_runs.folders_in(folder / "runs"):
        kept = "float32"  # written before the `auto` default
    chosen = machine.resolve_precision(kept if precision == "auto" and kept else precision)
    if kept and chosen != kept:
        raise ValueError(
            f"{folder} holds a study trained in {kept}; continue it with --precision auto or "
            f"{kept}, or give --out another folder for {chosen}."
        )
    if not record.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        write_json(record, {"precision": chosen})
    return chosen


def study_test_subset(folder: Path, test_subset: float | int | None = None) -> float | int | None:
    """The test set a study folder scores its runs on, recorded in its study.json: None for
    the budget's own, else a fraction or images per class (`--test-subset`).

    None keeps the recorded one; a folder without a record scored on the budget's. Another
    is refused, naming the folder's, so one table never compares runs scored on two test sets.

    Raises:
        ValueError: A test subset other than the folder's.
    """
    record = folder / "study.json"
    saved = json.loads(record.read_text()) if record.is_file() else {}
    kept = saved.get("test_subset")
    began = "test_subset" in saved or bool(zoo_runs.folders_in(folder / "runs"))
    if test_subset is None or test_subset == kept:
        chosen = kept
    elif began:
        held = "the budget's test set" if kept is None else f"--test-subset {kept}"
        raise ValueError(
            f"{folder} holds a study scored on {held}; continue it with that, or give --out "
            f"another folder for --test-subset {test_subset}."
        )
    else:
        chosen = test_subset
    if "test_subset" not in saved:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(record, {**saved, "test_subset": chosen})
    return chosen


def search_table(
    study: Study,
    search: StudySearch,
    budget: str,
    folder: Path,
    data_dir: str | None = None,
    verbose: bool = True,
    precision: str = "auto",
    run: bool = True,
) -> pd.DataFrame | None:
    """Runs (or continues) one of the study's searches through `tuning`, as a grid, into
    `folder/searches`, and lays out its points beside the study's scores.

    Args:
        run: False: lay out the trials the search has (None if it has none), training none.

    Returns:
        One row per point of the study's grid: the study's accuracy, ours (the trial's best
        validation accuracy), the difference, and which point each side would pick.
    """
    from tuning import run_search, trials

    project = folder / "searches" / f"{search.space}-grid"
    if run:
        result = run_search(
            search.space, folder / "searches", tuner="grid", data_dir=data_dir,
            precision=precision, verbose=False, **SEARCH_BUDGETS[budget],
        )  # fmt: skip
        table, project = result.trials, result.path
    elif any(project.glob("trial_*/trial.json")):
        table = trials(project)
    else:
        return None
    done = table[table["status"] == "COMPLETED"]
    ours: dict[tuple[Any, ...], float] = {}
    for _, trial in done.iterrows():
        point = next((p for p in search.reported if _same(p, trial, search.keys)), None)
        if point is not None and trial["val_accuracy"] is not None:
            ours[point] = float(trial["val_accuracy"])
    # Every point at our best score: a validation split of 1,000 images ties points often.
    top = max(ours.values(), default=None)
    best = [p for p, v in ours.items() if v == top]
    ours_label = "our best" if len(best) == 1 else f"our best ({len(best)} tied)"
    rows = []
    for point, reported in search.reported.items():
        mine = ours.get(point)
        notes = ["the study's choice"] if point == search.chose else []
        notes += [ours_label] if point in best else []
        rows.append({
            "study (test)": f"{reported:.2%}",
            "ours (val)": "not run" if mine is None else f"{mine:.2%}",
            "difference": "" if mine is None else f"{(mine - reported) * 100:+.2f} points",
            "": ", ".join(notes),
        })  # fmt: skip
    index = [", ".join(f"{k} {v:g}" for k, v in zip(search.keys, p, strict=True))
             for p in search.reported]  # fmt: skip
    frame = pd.DataFrame(rows, index=index)
    frame.attrs["name"] = f"search-{search.space}"
    frame.attrs["title"] = (
        f"{study.name}'s search {search.space}: {len(ours)} of {len(search.reported)} points "
        f"(a grid through tuning, {project.name}) — budget {budget}: "
        + _search_scaling(budget)
        + f"; precision {precision}"
    )
    if verbose:
        shown = "; ".join(
            ", ".join(f"{k} {v:g}" for k, v in zip(search.keys, p, strict=True)) for p in best
        )
        print(f"{study.name} search {search.space}: {len(ours)} points, our best {shown or '-'}")
    return frame


def _same(point: tuple[Any, ...], trial: pd.Series, keys: tuple[str, ...]) -> bool:
    return all(
        key in trial and trial[key] is not None and math.isclose(float(trial[key]), float(value))
        for key, value in zip(keys, point, strict=True)
    )


def _search_scaling(budget: str) -> str:
    settings = SEARCH_BUDGETS[budget]
    if not settings:
        return "the study's own search settings"
    return "a smoke test (" + ", ".join(f"{k} {v}" for k, v in settings.items()) + "): not a result"


def landscape_figures(
    study: Study,
    budget: str,
    folder: Path,
    data_dir: str | None = None,
    verbose: bool = True,
    draw: bool = True,
    precision: str = "auto",
) -> list[tuple[str, Path]]:
    """Draws the study's loss band (`reports.landscape`) and, beside it, Santurkar et al.'s
    probes of the same pair (`reports.smoothness`), scaled by `LANDSCAPE_BUDGETS` and the
    study's own width scaling, into `folder/report`. Returns (caption, figure) pairs; with
    `draw` False, only those of figures already drawn.

    The band's runs are reused as any run is; the probes are redrawn only when their settings
    changed (`probes.json` records them).
    """
    band = study.landscape
    if band is None:
        return []
    pair = f"{band.model} against " + ", ".join(f"{k}={v}" for k, v in band.compare.items())
    lrs = ", ".join(f"{lr:g}" for lr in band.lrs)
    report = folder / "report"
    figures = [
        (f"Training loss range over lr {lrs}, {pair}", report / "landscape" / "landscape.png"),
        (f"Loss and gradient probes along the training path (Santurkar et al.), {pair}",
         report / "smoothness" / "smoothness.png"),
    ]  # fmt: skip
    if not draw:
        return [(caption, path) for caption, path in figures if path.exists()]
    from reports.landscape import study_landscape
    from reports.smoothness import smoothness

    scale = dict(LANDSCAPE_BUDGETS[budget])
    steps, every = scale.pop("steps"), scale.pop("every")
    toggles = dict(study.budgets.get(budget, {}).get("toggles", {}))
    base = recipe(band.model)
    study_landscape(
        band.model, band.compare, lrs=band.lrs, out=report / "landscape", verbose=verbose,
        data_dir=data_dir, budget=budget, model_kwargs={**base.model_kwargs, **toggles},
        precision=precision, **scale,
    )  # fmt: skip
    # The probes are float32 whatever the study's precision (see `reports.smoothness`).
    probes = dict(steps=steps, every=every, subset=scale.get("subset"), toggles=toggles,
                  batch_size=scale.get("batch_size"), data_dir=data_dir)  # fmt: skip
    # Compared as JSON reads them back (tuples become lists), with what else decides the probes.
    wanted = json.loads(json.dumps({**probes, "model": band.model, "compare": band.compare,
                                    "budget": budget}))  # fmt: skip
    record = report / "smoothness" / "probes.json"
    if not (record.exists() and json.loads(record.read_text()) == wanted):
        smoothness(band.model, band.compare, out=report / "smoothness", verbose=verbose,
                   **probes)  # fmt: skip
        record.parent.mkdir(parents=True, exist_ok=True)
        write_json(record, wanted)
    return figures
