"""The studies as commands: train a study's missing runs, run its searches, lay out its tables.

    from study_runner import run_study
    result = run_study("S3", budget="cpu", seeds=2, data_dir="~/data")
    result.tables["s3"]           # the study's layout: ours (mean ± std) against its figure

`python -m zoo.study NAME` is the command line. The studies themselves are data in the library
(`zoo.study.catalog`); this package is an application above `tuning` and `reports`.
"""

from study_runner.runner import (
    StudyResult,
    estimate_seconds,
    landscape_figures,
    layout,
    run_study,
    search_table,
    study_precision,
    study_test_subset,
)

__all__ = [
    "StudyResult",
    "estimate_seconds",
    "landscape_figures",
    "layout",
    "run_study",
    "search_table",
    "study_precision",
    "study_test_subset",
]
