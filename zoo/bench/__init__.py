"""`python -m zoo.bench MODEL`: training and inference speed of a model, and where time goes.

Prints images/s and ms per step (median of timed windows after a warm-up, with the range over
the windows) for the model's home shape, fed (1) from one batch of in-memory tensors and (2)
from the real `zoo.data` pipeline with the recipe's augmentation, the pipeline's cost as the
gap between them; inference images/s; the FLOP/s achieved, as a fraction of what a large
matmul reaches on the same device (the practical ceiling); and peak memory. `--torch` trains
the model's PyTorch twin in windows that alternate with the Keras ones and prints the ratio
over the paired windows; `--profile DIR` traces a few training steps with TensorFlow's
profiler and prints the ops that took the time.

Every run names the CPU and its vector extensions and measures, from /proc/stat, the CPU that
other processes took during each timed window: a neighbour slows the frameworks unequally
(PyTorch's CPU threads lose far more than TensorFlow's), so above `BUSY_CORES` the figures
are flagged as not reliable.

The command line is `zoo.bench.__main__`; timing and contention in `timing`, the op profile in
`profiling`, the benchmark itself in `runner`, its printed lines in `report`. This package loads
them (and TensorFlow) on first use, so `python -m zoo.bench --help` answers at once.
"""

from zoo.cli import lazy_exports

_TIMING = ("BUSY_CORES", "LABELS", "CpuSample", "Speed", "Watch", "contention", "cpu_sample",
           "load_state", "matmul_ceiling", "measure", "measure_feed", "measure_inference",
           "other_cpu_seconds", "speed")  # fmt: skip
_EXPORTS = {
    **dict.fromkeys(_TIMING, "zoo.bench.timing"),
    "bench": "zoo.bench.runner",
    "largest_batch": "zoo.bench.runner",
    "profile": "zoo.bench.profiling",
    "report": "zoo.bench.report",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
