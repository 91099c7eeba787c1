"""Keras Tuner searches over the studies' search spaces: `python -m tuning.search SPACE`.

import tuning
tuning.list_spaces()                          # ['deeper_convnet', 'inception_v1', ...]
result = tuning.run_search("mlp_mnist", tuner="grid", subset=0.1)
result.trials                                 # a DataFrame, also trials.csv
"""

import zoo  # noqa: F401  (first: it sets TensorFlow's CPU options before TensorFlow loads)
from zoo.cli import lazy_exports

TUNERS: tuple[str, ...] = ("grid", "random", "hyperband", "bayesian")
# Objectives a search can rank trials by, and which way is better.
OBJECTIVES: dict[str, str] = {
    "val_accuracy": "max",
    "val_loss": "min",
    "accuracy": "max",
    "loss": "min",
}

_SPACES = ("SPACES", "get_space", "hyperparameters", "list_spaces", "space")
_TUNER = ("Search", "ZooHyperModel", "ZooTuner", "run_search")
_RESULTS = ("summary", "trials")
__all__ = sorted((*_SPACES, *_TUNER, *_RESULTS, "OBJECTIVES", "TUNERS"))
__getattr__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(_SPACES, "tuning.spaces"),
        **dict.fromkeys(_TUNER, "tuning.tuner"),
        **dict.fromkeys(_RESULTS, "tuning.results"),
    },
)
