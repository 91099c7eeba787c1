"""The studies as commands: definitions, budgets, the S3 layout, and one study end to end."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study_runner import estimate_seconds, layout, runner
from study_runner.runner import landscape_figures
from study_runner.tables import cells_of as _cells
from zoo import files
from zoo.recipes import recipe
from zoo.study import STUDIES, config, get_study
from zoo.study.__main__ import main


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STUDIES))
def test_every_study_resolves_and_builds_every_run_at_every_budget(name, monkeypatch):
    study = STUDIES[name]
    for budget in ("smoke", "cpu", "full"):
        for run in study.runs:
            cfg = config(study, run, budget, seed=1)
            assert cfg.budget == budget and cfg.seed == 1 and cfg.model == run.model
    # Building every model is how the estimate counts FLOPs and activations. The cpu budget's
    # goal: an hour on 2 cores of an AMX Xeon, with 3 seeds on the runs the conclusions compare.
    # S1 and S4 were re-planned to it on 2026-12-07: S1 estimated 39 min and took 43, S4
    # estimated 52 and took 68 (docs/studies.md), then took 54 on 10 % of the images (37
    # estimated). S0 sits at its edge; S3 overshoots it. These bounds, a tenth over each
    # study's estimate, keep any budget from growing unnoticed.
    monkeypatch.setattr(runner, "cpu_kind", lambda precision, flags=None: "amx")
    cpu, full = estimate_seconds(study, "cpu"), estimate_seconds(study, "full")
    seeded = cpu + 2 * estimate_seconds(study, "cpu", only=study.compared())
    assert 0 < cpu <= seeded and cpu <= full
    if name == "S5":  # S5's goal is per run: half an hour on a 2-core CPU. Its runs took
        # their estimate on a quiet machine (15.2 and 16.3 min against 16.6 at 16 epochs) since
        # GELU became one kernel, 1.6 times it before; 1.25 covers the seed that shared the
        # cores (19.2 min, docs/studies/S5.md).
        assert all(1.25 * estimate_seconds(study, "cpu", only=[r.name]) <= 30 * 60
                   for r in study.runs)  # fmt: skip
    else:
        assert seeded <= {"S0": 65, "S1": 43, "S2": 28, "S3": 76, "S4": 41}[name] * 60
    for table in study.tables:
        assert set(table.cells.values()) <= {run.name for run in study.runs}


def test_every_run_of_a_study_gets_the_same_scaling():
    study = STUDIES["S3"]
    configs = [config(study, run, "cpu") for run in study.runs]
    scaling = {(c.subset, c.epochs, c.lr_patience, c.lr_min_delta, c.model_kwargs["width"])
               for c in configs}  # fmt: skip
    assert scaling == {(100, 6, 0, 0.005, 0.25)}


def test_s3_has_its_thirteen_cells_in_its_layout():
    (table,) = STUDIES["S3"].tables
    assert table.rows == ("short", "mid", "long")
    assert table.columns[:6] == ("baseline", "+decay", "+norm", "+dropout", "+residual", "+all")
    study_cells = {k: v for k, v in table.cells.items() if not get_study("S3").run(v).extra}
    assert len(study_cells) == 13
    # The zoo's own column, labelled so: a decay that acts within the cpu budget's 4 epochs.
    assert table.columns[6:] == ("+cosine",)
    s3 = get_study("S3")
    assert all(s3.run(table.cells[(d, "+cosine")]).extra for d in ("short", "long"))
    assert {c for r, c in table.cells if r == "mid"} == {"+all"}  # S3 ran mid with all only
    assert get_study("s3").run("short +all").reported == 0.4302


def _runs(scores: dict[str, list[float]]) -> dict[tuple[str, int], types.SimpleNamespace]:
    """Hand-made runs: what run_study collects, with chosen test accuracies."""
    return {
        (name, seed): types.SimpleNamespace(
            metrics={"test": {"accuracy": score}, "wall_seconds": 60.0}
        )  # fmt: skip
        for name, seeds in scores.items()
        for seed, score in enumerate(seeds)
    }


def test_cells_have_intervals_and_a_row_compares_with_its_first_cell():
    study = STUDIES["S3"]
    runs = _runs({
        "short baseline": [0.30, 0.32, 0.34], "short +norm": [0.31, 0.33, 0.35],  # undecided
        "short +all": [0.45, 0.47, 0.49], "long baseline": [0.20],  # one seed: no interval
    })  # fmt: skip
    cells = _cells(study, runs, "cpu")
    base = cells.loc["short baseline"]
    assert base["mean"] == pytest.approx(0.32) and base["std"] == pytest.approx(0.02)
    # t(2) = 4.3027: 0.32 ± 4.3027 · 0.02 / √3
    assert (base["low"], base["high"]) == pytest.approx(
        (0.32 - 0.049683, 0.32 + 0.049683), abs=1e-6
    )
    # S3 tests on Tiny ImageNet's 10,000 validation images: 1.96 · √(0.32 · 0.68 / 10,000)
    assert base["floor"] == pytest.approx(0.009143, abs=1e-6) and base["test_images"] == 10_000
    assert base["difference"] == pytest.approx(0.32 - 0.2271)
    assert math.isnan(cells.loc["long baseline", "low"])
    (table,) = study.tables
    frame = layout(table, cells, study, "cpu")
    assert frame.loc["short", "+norm"].startswith("33.00% ± 2.00% [28.03%, 37.97%] (3)")
    assert "vs short baseline +1.00 [" in frame.loc["short", "+norm"]
    assert frame.loc["short", "+norm"].endswith(": undecided (about 64 seeds would decide it)")
    assert "vs short baseline +15.00 [+10.47, +19.53]" in frame.loc["short", "+all"]
    assert "undecided" not in frame.loc["short", "+all"]
    assert frame.loc["long", "baseline"].startswith("20.00%; study 14.07% (+5.93 points)")
    assert frame.loc["mid", "+dropout"] == ""  # no such run in S3
    assert frame.loc["short", "+decay"] == "not run"
    assert "budget cpu" in frame.attrs["title"]
    assert "test-set noise floor ±0.78 to ±0.98 points" in frame.attrs["title"]
    assert math.isnan(cells.loc["short +decay", "mean"])


def test_every_conclusion_names_cells_of_its_study():
    assert all(study.conclusions for name, study in STUDIES.items())
    for study in STUDIES.values():
        for conclusion in study.conclusions:
            assert conclusion.claims
            for claim in conclusion.claims:
                study.run(claim.a)  # KeyError, naming the study's runs, if not
                if isinstance(claim.b, str):
                    study.run(claim.b)
                else:
                    assert 0 < claim.b < 1
                assert claim.relation in (">", "<", "≈") and (claim.margin > 0) == (
                    claim.relation == "≈"
                )


class _Killed(BaseException):
    """Stands for a kill."""


@pytest.mark.slow
def test_a_study_end_to_end_killed_midway_and_continued(data_dir, tmp_path, monkeypatch, capsys):
    real = files._replace

    def killed(tmp: Path, path: Path) -> None:
        # The kill point: LeNet's first history.csv write, the end of its first epoch, once the
        # six MLP runs before it have finished.
        if path.name == "history.csv" and path.parent.name.startswith("lenet-"):
            raise _Killed
        real(tmp, path)

    common = ["S2", "--budget", "smoke", "--data-dir", str(data_dir), "--out", str(tmp_path)]
    with monkeypatch.context() as m:
        m.setattr(files, "_replace", killed)
        with pytest.raises(_Killed):
            main(common)
    runs = tmp_path / "S2-smoke" / "runs"
    finished = {p.parent.name: p.stat().st_mtime_ns for p in runs.glob("*/metrics.json")}
    # Killed after the MLP runs (five folders: "MLP" and "MLP, leaky_relu" name the same run,
    # leaky ReLU being the MLP's default), before LeNet's first epoch ended.
    assert len(finished) == 5 and all(n.startswith("mlp_mnist-") for n in finished)
    assert main(common) == 0
    after = {p.parent.name: p.stat().st_mtime_ns for p in runs.glob("*/metrics.json")}
    assert {k: after[k] for k in finished} == finished  # reused, not retrained
    assert len(after) == 6  # and LeNet
    report = tmp_path / "S2-smoke" / "report"
    table = pd.read_csv(report / "s2.csv", index_col=0)
    assert list(table.index) == [r.name for r in STUDIES["S2"].runs]
    assert "study 98.36%" in table.loc["LeNet", "test"]
    text = (report / "README.md").read_text()
    assert "budget smoke" in text and "not a result" in text
    assert (report / "runs" / "index.html").is_file()  # each run's figures
    cells = pd.read_csv(report / "cells.csv")
    assert {"run", "seeds", "mean", "std", "study", "difference"} <= set(cells.columns)
    # S2's grid and gamma sweep, through tuning: at smoke, two points of each.
    grid = pd.read_csv(report / "search-mlp_mnist.csv", index_col=0, keep_default_na=False)
    assert len(grid) == 27 and (grid["ours (val)"] != "not run").sum() == 2
    chosen = grid.loc["lr 0.1, hidden 1000, weight_decay 0.001"]
    assert chosen["study (test)"] == "95.95%" and "the study's choice" in chosen.iloc[-1]
    assert (tmp_path / "S2-smoke" / "searches" / "mlp_mnist-grid" / "trials.csv").is_file()
    index = (report / "index.html").read_text()  # one page that links every table and figure
    assert all(f"href='{f}'" in index for f in ("s2.csv", "cells.csv", "runs/index.html"))
    assert "<h2>S2: " in index and "<table" in index
    for page in report.rglob("*.html"):  # what a reader sees: no None, nan or dict
        shown = re.sub(r"<[^>]+>", " ", page.read_text())
        assert not re.search(r"\b(None|nan|NaN)\b|\{'", shown), page
    gamma = pd.read_csv(report / "search-mlp_mnist_gamma.csv", index_col=0)
    assert list(gamma.index) == ["gamma 1", "gamma 0.5", "gamma 0.1", "gamma 0.05"]
    assert "search mlp_mnist_gamma: 2 of 4 points" in text
    # Rerunning one run keeps the others' cells and both searches in the report.
    before = table
    assert main([*common, "--only", "LeNet"]) == 0
    table = pd.read_csv(report / "s2.csv", index_col=0)
    assert (table.fillna("") == before.fillna("")).all().all()
    assert not table.apply(lambda c: c.astype(str).str.contains("not run")).any().any()
    text = (report / "README.md").read_text()
    assert "search mlp_mnist: 2 of 27" in text and "search mlp_mnist_gamma: 2 of 4" in text
    # One seed decides nothing; a second on the compared runs gives every comparison its interval.
    assert "## The study's conclusions — budget smoke" in text
    assert "(1 v 1 seeds) — undecided, needs 2 or more seeds per cell" in text
    assert main([*common, "--compared", "--seeds", "2"]) == 0
    verdicts = pd.read_csv(report / "verdicts.csv")
    assert list(verdicts["conclusion"].unique()) == [c.text for c in STUDIES["S2"].conclusions]
    assert set(verdicts["seeds_a"]) == {2} and verdicts["low"].notna().all()
    assert set(verdicts["verdict"]) <= {"reproduced", "refuted", "undecided"}
    cells = pd.read_csv(report / "cells.csv", index_col=0)
    assert cells.loc["LeNet", "seeds"] == 2 and cells.loc["MLP, sigmoid", "seeds"] == 1
    assert {"low", "high", "floor", "test_images", "minutes"} <= set(cells.columns)


def test_study_misuse_is_one_line(capsys):
    cases = ((["S9"], "Unknown study 'S9'"), (["S3", "--only", "short"], "S3 has no run 'short'"),
             (["S3", "--seeds", "0"], "--seeds: expected a whole number"),
             (["S3", "--compared", "--only", "short +all"], "not allowed with argument"),
             (["--compared"], "--compared needs a STUDY"))  # fmt: skip
    for args, message in cases:
        with pytest.raises(SystemExit) as stop:
            main([*args, "--budget", "smoke"])
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err


@pytest.mark.slow  # six airbench runs with TTA: half a minute, like the other study runs
def test_s5_end_to_end_at_smoke_scores_with_tta_and_times_each_rung(data_dir, tmp_path, capsys):
    from study_runner import run_study

    result = run_study("S5", budget="smoke", data_dir=str(data_dir), out=str(tmp_path))
    assert [name for name, _ in result.runs] == [run.name for run in STUDIES["S5"].runs]
    for (name, _), run in result.runs.items():  # the cell: TTA accuracy, the plain one beside
        cell = result.cells.loc[name]
        assert cell["mean"] == pytest.approx(run.metrics["test_tta"]["accuracy"])
        assert cell["plain"] == pytest.approx(run.metrics["test"]["accuracy"])
        assert cell["minutes"] == pytest.approx(run.metrics["wall_seconds"] / 60)
    # Each rung adds its trick to the one before; the last is the recipe as it is.
    configs = [config(STUDIES["S5"], run, "full") for run in STUDIES["S5"].runs]
    assert [(c.model_kwargs.get("whiten", True), c.model_kwargs.get("dirac", True),
             c.augment["flip_alternate"], c.lookahead) for c in configs] == [
        (False, False, False, False), (True, False, False, False), (True, True, False, False),
        (True, True, True, False), (True, True, True, True), (True, True, True, False)]  # fmt: skip
    assert configs[3] == dataclasses.replace(recipe("airbench"), budget="full", precision=(
        configs[3].precision))  # fmt: skip
    text = (tmp_path / "S5-smoke" / "report" / "README.md").read_text()
    assert "without TTA" in text and "min a run" in text and "study 94.01%" in text
    assert "full recipe, 16 epochs > 93.5 %" in text
    # No validation split: the runs' overlay is of training accuracy, not an empty figure.
    figures = {p.name for p in (tmp_path / "S5-smoke" / "report" / "runs").glob("overlay_*")}
    assert "overlay_accuracy.png" in figures and "overlay_val_accuracy.png" not in figures


def test_a_study_scored_with_tta_tests_every_run_with_it():
    for study in STUDIES.values():
        if study.score == "test_tta":
            assert all(config(study, run, "cpu").tta for run in study.runs), study.name


def test_the_recorded_study_results_have_their_columns():
    """results/ holds what `python -m zoo.study NAME --budget B` measured (cells.csv each)."""
    recorded = sorted((Path(__file__).resolve().parents[1] / "results").glob("S*-*.csv"))
    assert recorded
    for path in recorded:
        study, budget = path.stem.split("-")
        frame = pd.read_csv(path)
        assert {"run", "model", "seeds", "mean", "std", "study", "difference"} <= set(frame)
        # A table recorded before a run joined its study lacks only that run.
        assert set(frame["run"]) <= {run.name for run in STUDIES[study].runs}, path
        assert budget in ("smoke", "cpu", "full")
    verdicts = sorted((recorded[0].parent / "verdicts").glob("S*-*.csv"))
    assert verdicts
    for path in verdicts:  # what the report's verdicts.csv held when the study ran
        study = STUDIES[path.stem.split("-")[0]]
        frame = pd.read_csv(path)
        assert list(frame["conclusion"].unique()) == [c.text for c in study.conclusions], path
        assert set(frame["verdict"]) <= {"reproduced", "refuted", "undecided", "not run"}
    searches = sorted((recorded[0].parent / "search-tables").glob("S*-*-*.csv"))
    assert searches
    for path in searches:  # S2-cpu-mlp_mnist.csv: one row per point of the study's search
        study, budget, space = path.stem.split("-", 2)
        (search,) = [s for s in STUDIES[study].searches if s.space == space]
        frame = pd.read_csv(path, index_col=0, keep_default_na=False)
        assert len(frame) == len(search.reported) and "not run" not in set(frame["ours (val)"])
        assert list(frame["study (test)"]) == [f"{v:.2%}" for v in search.reported.values()]


@pytest.mark.slow
def test_a_study_report_shows_the_band_and_the_probes_of_the_same_pair(data_dir, tmp_path):
    study = STUDIES["S1"]
    figures = landscape_figures(study, "smoke", tmp_path, str(data_dir), verbose=False)
    assert [path.name for _, path in figures] == ["landscape.png", "smoothness.png"]
    assert all("vgg_a against bn=True" in caption for caption, _ in figures)
    bands = pd.read_csv(tmp_path / "report" / "landscape" / "bands.csv")
    assert {"vgg_a baseline min", "vgg_a bn max"} <= set(bands.columns)
    runs = sorted((tmp_path / "report" / "landscape" / "runs").glob("*/config.json"))
    configs = [json.loads(p.read_text())["config"] for p in runs]
    assert sorted(c["lr"] for c in configs) == sorted(study.landscape.lrs * 2)
    assert all(c["model_kwargs"]["width"] == 0.25 and c["budget"] == "smoke" for c in configs)
    probes = pd.read_csv(tmp_path / "report" / "smoothness" / "probes_bn.csv")
    assert len(probes) == 2 and np.isfinite(probes.to_numpy(dtype=float)).all()
    # Drawn again: nothing is trained or probed twice.
    stamp = (tmp_path / "report" / "smoothness" / "smoothness.png").stat().st_mtime_ns
    landscape_figures(study, "smoke", tmp_path, str(data_dir), verbose=False)
    assert (tmp_path / "report" / "smoothness" / "smoothness.png").stat().st_mtime_ns == stamp
    assert sorted((tmp_path / "report" / "landscape" / "runs").glob("*/config.json")) == runs


def test_the_catalog_is_the_one_source_of_the_studies_figures():
    import zoo
    from reports.runs import study_figure, study_figures

    figures = study_figures()
    assert study_figure("vgg_a", "bn") == ("S1", 0.89)
    assert study_figure("tiny_baseline", "depth=long+residual") == ("S3", 0.1393)
    final = "bn+head_bn+hidden=256+init_std=0.01+weight_decay=0.0005"
    assert study_figure("deeper_convnet", final) == ("S0", 0.692)
    reported = sum(r.reported is not None for s in STUDIES.values() for r in s.runs)
    assert len(figures) == reported  # no two configurations share a label
    # A recipe's figure (`python -m zoo list`) is the catalog's run at the recipe's settings.
    from zoo.study.catalog import reported as recipe_figure

    assert recipe_figure("basic_cnn") == ("S1", 0.8291)
    assert recipe_figure("deeper_convnet") == ("S0", 0.692)  # its recipe is S0's final model
    assert recipe_figure("three_layer_convnet") is None
    assert not hasattr(zoo.describe("lenet"), "reported")  # the registry keeps no copy


@pytest.mark.parametrize("budget", ["smoke", "cpu", "full"])
@pytest.mark.parametrize("name", ["S1", "S4"])
def test_the_landscape_figures_resolve_at_every_budget(name, budget, tmp_path, monkeypatch):
    import reports.landscape
    import reports.smoothness

    calls = []
    monkeypatch.setattr(reports.landscape, "study_landscape", lambda *a, **k: calls.append(k))
    monkeypatch.setattr(reports.smoothness, "smoothness", lambda *a, **k: calls.append(k))
    study = STUDIES[name]
    figures = landscape_figures(study, budget, tmp_path, "data", verbose=False)
    band, probes = calls
    assert band["lrs"] == study.landscape.lrs and band["budget"] == budget
    assert probes["steps"] > 0 and probes["data_dir"] == "data"
    assert [p.name for _, p in figures] == ["landscape.png", "smoothness.png"]
    # Not drawing lists only what exists.
    assert landscape_figures(study, budget, tmp_path, draw=False) == []


@pytest.mark.slow  # a study run three times, its report each time
def test_a_study_scored_on_a_test_subset_says_so_in_its_floor(data_dir, tmp_path):
    common = ["S2", "--budget", "smoke", "--only", "LeNet", "--data-dir", str(data_dir),
              "--out", str(tmp_path), "--quiet"]  # fmt: skip
    assert main([*common, "--test-subset", "3"]) == 0
    report = tmp_path / "S2-smoke" / "report"
    cells = pd.read_csv(report / "cells.csv", index_col=0)
    assert cells.loc["LeNet", "test_images"] == 30 and cells.loc["LeNet", "seeds"] == 1
    (run,) = (tmp_path / "S2-smoke" / "runs").glob("lenet-*/config.json")
    assert json.loads(run.read_text())["config"]["test_subset"] == 3
    assert main(common) == 0  # continued without the flag: the folder's test set, nothing new
    assert list((tmp_path / "S2-smoke" / "runs").glob("lenet-*/config.json")) == [run]
    with pytest.raises(SystemExit) as stop:  # another test set would mix two in one table
        main([*common, "--test-subset", "0.5"])
    assert stop.value.code == 2


def test_the_estimates_rates_refit_to_the_measured_cells(capsys, monkeypatch, tmp_path):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tools" / "fit_estimate.py"
    spec = importlib.util.spec_from_file_location("fit_estimate", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(runner, "cpu_kind", lambda precision, flags=None: "amx")
    cells = pd.read_csv(path.parents[1] / "results" / "S4-cpu.csv")
    vgg = tmp_path / "S4-cpu.csv"  # the two small models of a study in the fit: quick to build
    cells[cells["model"] == "vgg_a"].to_csv(vgg, index=False)
    assert tool.main([str(vgg)]) == 0
    out = capsys.readouterr().out
    assert "2 runs of S4; CPU kind amx" in out and "fitted:" in out
    (ratio,) = [float(line.split()[1]) for line in out.splitlines() if line.startswith("S4 ")]
    # Measured 0.49 and 0.56 min against 0.34 and 0.37 estimated at a quarter width: the
    # estimate misses part of small nets' fixed cost (0.8 to 1.25 held at half width).
    assert 0.6 <= ratio <= 1.25
