"""zoo: a Keras 3 model zoo for image-classification studies.

>>> import zoo
>>> zoo.list_models("vgg*")
['vgg_a']
>>> model = zoo.build("vgg_a", bn=True)

`import zoo` registers every builder and the zoo's custom layers and optimizers with Keras, so
saved models (`best.keras`) load with `keras.saving.load_model` after it.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from typing import Any

__version__ = "0.1.0"

_REGISTRY_NAMES = ("HOME_SHAPES", "ModelInfo", "build", "describe", "list_models", "register")
__all__ = [*_REGISTRY_NAMES, "load"]

# TensorFlow's C++ start-up chatter (CPU feature notes, missing CUDA) drowns CLI output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# TensorFlow turns its oneDNN CPU kernels on by itself only for some CPUs; on the others
# measured (docs/speed.md) they train every zoo model faster: MLP 1.3x, basic_cnn 1.6x, VGG-A
# 3.8x. TensorFlow reads the switch once, when it loads, so it is set before anything imports
# TensorFlow; an explicit TF_ENABLE_ONEDNN_OPTS=0 keeps it off. GPU kernels are unaffected.
_TF_WAS_LOADED = "tensorflow" in sys.modules
if "TF_ENABLE_ONEDNN_OPTS" not in os.environ and not _TF_WAS_LOADED:
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"


def _import_tensorflow_quietly() -> None:
    # TensorFlow's C++ start-up lines (oneDNN and CUDA-stub notes, absl's "log messages before
    # InitializeLog", a failed cuInit on machines without a GPU) ignore TF_CPP_MIN_LOG_LEVEL in
    # TensorFlow 2.21 and bury a command's one-line answer, so stderr is pointed at /dev/null
    # at the descriptor level while TensorFlow loads and finds its devices.
    # Python-level errors still surface: they are raised after stderr is back.
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow as tf

            # The first device query probes CUDA, which logs its own failure on CPU machines.
            tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load() -> None:
    """Loads TensorFlow and Keras, every builder and the custom objects saved models name.

    `import zoo` calls it; the zoo's command lines call it once their arguments have parsed.
    """
    if os.environ.get("ZOO_TF_STARTUP_LOG") != "1":
        _import_tensorflow_quietly()
    from zoo import models, optimizers  # noqa: F401

    if _TF_WAS_LOADED and "TF_ENABLE_ONEDNN_OPTS" not in os.environ:
        from zoo import compat

        # Too late to switch oneDNN on; TensorFlow says whether it chose it by itself.
        if compat.onednn_enabled() is False:
            warnings.warn(
                "TensorFlow was imported before zoo with its oneDNN CPU kernels off, so CPU "
                "training runs up to 3.8x slower; import zoo first, or set "
                "TF_ENABLE_ONEDNN_OPTS=1 before starting Python.",
                stacklevel=3,
            )


def __getattr__(name: str) -> Any:
    if name in _REGISTRY_NAMES:
        load()
        value = getattr(importlib.import_module("zoo.registry"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


def _locating_a_command() -> bool:
    """True while `python -m zoo.train ...` (or tuning..., reports...) imports this package
    only to find its command: Python sets sys.argv[0] to "-m" until then."""
    if sys.argv[:1] != ["-m"]:
        return False
    argv = getattr(sys, "orig_argv", [])
    module = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else ""
    return module.split(".")[0] in ("zoo", "tuning", "reports")


# Each command loads TensorFlow once its arguments have parsed, so --help and misuse answer at
# once instead of after TensorFlow's start-up.
if not _locating_a_command():
    load()
    from zoo.registry import (  # noqa: F401
        HOME_SHAPES,
        ModelInfo,
        build,
        describe,
        list_models,
        register,
    )  # fmt: skip
