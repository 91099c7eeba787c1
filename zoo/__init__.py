"""zoo: a Keras 3 model zoo for image-classification studies.

>>> import zoo
>>> zoo.list_models("vgg*")
['vgg_a']
>>> model = zoo.build("vgg_a", bn=True)
"""

import os

# TensorFlow's C++ start-up chatter (CPU feature notes, missing CUDA) drowns CLI output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from zoo import models  # noqa: F401  (registers every builder)
from zoo.registry import HOME_SHAPES, ModelInfo, build, describe, list_models, register

__version__ = "0.1.0"

__all__ = ["HOME_SHAPES", "ModelInfo", "build", "describe", "list_models", "register"]
