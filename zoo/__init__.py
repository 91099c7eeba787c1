"""zoo: a Keras 3 model zoo for image-classification studies.

>>> import zoo
>>> zoo.list_models("vgg*")
['vgg_a']
>>> model = zoo.build("vgg_a", bn=True)
"""

import os
import sys
import warnings

# TensorFlow's C++ start-up chatter (CPU feature notes, missing CUDA) drowns CLI output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# TensorFlow turns its oneDNN CPU kernels on only for some Intel CPUs; on the AMD EPYC measured
# (README, Speed) they train every zoo model faster: MLP 1.3x, basic_cnn 1.6x, VGG-A 3.8x.
# TensorFlow reads the switch once, when it loads, so it is set here, before anything imports
# it; an explicit TF_ENABLE_ONEDNN_OPTS=0 keeps it off. GPU kernels are unaffected.
if "TF_ENABLE_ONEDNN_OPTS" not in os.environ:
    if "tensorflow" in sys.modules:
        warnings.warn(
            "zoo was imported after TensorFlow, so TensorFlow's oneDNN CPU kernels stay off and "
            "CPU training runs up to 3.8x slower; import zoo first, or set "
            "TF_ENABLE_ONEDNN_OPTS=1 before starting Python.",
            stacklevel=2,
        )
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"

from zoo import (
    models,  # noqa: F401  (registers every builder)
    optimizers,  # noqa: F401  (registered, so saved runs load with `import zoo`)
)
from zoo.registry import HOME_SHAPES, ModelInfo, build, describe, list_models, register

__version__ = "0.1.0"

__all__ = ["HOME_SHAPES", "ModelInfo", "build", "describe", "list_models", "register"]
