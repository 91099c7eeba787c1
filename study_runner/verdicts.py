"""A verdict per conclusion: each comparison a study's conclusion rests on, judged from the
seeds' 95 % interval of the difference (`study_runner.stats`).

A comparison `a > b` is reproduced when the interval of `a - b` lies above zero, refuted when
it lies below, and undecided when it holds zero or when a cell has fewer than two seeds.
`a ≈ b within m` is reproduced when the interval lies inside (-m, m), refuted when it lies
wholly outside, undecided otherwise. A conclusion is refuted when any of its comparisons is,
reproduced when all are, and undecided otherwise (`not run` while a cell has no run).
"""

from __future__ import annotations

import math

import pandas as pd

from study_runner.stats import Difference, difference
from zoo.study.catalog import Claim, Study

REPRODUCED, REFUTED, UNDECIDED, NOT_RUN = "reproduced", "refuted", "undecided", "not run"


def judge(claim: Claim, diff: Difference) -> str:
    """The verdict on one comparison, given the interval of `a - b`."""
    if math.isnan(diff.low):
        return UNDECIDED
    if claim.relation == "≈":
        m = claim.margin
        if -m < diff.low and diff.high < m:
            return REPRODUCED
        return REFUTED if diff.low > m or diff.high < -m else UNDECIDED
    sign = 1 if claim.relation == ">" else -1
    low, high = sorted((sign * diff.low, sign * diff.high))
    if low > 0:
        return REPRODUCED
    return REFUTED if high < 0 else UNDECIDED


def verdicts(study: Study, scores: dict[str, list[float]]) -> pd.DataFrame:
    """One row per comparison of each of the study's conclusions: the conclusion, its verdict,
    the comparison, its own verdict, the difference with its interval (fractions), the seeds
    on each side, the seeds per cell its spread says a decision would need, and the study's
    own difference where it reported both cells.

    Args:
        study: The study.
        scores: Run name -> test accuracy of each seed (runs not run: absent or empty).
    """
    rows = []
    for conclusion in study.conclusions:
        judged = []
        for claim in conclusion.claims:
            a = scores.get(claim.a, [])
            b = claim.b if isinstance(claim.b, float) else scores.get(claim.b, [])
            ran = bool(a) and (isinstance(b, float) or bool(b))
            diff = difference(a, b) if ran else None
            verdict = judge(claim, diff) if diff is not None else NOT_RUN
            judged.append(verdict)
            rows.append(dict(
                conclusion=conclusion.text, claim=str(claim), claim_verdict=verdict,
                difference=diff.mean if diff else math.nan,
                low=diff.low if diff else math.nan, high=diff.high if diff else math.nan,
                seeds_a=len(a), seeds_b=None if isinstance(b, float) else len(b),
                seeds_needed=_seeds_needed(claim, diff) if diff else None,
                study_difference=_reported_difference(study, claim),
            ))  # fmt: skip
        overall = _combine(judged)
        for row in rows[len(rows) - len(judged) :]:
            row["verdict"] = overall
    columns = ["conclusion", "verdict", "claim", "claim_verdict", "difference", "low", "high",
               "seeds_a", "seeds_b", "seeds_needed", "study_difference"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _seeds_needed(claim: Claim, diff: Difference) -> int | None:
    """Seeds per cell that would decide the comparison at the observed means and spreads:
    for `>` and `<`, an interval clear of zero; for `≈`, one inside the margin, or clear of
    it where the difference lies outside."""
    if claim.relation != "≈":
        return diff.seeds_needed
    return diff.seeds_for(abs(claim.margin - abs(diff.mean)))


def _combine(judged: list[str]) -> str:
    if REFUTED in judged:
        return REFUTED
    if NOT_RUN in judged:
        return NOT_RUN
    return REPRODUCED if all(v == REPRODUCED for v in judged) else UNDECIDED


def _reported_difference(study: Study, claim: Claim) -> float:
    a = study.run(claim.a).reported
    b = claim.b if isinstance(claim.b, float) else study.run(claim.b).reported
    return math.nan if a is None or b is None else a - b


def evidence(row: pd.Series) -> str:
    """One comparison's line: `a > b: +1.20 points [+0.40, +2.00] (3 v 3 seeds); study +1.04`,
    with the seeds a decision would need where it is undecided."""
    if row["claim_verdict"] == NOT_RUN:
        return f"{row['claim']}: not run"
    seeds = f"{row['seeds_a']}" + ("" if pd.isna(row["seeds_b"]) else f" v {int(row['seeds_b'])}")
    text = f"{row['claim']}: {_points(row['difference'])} points"
    if not math.isnan(row["low"]):
        text += f" [{_points(row['low'])}, {_points(row['high'])}]"
    text += f" ({seeds} seeds) — {row['claim_verdict']}"
    if row["claim_verdict"] == UNDECIDED:
        if math.isnan(row["low"]):
            text += ", needs 2 or more seeds per cell"
        elif not pd.isna(row["seeds_needed"]):
            text += f", about {int(row['seeds_needed'])} seeds per cell would decide it"
        else:
            text += ", no number of seeds would decide it at this spread"
    if not math.isnan(row["study_difference"]):
        text += f"; study {_points(row['study_difference'])}"
    return text


def _points(fraction: float) -> str:
    return f"{fraction * 100:+.2f}"
