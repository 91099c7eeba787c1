"""Timing: timed windows, images/s with their spread, the FLOP/s ceiling of a matmul, and
the CPU other processes took meanwhile (from /proc/stat), which flags a window as unreliable."""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras
    import tensorflow as tf


# Other processes' CPU (in cores, averaged over a section's timed windows) above which the
# figures are flagged. Both frameworks spread each op over every core and wait for the slowest
# thread, so a neighbour's fifth of a core already shows (a tenth of the 2-core machines here).
BUSY_CORES = 0.2
_TICK = 1 / os.sysconf("SC_CLK_TCK")  # the unit of /proc/stat and /proc/self/stat
LABELS = {"in_memory": "in-memory", "inference": "inference", "pipeline": "real pipeline",
           "feed": "input alone", "keras_float32": "keras fp32", "torch_float32": "pytorch fp32",
           "keras_best": "keras best", "torch_best": "pytorch best"}  # fmt: skip


def _cpus() -> set[int]:
    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()


@dataclasses.dataclass(frozen=True)
class CpuSample:
    """A moment's clock and CPU counters, in seconds (NaN where /proc cannot be read)."""

    wall: float  # time.perf_counter()
    busy: float  # non-idle CPU time of the cores this process may run on, every process's
    own: float  # this process's CPU time, all threads


def cpu_sample(stat: str | None = None, own_stat: str | None = None) -> CpuSample:
    """Reads the machine's busy CPU time (/proc/stat) and this process's (/proc/self/stat).

    Busy time is user, nice, system, irq, softirq and steal (the hypervisor giving the core to
    another machine counts as a neighbour too), summed over the cores in this process's
    affinity mask. Both files count in clock ticks (10 ms).

    Args:
        stat: The text of /proc/stat; None reads it.
        own_stat: The text of /proc/self/stat; None reads it.
    """
    wall = time.perf_counter()
    try:
        stat = Path("/proc/stat").read_text() if stat is None else stat
        own_stat = Path("/proc/self/stat").read_text() if own_stat is None else own_stat
    except OSError:
        return CpuSample(wall, math.nan, math.nan)
    cpus, ticks = _cpus(), 0
    for line in stat.splitlines():
        name, *values = line.split() or [""]
        if name.startswith("cpu") and name[3:].isdigit() and (not cpus or int(name[3:]) in cpus):
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, values[:8])
            ticks += user + nice + system + irq + softirq + steal  # guest is within user
    fields = own_stat.rsplit(")", 1)[1].split()  # after "pid (comm)", which may hold spaces
    utime, stime = int(fields[11]), int(fields[12])
    return CpuSample(wall, ticks * _TICK, (utime + stime) * _TICK)


def other_cpu_seconds(before: CpuSample, after: CpuSample) -> float:
    """CPU seconds that other processes took between two samples: the machine's less ours."""
    return (after.busy - before.busy) - (after.own - before.own)


class Watch:
    """Times windows (`start` ... `stop`) and the CPU that other processes take in each."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.other_seconds: list[float] = []

    def start(self) -> None:
        self._before = cpu_sample()

    def stop(self) -> None:
        after = cpu_sample()
        self.seconds.append(after.wall - self._before.wall)
        self.other_seconds.append(other_cpu_seconds(self._before, after))


@dataclasses.dataclass(frozen=True)
class Speed:
    """Speed over timed windows (the first, a warm-up, left out), and others' CPU in them.

    Attributes:
        images_per_second: Of the median window.
        ms_per_step: Of the median window.
        window_images_per_second: Each timed window's, in the order they ran.
        other_cores: Cores other processes used during each timed window.
        other_cores_mean: Over all timed windows (others' CPU time / timed time).
        resolution: How far `other_cores_mean` may be off (two standard deviations):
            /proc/stat counts whole clock ticks per core, so short windows read coarsely.
        warmup_seconds: The warm-up window's time: tracing, compiling (XLA's autotuning
            included) and the first steps.
    """

    images_per_second: float
    ms_per_step: float
    window_images_per_second: tuple[float, ...]
    other_cores: tuple[float, ...]
    other_cores_mean: float
    resolution: float
    warmup_seconds: float = math.nan


def speed(watch: Watch, batch: int, steps: int) -> Speed:
    """The `Speed` of a watch's windows of `steps` steps of `batch` images; window 0 warms up."""
    seconds, others = watch.seconds[1:], watch.other_seconds[1:]
    median = statistics.median(seconds)
    # Each counter is read to a tick, so a window's count of one is off by up to a tick
    # either way (standard deviation tick / sqrt(6)): one per core, and our own.
    counters = (len(_cpus()) or os.cpu_count() or 1) + 1
    return Speed(
        images_per_second=batch * steps / median,
        ms_per_step=1000 * median / steps,
        window_images_per_second=tuple(batch * steps / s for s in seconds),
        other_cores=tuple(o / s for o, s in zip(others, seconds, strict=True)),
        other_cores_mean=sum(others) / sum(seconds),
        resolution=2 * _TICK * math.sqrt(counters * len(seconds) / 6) / sum(seconds),
        warmup_seconds=watch.seconds[0],
    )


def measure(
    model: keras.Model, data: tf.data.Dataset, batch: int, steps: int, windows: int,
    between: Callable[[], None] | None = None,
) -> Speed:  # fmt: skip
    """Trains on `data` for one warm-up window and `windows` timed ones of `steps` steps each.

    `between` runs after each window, outside it (`bench` times the PyTorch twin there, so
    the two frameworks' windows alternate).
    """
    import keras

    watch = Watch()

    class Windows(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            watch.start()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            watch.stop()
            if between is not None:
                between()

    model.fit(
        data, epochs=windows + 1, steps_per_epoch=steps, callbacks=[Windows()], shuffle=False,
        verbose=0,
    )  # fmt: skip
    return speed(watch, batch, steps)


def measure_inference(
    model: keras.Model, x: tf.Tensor, batch: int, steps: int, windows: int
) -> Speed:
    """`model.predict` over `steps` copies of the batch `x`; one warm-up, `windows` timed."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensors(x).repeat(steps)
    watch = Watch()
    for _ in range(windows + 1):
        watch.start()
        model.predict(data, verbose=0)
        watch.stop()
    return speed(watch, batch, steps)


def measure_feed(data: tf.data.Dataset, batch: int, steps: int, windows: int) -> Speed:
    """The input pipeline alone: `steps` batches drawn from `data` per window, no model.

    The rate the pipeline can feed at; above the training rate, it does not hold a step back.
    """
    iterator = iter(data)
    watch = Watch()
    for _ in range(windows + 1):
        watch.start()
        for _ in range(steps):
            next(iterator)
        watch.stop()
    return speed(watch, batch, steps)


def matmul_ceiling(dtype: str = "float32", n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of an `n` x `n` matmul on the default device: the practical ceiling of a step."""
    import tensorflow as tf

    a = tf.random.normal((n, n), dtype=dtype)
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, a)))
    product().numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        product().numpy()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def load_state(mean: float, resolution: float) -> str:
    """How other processes' CPU during a section's windows reads: busy, unclear or quiet.

    Busy is over `BUSY_CORES` and over the measurement's resolution; unclear, a resolution too
    coarse to tell quiet from busy (windows too short); "unmeasured" without /proc/stat.
    """
    if math.isnan(mean):
        return "unmeasured"
    if mean > BUSY_CORES and mean > resolution:
        return "busy"
    return "unclear" if resolution > BUSY_CORES else "quiet"


def contention(figures: dict[str, Any]) -> str:
    """One line on whether the machine was quiet while `bench` timed its windows."""
    states, means = figures["contention"], figures["other_cores"]
    busy = {key: means[key] for key, state in states.items() if state == "busy"}
    unclear = [key for key, state in states.items() if state == "unclear"]
    if busy:
        each = ", ".join(f"{LABELS[key]} {cores:.2f}" for key, cores in busy.items())
        return (
            f"WARNING        figures not reliable: other processes used {max(busy.values()):.2f} "
            f"cores during the timed windows ({each}; quiet is under {BUSY_CORES})"
        )
    if unclear:
        each = ", ".join(f"{LABELS[key]} ±{figures[key]['resolution']:.2f}" for key in unclear)
        return f"unclear        windows too short to measure others' CPU ({each}): more --steps"
    if "unmeasured" in states.values():
        return "unmeasured     others' CPU (no /proc/stat): the figures may hide a busy machine"
    return (
        f"quiet          other processes used at most {max(0.0, *means.values()):.2f} cores "
        f"during the timed windows (busy: over {BUSY_CORES})"
    )
