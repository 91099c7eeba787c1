"""The five studies as commands: `python -m zoo.study S3 --budget cpu --seeds 2`.

    from zoo.study import STUDIES, run_study
    result = run_study("S3", budget="cpu", seeds=2, data_dir="~/data")

A study is data (`zoo.study.catalog`): its runs, the figures it reported and its tables'
layout. `run_study` trains what is missing through `zoo.train` and lays the tables out as the
study did, with our mean ± std beside its figure.
"""

from zoo.cli import lazy_exports

_EXPORTS = {
    "STUDIES": "zoo.study.catalog",
    "Study": "zoo.study.catalog",
    "StudyRun": "zoo.study.catalog",
    "Table": "zoo.study.catalog",
    "BUDGETS": "zoo.study.runner",
    "StudyResult": "zoo.study.runner",
    "config": "zoo.study.runner",
    "estimate_seconds": "zoo.study.runner",
    "get_study": "zoo.study.runner",
    "layout": "zoo.study.runner",
    "run_study": "zoo.study.runner",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
