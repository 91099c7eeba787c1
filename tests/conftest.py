"""Shared fixtures. The real datasets the tests read sit in `shared/data` beside the checkout
(or wherever ZOO_TEST_DATA points); tests that need them are skipped, saying why, without it."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["ZOO_OFFLINE"] = "1"  # tests never download
os.environ.pop("ZOO_DATA_DIR", None)

# isort: off
import zoo  # noqa: E402, F401  (before keras: the suite runs TensorFlow as users get it)
import keras  # noqa: E402
import pytest  # noqa: E402
# isort: on

DATA = Path(
    os.environ.get("ZOO_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """One cache folder per session: archives are extracted once, never into the user's cache."""
    os.environ["ZOO_CACHE_DIR"] = str(tmp_path_factory.mktemp("zoo-cache"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of real datasets (MNIST IDX files, CIFAR-10 and Tiny ImageNet archives)."""
    if not (DATA / "mnist").is_dir():
        pytest.skip(f"real test data not found at {DATA} (set ZOO_TEST_DATA)")
    return DATA


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from the same seed and an empty Keras session, so memory stays flat."""
    keras.utils.clear_session(free_memory=True)
    keras.mixed_precision.set_global_policy("float32")  # a mixed-precision run sets it globally
    keras.utils.set_random_seed(0)
    yield
