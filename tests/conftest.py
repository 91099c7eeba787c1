"""Shared fixtures. Real datasets for tests live in the workplace copy `../shared/data` (found
here, or through ZOO_TEST_DATA); model tests need none."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from the same seed and an empty Keras session, so memory stays flat."""
    keras.utils.clear_session(free_memory=True)
    keras.utils.set_random_seed(0)
    yield
