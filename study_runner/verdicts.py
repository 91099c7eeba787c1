"""A verdict per conclusion: each comparison a study's conclusion rests on, judged from the
seeds' 95 % interval of the difference (`study_runner.stats`).

A comparison `a > b` is reproduced when the interval of `a - b` lies above zero, refuted when
it lies below, and undecided when it holds zero or when a cell has fewer than two seeds.
`a ≈ b within m` is reproduced when the interval lies inside (-m, m), which is two one-sided
tests at 2.5 % each, refuted when it lies wholly outside, undecided otherwise. A comparison
of a cell that sits at chance where the study's did not is undecided: an untrained net says
nothing about the architecture; so is one of two runs that scored the same on every seed,
whose difference never acted (a plateau decay that never fired). A conclusion is refuted when
any of its comparisons is, reproduced when all are, and undecided otherwise (`not run` while a
cell has no run). With some twenty comparisons over the studies, about one may land on the
wrong side by chance.
"""

from __future__ import annotations

import math

import pandas as pd

from study_runner.stats import Difference, Estimate, compare, noise_floor
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


def at_chance(cell: pd.Series) -> bool:
    """Whether a cell's mean lies within twice the test set's noise floor of chance."""
    if not cell["seeds"]:
        return False
    return cell["mean"] - cell["chance"] < 2 * noise_floor(cell["chance"], cell["test_images"])


def verdicts(study: Study, cells: pd.DataFrame) -> pd.DataFrame:
    """One row per comparison of each of the study's conclusions: the conclusion, its verdict,
    the comparison, its own verdict, the difference with its interval (fractions), the seeds
    on each side, the seeds per cell that would decide it with 80 % power at the observed
    spread, the study's own difference where it reported both cells, and a note.

    Args:
        study: The study.
        cells: `study_runner.tables.cells_of`'s table: seeds, mean, std, floor, test images
            and chance level per run.
    """
    rows = []
    for conclusion in study.conclusions:
        start = len(rows)
        for claim in conclusion.claims:
            rows.append(_row(study, cells, claim))
        judged = [row["claim_verdict"] for row in rows[start:]]
        for row in rows[start:]:
            row["conclusion"] = conclusion.text
            row["verdict"] = _combine(judged)
    columns = ["conclusion", "verdict", "claim", "claim_verdict", "difference", "low", "high",
               "seeds_a", "seeds_b", "seeds_needed", "study_difference", "note"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("seeds_a", "seeds_b", "seeds_needed"):
        frame[column] = frame[column].astype("Int64")
    return frame


def _row(study: Study, cells: pd.DataFrame, claim: Claim) -> dict:
    a = cells.loc[claim.a]
    named = [claim.a] + ([claim.b] if isinstance(claim.b, str) else [])
    row = dict(claim=str(claim), difference=math.nan, low=math.nan, high=math.nan,
               seeds_a=a["seeds"], seeds_b=None, seeds_needed=None, note="",
               study_difference=_reported_difference(study, claim))  # fmt: skip
    if isinstance(claim.b, str):
        row["seeds_b"] = cells.loc[claim.b, "seeds"]
    if any(not cells.loc[name, "seeds"] for name in named):
        return {**row, "claim_verdict": NOT_RUN}
    ea = Estimate.summary(a["seeds"], a["mean"], a["std"])
    if isinstance(claim.b, str):
        b = cells.loc[claim.b]
        diff = compare(ea, Estimate.summary(b["seeds"], b["mean"], b["std"]))
    else:
        diff = compare(ea, claim.b, int(a["test_images"]))
    verdict = judge(claim, diff)
    notes = []
    if isinstance(claim.b, str):
        floor = max(cells.loc[name, "floor"] for name in named)
        if abs(diff.mean) < floor:
            notes.append(f"under the test set's noise floor (±{floor * 100:.2f})")
        # An untrained net decides nothing about what the study compared.
        dead = [n for n in named if at_chance(cells.loc[n]) and not _reported_at_chance(study, n)]
        if dead:
            verdict = UNDECIDED
            notes.append(f"{' and '.join(dead)} at chance where the study's was not")
        # Same seeds, same scores: the runs' difference never acted (a plateau decay that
        # never fired leaves its run the baseline to the last bit), so nothing was tested.
        if _alike(a, b):
            verdict = UNDECIDED
            notes.append("the same score on every seed: the runs' difference never acted")
    seeds_needed = diff.seeds_needed
    if claim.relation == "≈":  # inside the margin, or clear of it where it lies outside
        seeds_needed = diff.seeds_for(abs(claim.margin - abs(diff.mean)))
    return {**row, "difference": diff.mean, "low": diff.low, "high": diff.high,
            "seeds_needed": seeds_needed, "claim_verdict": verdict,
            "note": "; ".join(notes)}  # fmt: skip


def _alike(a: pd.Series, b: pd.Series) -> bool:
    """Same seeds, mean and spread (a single seed's NaN spread counting as the same)."""
    same_std = a["std"] == b["std"] or (pd.isna(a["std"]) and pd.isna(b["std"]))
    return bool(a["seeds"] == b["seeds"] and a["mean"] == b["mean"] and same_std)


def _reported_at_chance(study: Study, name: str) -> bool:
    """Whether the study's own figure for a run sat within 2 points of chance (S3's diverged
    short +residual, S0's diverged run)."""
    from zoo.data.specs import DATASETS
    from zoo.registry import describe

    reported = study.run(name).reported
    chance = 1 / DATASETS[describe(study.run(name).model).dataset].classes
    return reported is not None and reported - chance < 0.02


def _combine(judged: list[str]) -> str:
    if REFUTED in judged:
        return REFUTED
    if NOT_RUN in judged:
        return NOT_RUN
    return REPRODUCED if all(v == REPRODUCED for v in judged) else UNDECIDED


def _reported_difference(study: Study, claim: Claim) -> float:
    a = study.run(claim.a).reported
    b = study.run(claim.b).reported if isinstance(claim.b, str) else claim.b
    return math.nan if a is None or b is None else a - b


def evidence(row: pd.Series) -> str:
    """One comparison's line: `a > b: +1.20 points [+0.40, +2.00] (3 v 3 seeds) — reproduced;
    study +1.04`, with the seeds a decision would need where it is undecided."""
    if row["claim_verdict"] == NOT_RUN:
        return f"{row['claim']}: not run"
    seeds = f"{row['seeds_a']}" + ("" if pd.isna(row["seeds_b"]) else f" v {row['seeds_b']}")
    plural = "" if seeds == "1" else "s"
    text = f"{row['claim']}: {_points(row['difference'])} points"
    if not math.isnan(row["low"]):
        text += f" [{_points(row['low'])}, {_points(row['high'])}]"
    text += f" ({seeds} seed{plural}) — {row['claim_verdict']}"
    if row["claim_verdict"] == UNDECIDED:
        if math.isnan(row["low"]):
            text += ", needs 2 or more seeds per cell"
        elif not pd.isna(row["seeds_needed"]):
            text += f"; about {row['seeds_needed']} seeds per cell would decide it (80 % power)"
        elif row["difference"] != 0:
            text += "; more than 1,000 seeds per cell would be needed"
    if row["note"]:
        text += f"; {row['note']}"
    if not math.isnan(row["study_difference"]):
        text += f"; study {_points(row['study_difference'])}"
    return text


def summaries(judged: pd.DataFrame) -> list[tuple[str, str, list[str]]]:
    """(verdict, conclusion, evidence lines) per conclusion, in the study's order."""
    return [
        (rows["verdict"].iloc[0], text, [evidence(row) for _, row in rows.iterrows()])
        for text, rows in judged.groupby("conclusion", sort=False)
    ]


def _points(fraction: float) -> str:
    return f"{fraction * 100:+.2f}"
