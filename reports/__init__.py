"""Reports from run folders: accuracy tables and figures (`python -m reports build`).

from reports import build
report = build(["runs/*"], "report")   # tables (md, csv, tex, html), figures, index.html
"""

import zoo  # noqa: F401  (first: it sets TensorFlow's CPU options before TensorFlow loads)
from zoo.cli import lazy_exports

_EXPORTS = {
    "Report": "reports.build",
    "build": "reports.build",
    "find_runs": "reports.runs",
    "gather": "reports.runs",
    "variant": "reports.runs",
    "ablation_table": "reports.tables",
    "accuracy_table": "reports.tables",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
