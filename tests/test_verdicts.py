"""Intervals, noise floors and verdicts: the arithmetic against hand-computed values, and the
verdicts read from hand-made run folders."""

from __future__ import annotations

import dataclasses
import json
import math

import pandas as pd
import pytest

from study_runner.runner import _finished_runs
from study_runner.stats import Estimate, difference, noise_floor, t975
from study_runner.tables import cells_of
from study_runner.verdicts import evidence, judge, verdicts
from zoo.runs import folder_name
from zoo.study import STUDIES, config
from zoo.study.catalog import Claim


def test_t_quantiles_match_the_tables_exact_values():
    assert t975(1) == pytest.approx(12.7062)
    assert t975(2) == pytest.approx(4.3027)
    # Welch's fractional df, against the exact quantiles (scipy.stats.t.ppf(0.975, df)).
    for df, exact in ((1.1, 10.2768), (1.5, 6.0167), (2.439, 3.6394), (4.5, 2.6589),
                      (12.5, 2.1692)):  # fmt: skip
        assert t975(df) == pytest.approx(exact, rel=4e-3), df
    assert t975(60) == pytest.approx(2.0003, abs=2e-4)
    assert t975(120) == pytest.approx(1.9799, abs=2e-4)
    assert t975(1e9) == pytest.approx(1.959964, abs=1e-6)
    with pytest.raises(ValueError, match="degrees of freedom"):
        t975(0.5)


def test_a_cells_interval_is_the_t_interval_of_its_mean():
    est = Estimate.of([0.30, 0.32, 0.34])
    assert (est.seeds, est.mean, est.std) == (3, pytest.approx(0.32), pytest.approx(0.02))
    half = 4.3027 * 0.02 / math.sqrt(3)  # 0.049683
    assert (est.low, est.high) == pytest.approx((0.32 - half, 0.32 + half))
    one = Estimate.of([0.5])
    assert one.mean == 0.5 and math.isnan(one.std) and math.isnan(one.low)
    assert Estimate.of([]).seeds == 0


def test_the_noise_floor_is_the_binomial_half_width():
    # The figure: 94 % on 10,000 test images is ±0.47 points.
    assert noise_floor(0.94, 10_000) == pytest.approx(0.004655, abs=1e-6)
    assert noise_floor(0.5, 1_000) == pytest.approx(1.959964 * 0.5 / math.sqrt(1000))
    assert noise_floor(1.0, 100) == 0
    with pytest.raises(ValueError):
        noise_floor(0.5, 0)


def test_a_difference_has_welchs_interval_and_the_seeds_it_would_need():
    diff = difference([0.30, 0.32, 0.34], [0.20, 0.22, 0.24])
    # se = √(2 · 0.02² / 3) = 0.016330; Welch's df = 4: t = 2.7764
    assert diff.mean == pytest.approx(0.10)
    assert (diff.low, diff.high) == pytest.approx((0.10 - 0.045338, 0.10 + 0.045338), abs=1e-6)
    # 80 % power: n = 2 gives (4.3027 + 0.8416) · 0.02 = 0.1029 > 0.1; n = 3, 0.0591.
    assert diff.decided and diff.seeds_needed == 3
    # Unequal spreads: se² = 0.01²/3 + 0.03²/3; df = (se²)² / (va² / 2 + vb² / 2) = 2.439,
    # where t's exact 97.5 % quantile is 3.6394.
    wide = difference([0.30, 0.31, 0.32], [0.27, 0.30, 0.33])
    se = math.sqrt(0.01**2 / 3 + 0.03**2 / 3)
    assert wide.high - wide.mean == pytest.approx(3.6394 * se, rel=4e-3)
    assert not wide.decided
    # One point apart at a std of 2 points each, for 80 % power: (t(2(n-1)) + 0.8416) ·
    # √(8e-4 / n) < 0.01 first at n = 64 (n = 63: (1.9793 + 0.8416)² · 8 = 63.66 > 63).
    close = difference([0.31, 0.33, 0.35], [0.30, 0.32, 0.34])
    assert close.seeds_needed == 64
    # At 5-point stds: (t(2(n-1)) + 0.8416)² · 0.005 / n < 0.01² first at n = 394; half a
    # point apart it would take over 1,000.
    assert difference([0.61, 0.66, 0.71], [0.60, 0.65, 0.70]).seeds_needed == 394
    assert difference([0.605, 0.655, 0.705], [0.60, 0.65, 0.70]).seeds_needed is None
    # Against a fixed level: the cell's own interval, shifted, and with the test set's size
    # given, widened by its binomial noise: √(0.049683² + 0.009143²) = 0.050517.
    level = difference([0.30, 0.32, 0.34], 0.2)
    assert (level.low, level.high) == pytest.approx((0.12 - 0.049683, 0.12 + 0.049683), abs=1e-6)
    level = difference([0.30, 0.32, 0.34], 0.2, images=10_000)
    assert (level.low, level.high) == pytest.approx((0.12 - 0.050517, 0.12 + 0.050517), abs=1e-6)
    # One seed: no interval, and no count of seeds can be projected.
    lone = difference([0.30], [0.20, 0.22])
    assert math.isnan(lone.low) and lone.seeds_needed is None and not lone.decided


@pytest.mark.parametrize(
    ("relation", "low", "high", "verdict"),
    [
        (">", 0.01, 0.03, "reproduced"),
        (">", -0.03, -0.01, "refuted"),
        (">", -0.01, 0.01, "undecided"),
        ("<", -0.03, -0.01, "reproduced"),
        ("<", 0.01, 0.03, "refuted"),
        ("≈", -0.004, 0.009, "reproduced"),  # inside ±1 point
        ("≈", 0.011, 0.03, "refuted"),  # wholly beyond it
        ("≈", 0.005, 0.02, "undecided"),  # across its edge
        (">", math.nan, math.nan, "undecided"),  # one seed
    ],
)
def test_judge(relation, low, high, verdict):
    diff = dataclasses.replace(difference([0.3, 0.31], [0.3, 0.31]), low=low, high=high)
    assert judge(Claim("a", relation, "b", 0.01 if relation == "≈" else 0.0), diff) == verdict


def _cells(folder, study, budget="cpu"):
    return cells_of(study, _finished_runs(study, budget, folder, "float32"), budget)


def _hand_made(folder, study, budget, scores, tta_gain=None):
    """Run folders as the trainer leaves them, holding chosen test accuracies (and where
    `tta_gain` is given, a TTA accuracy that much higher in runs that test with TTA)."""
    for name, seeds in scores.items():
        for seed, accuracy in enumerate(seeds):
            cfg = config(study, study.run(name), budget, seed=seed, precision="float32")
            path = folder / folder_name(cfg)
            path.mkdir(parents=True)
            record = {"format": 3, "config": dataclasses.asdict(cfg)}
            (path / "config.json").write_text(json.dumps(record))
            (path / "history.csv").write_text("epoch,accuracy,loss\n0,0.5,1.0\n")
            metrics = {"test": {"accuracy": accuracy, "loss": 1.0}, "epochs_run": 1,
                       "stop_reason": "epochs", "wall_seconds": 30.0}  # fmt: skip
            if tta_gain is not None and cfg.tta:
                metrics["test_tta"] = {"accuracy": accuracy + tta_gain, "level": cfg.tta}
            (path / "metrics.json").write_text(json.dumps(metrics))


def test_verdicts_from_hand_made_run_folders(tmp_path):
    study = STUDIES["S1"]
    _hand_made(tmp_path / "runs", study, "cpu", {
        "ImprovedCNN": [0.80, 0.81, 0.82],
        "ResidualCNN": [0.75, 0.76, 0.77],  # 5 points under: "within a point" is refuted
        "BasicCNN": [0.70, 0.71, 0.72],
        "VGG-A": [0.60, 0.65, 0.70],
        "VGG-A-BN": [0.605, 0.655, 0.705],  # half a point over at a 5-point spread: undecided
    })  # fmt: skip
    assert len(_finished_runs(study, "cpu", tmp_path, "float32")) == 15
    table = verdicts(study, _cells(tmp_path, study))
    by_text = dict(zip(table["conclusion"], table["verdict"], strict=False))
    assert by_text["ImprovedCNN is the best of the three (92.61 %)"] == "reproduced"
    within = "ResidualCNN comes within about a point of ImprovedCNN (91.57 % against 92.61 %)"
    assert by_text[within] == "refuted"
    assert by_text["The residual net beats BasicCNN (91.57 % against 82.91 %)"] == "reproduced"
    bn = table[table["conclusion"] == "Batch norm helps VGG-A (89 % against 84 %)"].iloc[0]
    assert bn["verdict"] == "undecided" and bn["seeds_a"] == bn["seeds_b"] == 3
    assert bn["difference"] == pytest.approx(0.005)
    assert bn["study_difference"] == pytest.approx(0.05)
    assert bn["seeds_needed"] is pd.NA  # over 1,000
    line = evidence(bn)
    assert line.startswith("VGG-A-BN > VGG-A: +0.50 points [")
    assert "(3 v 3 seeds) — undecided; more than 1,000 seeds per cell would be needed" in line
    assert "under the test set's noise floor (±0.93)" in line  # 1.96 · √(0.655 · 0.345 / 10⁴)
    assert line.endswith("; study +5.00")


def test_s1s_fast_recipe_sits_beside_each_nets_recipe_with_its_tta_accuracy(tmp_path):
    from study_runner.tables import layout

    study = STUDIES["S1"]
    _hand_made(tmp_path / "runs", study, "cpu", {
        "BasicCNN": [0.60, 0.61, 0.62], "BasicCNN, fast recipe": [0.66, 0.67, 0.68],
    }, tta_gain=0.01)  # fmt: skip
    fast = config(study, study.run("BasicCNN, fast recipe"), "cpu")
    plain = config(study, study.run("BasicCNN"), "cpu")
    # The same data, epochs and schedule: the same cost, only the tricks differ.
    assert (fast.subset, fast.epochs, fast.schedule) == (plain.subset, plain.epochs, plain.schedule)
    assert (fast.tta, fast.label_smoothing, fast.lookahead, plain.tta) == (2, 0.2, True, 0)
    cells = _cells(tmp_path, study)
    assert cells.loc["BasicCNN, fast recipe", "tta"] == pytest.approx(0.68)
    assert math.isnan(cells.loc["BasicCNN", "tta"])  # tested without TTA: no figure
    (table,) = [t for t in study.tables if t.name == "s1_fast"]
    frame = layout(table, cells, study, "cpu")
    ours = frame.loc["BasicCNN", "fast recipe"]
    assert ours.startswith("67.00% ± 1.00%") and "with TTA 68.00%" in ours
    assert "vs BasicCNN +6.00 [" in ours and "undecided" not in ours  # plain against plain
    assert "with TTA" not in frame.loc["BasicCNN", "S1's recipe"]
    assert frame.loc["ResidualCNN", "fast recipe"] == "not run"


def test_a_conclusion_with_a_cell_not_run_says_so_and_one_seed_decides_nothing(tmp_path):
    study = STUDIES["S0"]
    _hand_made(tmp_path / "runs", study, "cpu", {"final": [0.65], "baseline": [0.6]})
    table = verdicts(study, _cells(tmp_path, study))
    verdict = dict(zip(table["conclusion"], table["verdict"], strict=False))
    assert verdict[study.conclusions[0].text] == "not run"
    beats = "The tuned final model beats the baseline (69.2 % against 63.2 %)"
    assert verdict[beats] == "undecided"
    row = table[table["conclusion"] == beats].iloc[0]
    assert "(1 v 1 seeds) — undecided, needs 2 or more seeds per cell" in evidence(row)


def test_a_net_at_chance_decides_nothing_unless_the_studys_was_too(tmp_path):
    study = STUDIES["S3"]
    _hand_made(tmp_path / "runs", study, "cpu", {
        "short baseline": [0.06, 0.065, 0.07],
        "long baseline": [0.005, 0.005, 0.005],  # at chance (1 of 200 classes); S3's: 14.07 %
        "short +residual": [0.005, 0.005, 0.006],  # at chance, as S3's diverged run was
    })  # fmt: skip
    table = verdicts(study, _cells(tmp_path, study))
    by_claim = {row["claim"]: row for _, row in table.iterrows()}
    deeper = by_claim["long baseline < short baseline"]
    assert deeper["claim_verdict"] == "undecided" and deeper["high"] < 0
    assert "long baseline at chance where the study's was not" in evidence(deeper)
    diverged = by_claim["short +residual < 2 %"]
    assert diverged["claim_verdict"] == "reproduced" and diverged["seeds_b"] is pd.NA
    # A level's interval carries the test set's noise: √(t-half² + (1.96 · √(p(1-p)/10⁴))²).
    assert evidence(diverged).startswith("short +residual < 2 %: -1.47 points [")
    assert "(3 seeds) — reproduced; study -1.51" in evidence(diverged)


def test_a_claim_is_checked_when_made():
    with pytest.raises(ValueError, match="a margin goes with ≈"):
        Claim("a", "≈", "b")
    with pytest.raises(ValueError, match="a margin goes with ≈"):
        Claim("a", ">", "b", 0.01)
    with pytest.raises(ValueError, match="a level is an accuracy"):
        Claim("a", "<", 20.0)
    assert str(Claim("a", "<", 0.005)) == "a < 0.5 %"


def test_two_runs_alike_on_every_seed_decide_nothing(tmp_path):
    """A plateau decay that never fires leaves its run the baseline, bit for bit."""
    study = STUDIES["S3"]
    same = [0.06, 0.065, 0.07]
    _hand_made(tmp_path / "runs", study, "cpu", {
        "short baseline": same, "short +decay": same,
        "long baseline": [0.03, 0.031, 0.032], "long +decay": [0.04, 0.041, 0.042],
    })  # fmt: skip
    table = verdicts(study, _cells(tmp_path, study))
    by_claim = {row["claim"]: row for _, row in table.iterrows()}
    short = by_claim["short +decay > short baseline"]
    assert short["claim_verdict"] == "undecided" and short["difference"] == 0
    assert "the same score on every seed: the runs' difference never acted" in evidence(short)
    assert by_claim["long +decay > long baseline"]["claim_verdict"] == "reproduced"
    # One seed each: no spread, and still the same score.
    _hand_made(
        tmp_path / "one" / "runs", study, "cpu", {"short baseline": [0.06], "short +decay": [0.06]}
    )
    one = verdicts(study, _cells(tmp_path / "one", study))
    row = one[one["claim"] == "short +decay > short baseline"].iloc[0]
    assert "the runs' difference never acted" in evidence(row)
