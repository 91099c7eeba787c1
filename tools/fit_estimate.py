"""Fits the study time estimate's rates to measured runs, and says how far the estimate is off.

    python tools/fit_estimate.py [results/S0-cpu.csv ...]

`zoo.study --list` models a run's time as arithmetic (forward FLOPs at `CPU_FLOPS`), memory
traffic (activations at `ACTIVATIONS_PER_SECOND`), `STEP_SECONDS` a training step and
`RUN_SECONDS` a run (study_runner/runner.py). This reads the mean wall minutes of each cell of
the given cells.csv files (default: every results/S*-cpu.csv with a `minutes` column; they were
measured on the CPU kind this machine is, at the budget the catalog gives now: a study whose
budget changed is to be rerun before its cells go in a fit), fits the three rates by least
relative squares with the step cost held, and prints them with each run's and each study's
estimate against its measurement, under the rates in use and under the fitted ones.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def _terms(study_name: str, run_name: str) -> tuple[float, float, float]:
    """A run's seconds of arithmetic at 1 FLOP/s, values moved at 1 value/s, and steps."""
    import zoo
    from study_runner.runner import STEP_SECONDS, _passes
    from zoo.study.catalog import config, get_study
    from zoo.train import forward_activations, forward_flops

    study = get_study(study_name)
    cfg = config(study, study.run(run_name), "cpu")
    model = zoo.build(cfg.model, **cfg.model_kwargs)
    passes, steps = _passes(cfg)
    return forward_flops(model) * passes, forward_activations(model) * passes, STEP_SECONDS * steps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tools/fit_estimate.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("cells", nargs="*", help="cells.csv files (default: results/S*-cpu.csv)")
    args = p.parse_args(argv)
    import zoo
    from study_runner import runner

    zoo.load()  # before TensorFlow: the zoo's kernels and logging
    paths = [Path(c) for c in args.cells] or sorted((REPO / "results").glob("S*-cpu.csv"))
    rows = []
    for path in paths:
        frame = pd.read_csv(path)
        if "minutes" not in frame:
            continue
        for _, cell in frame.dropna(subset=["minutes"]).iterrows():
            study = path.stem.split("-")[0]
            flops, values, steps = _terms(study, cell["run"])
            rows.append(dict(study=study, run=cell["run"], flops=flops, values=values,
                             steps=steps, measured=cell["minutes"] * 60))  # fmt: skip
    if not rows:
        p.exit(2, f"{p.prog}: no cells with measured minutes in {', '.join(map(str, paths))}\n")
    runs = pd.DataFrame(rows)
    kind = runner.cpu_kind("mixed_bfloat16")
    # measured - steps = flops / F + values / A + R, each row divided by measured (relative).
    terms = np.stack([runs["flops"], runs["values"], np.ones(len(runs))], axis=1)
    weight = 1 / runs["measured"].to_numpy()
    rhs = (runs["measured"] - runs["steps"]).to_numpy() * weight
    (per_flop, per_value, per_run), *_ = np.linalg.lstsq(terms * weight[:, None], rhs, rcond=None)
    print(f"{len(runs)} runs of {', '.join(runs['study'].unique())}; CPU kind {kind}")
    print(
        f"in use: {runner.CPU_FLOPS[kind] / 1e9:,.0f} GFLOP/s, "
        f"{runner.ACTIVATIONS_PER_SECOND[kind]:.2e} values/s, {runner.RUN_SECONDS:.0f} s a run"
    )
    print(f"fitted: {1e-9 / per_flop:,.0f} GFLOP/s, {1 / per_value:.2e} values/s, "
          f"{per_run:.0f} s a run")  # fmt: skip
    runs["in use"] = (
        runs["flops"] / runner.CPU_FLOPS[kind]
        + runs["steps"]
        + runs["values"] / runner.ACTIVATIONS_PER_SECOND[kind]
        + runner.RUN_SECONDS
    )
    runs["fitted"] = terms @ [per_flop, per_value, per_run] + runs["steps"]
    for column in ("in use", "fitted"):
        runs[f"{column} / measured"] = runs[column] / runs["measured"]
    shown = runs[["study", "run", "measured", "in use / measured", "fitted / measured"]]
    print(shown.assign(measured=shown["measured"] / 60).round(2).to_string(index=False))
    studies = runs.groupby("study")[["measured", "in use", "fitted"]].sum()
    print("\nper study (one seed of every measured cell), estimate / measured:")
    print((studies[["in use", "fitted"]].div(studies["measured"], axis=0)).round(2).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
