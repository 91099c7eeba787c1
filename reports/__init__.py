"""Reports from run folders: accuracy tables and figures (`python -m reports build`).

from reports import build
report = build(["runs/*"], "report")   # tables (md, csv, tex, html), figures, index.html
"""

import zoo  # noqa: F401  (first: it sets TensorFlow's CPU options before TensorFlow loads)
from reports.build import Report, build
from reports.runs import find_runs, gather, variant
from reports.tables import ablation_table, accuracy_table

__all__ = [
    "Report",
    "ablation_table",
    "accuracy_table",
    "build",
    "find_runs",
    "gather",
    "variant",
]
