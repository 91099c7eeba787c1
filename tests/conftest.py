"""Shared fixtures.

The real datasets the tests read (MNIST IDX files, the CIFAR-10 JPEG archive, the Tiny ImageNet
subset archive) are looked for in `$ZOO_TEST_DATA`, then `$ZOO_DATA_DIR` (the folder the README
tells users to set), then `shared/data` beside the checkout. Without them the real-data tests
skip and the run says why; under `CI=true` they fail instead, so a CI machine that lost its
data cannot pass by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["ZOO_OFFLINE"] = "1"  # tests never download


def _data_root() -> tuple[Path, str]:
    for variable in ("ZOO_TEST_DATA", "ZOO_DATA_DIR"):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser(), f"${variable}"
    return Path(__file__).resolve().parents[2] / "shared" / "data", "the default"


DATA, DATA_FROM = _data_root()
IN_CI = os.environ.get("CI", "").lower() == "true"


def need_data(path: Path, what: str) -> None:
    """Skips the calling test when `path` is missing, or fails it under CI=true."""
    if path.exists():
        return
    message = f"{what} not found at {path} ({DATA_FROM}; set ZOO_DATA_DIR or ZOO_TEST_DATA)"
    if IN_CI:
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


def _hands_out_tests(config: pytest.Config) -> bool:
    """Whether this process is xdist's controller, which runs no test itself."""
    if "PYTEST_XDIST_WORKER" in os.environ:
        return False
    return config.getoption("dist", "no") != "no" and bool(config.getoption("tx", None))


def pytest_configure(config: pytest.Config) -> None:
    """Imports the zoo, and TensorFlow with it, in each process that runs tests: zoo before
    keras, as users get TensorFlow. xdist's controller skips it; TensorFlow's import (7-9 s
    on 2 cores) there would hold back every worker's start."""
    if not _hands_out_tests(config):
        import zoo  # noqa: F401


def _onednn() -> bool | None:
    from zoo import compat

    return compat.onednn_enabled()


def pytest_report_header(config: pytest.Config) -> str:
    found = "found" if (DATA / "mnist").is_dir() else "MISSING: real-data tests will skip"
    onednn = "reported by the workers, below" if _hands_out_tests(config) else _onednn()
    return f"zoo test data: {DATA} ({DATA_FROM}), {found}; oneDNN: {onednn}"


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workeroutput"):  # an xdist worker tells its controller
        session.config.workeroutput["onednn"] = _onednn()


_ONEDNN: set[bool | None] = set()  # as the workers report it


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:  # noqa: ANN001
    _ONEDNN.add(getattr(node, "workeroutput", {}).get("onednn"))


def _gpu_present() -> bool:
    """Whether the NVIDIA driver lists a GPU that CUDA_VISIBLE_DEVICES leaves visible; told
    without TensorFlow, which the controller never imports."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "0").strip() in ("", "-1"):
        return False
    listed = Path("/proc/driver/nvidia/gpus")
    return (listed.is_dir() and any(listed.iterdir())) or any(Path("/dev").glob("nvidia[0-9]*"))


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: without xdist, nothing to call
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker per core, at most 4, and none (one process) with a GPU or a
    single core; `PYTEST_XDIST_AUTO_NUM_WORKERS` decides instead when set. Each worker trains
    with every core TensorFlow sees, so more workers than cores only queue; 4 keeps the
    start-up (a TensorFlow import each) and the per-worker fixtures (trained runs a module
    shares) worth it. On a GPU each worker would claim all its memory."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return int(os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"])
    if _gpu_present():
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(4, cores or 1) if (cores or 1) > 1 else 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests run first, each lane in file order: the workers take tests in this order, and
    a 30-120 s test taken last left the other worker idle for a minute. Tests marked `gpu`
    skip on a machine without one, CI's included."""
    items.sort(key=lambda item: "slow" not in item.keywords)
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return
    skip = pytest.mark.skip(reason="needs a GPU (none visible to TensorFlow)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    if _ONEDNN:
        terminalreporter.write_line(f"oneDNN in the workers: {', '.join(map(str, _ONEDNN))}")
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped and not (DATA / "mnist").is_dir():
        terminalreporter.write_line(
            f"{len(skipped)} tests skipped: no real test data at {DATA} ({DATA_FROM}). "
            "Point ZOO_DATA_DIR (or ZOO_TEST_DATA) at a folder holding mnist/, "
            "cifar10-jpeg.tar.gz and tiny-imagenet-200-subset.tar.gz."
        )


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """One cache folder per test run, never the user's: archives are extracted and decoded once.

    xdist's workers share it (their temporary folders sit in the run's own), so CIFAR-10 is
    decoded once per run rather than once per worker; the cache locks each entry while it is
    written, so two workers asking at once wait for one decoding.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = tmp_path_factory.getbasetemp().parent / "zoo-cache"
        shared.mkdir(exist_ok=True)
        os.environ["ZOO_CACHE_DIR"] = str(shared)
    else:
        os.environ["ZOO_CACHE_DIR"] = str(tmp_path_factory.mktemp("zoo-cache"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of real datasets (MNIST IDX files, CIFAR-10 and Tiny ImageNet archives)."""
    need_data(DATA / "mnist", "real test data (mnist/)")
    return DATA


_TESTS_RUN = [0]


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from the same seed and an empty Keras session, so memory stays flat."""
    # A full garbage collection costs 0.2-0.5 s late in the suite; every 25th test keeps the
    # memory flat at a fraction of that.
    import keras

    _TESTS_RUN[0] += 1
    keras.utils.clear_session(free_memory=_TESTS_RUN[0] % 25 == 0)
    keras.mixed_precision.set_global_policy("float32")  # a mixed-precision run sets it globally
    keras.utils.set_random_seed(0)
    yield
