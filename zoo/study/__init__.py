"""The six studies as data (`zoo.study.catalog`), and their command, `python -m zoo.study S3`.

    from zoo.study import STUDIES, config
    cfg = config(STUDIES["S1"], STUDIES["S1"].run("ResidualCNN"), "cpu")

A study is data: its runs, the figures it reported and its tables' layout. Running one (train
what is missing, search, lay out the tables) is the `study_runner` application's
(`study_runner.run_study`).
"""

from zoo.cli import lazy_exports

__all__ = ["BUDGETS", "STUDIES", "Study", "StudyRun", "Table", "config", "get_study"]
# Loaded on first use (the catalog imports the registry, and so TensorFlow), so that
# `python -m zoo.study --help` answers at once.
__getattr__ = lazy_exports(__name__, "zoo.study.catalog")
