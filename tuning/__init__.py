"""Keras Tuner searches over the studies' search spaces: `python -m tuning.search SPACE`.

import tuning
tuning.list_spaces()                          # ['deeper_convnet', 'inception_v1', ...]
result = tuning.run_search("mlp_mnist", tuner="grid", subset=0.1)
result.trials                                 # a DataFrame, also trials.csv
"""

import zoo  # noqa: F401  (first: it sets TensorFlow's CPU options before TensorFlow loads)
from tuning.spaces import SPACES, get_space, hyperparameters, list_spaces, space
from tuning.tuner import Search, ZooHyperModel, ZooTuner, run_search, summary, trials

__all__ = [
    "SPACES",
    "Search",
    "ZooHyperModel",
    "ZooTuner",
    "get_space",
    "hyperparameters",
    "list_spaces",
    "run_search",
    "space",
    "summary",
    "trials",
]
