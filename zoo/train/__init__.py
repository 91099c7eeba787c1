"""Training: `train(config, out)` runs a recipe into a self-describing, resumable run folder.

    from zoo.recipes import recipe
    from zoo.train import train
    run = train(recipe("resnet_cnn", epochs=5, data_dir="~/data"), out="runs")
    run.history, run.metrics, run.path

The trainer lives in `zoo.train.trainer`; this package loads it (and TensorFlow) on first use,
so `python -m zoo.train --help` answers at once.
"""

from zoo.cli import lazy_exports

__all__ = [
    "Interrupted",
    "Run",
    "compile_model",
    "forward_activations",
    "forward_flops",
    "load_config",
    "make_loss",
    "make_optimizer",
    "rebuild",
    "resume",
    "steps_per_execution",
    "train",
]
__getattr__ = lazy_exports(__name__, "zoo.train.trainer")
