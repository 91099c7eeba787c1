"""`python -m zoo.bench MODEL`: training and inference speed of a model, and where time goes.

Prints images/s and ms per step (median of timed windows after a warm-up, with the range over
the windows) for the model's home shape, fed (1) from one batch of in-memory tensors and (2)
from the real `zoo.data` pipeline with the recipe's augmentation, the pipeline's cost as the
gap between them; inference images/s; the FLOP/s achieved, as a fraction of what a large
matmul reaches on the same device (the practical ceiling); and peak memory. `--torch` trains
the model's PyTorch twin in windows that alternate with the Keras ones and prints the ratio
over the paired windows; `--profile DIR` traces a few training steps with TensorFlow's
profiler and prints the ops that took the time.

Every run names the CPU and its vector extensions and measures, from /proc/stat, the CPU that
other processes took during each timed window: a neighbour slows the frameworks unequally
(PyTorch's CPU threads lose far more than TensorFlow's), so above `BUSY_CORES` the figures
are flagged as not reliable.
"""

from __future__ import annotations

import dataclasses
import math
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.cli import Parser, positive_int
from zoo.machine import cpu_description

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from zoo.recipes import RunConfig

# Other processes' CPU (in cores, averaged over a section's timed windows) above which the
# figures are flagged. Both frameworks spread each op over every core and wait for the slowest
# thread, so a neighbour's fifth of a core already shows (a tenth of the 2-core machines here).
BUSY_CORES = 0.2
_TICK = 1 / os.sysconf("SC_CLK_TCK")  # the unit of /proc/stat and /proc/self/stat
_LABELS = {"in_memory": "in-memory", "inference": "inference", "pipeline": "real pipeline",
           "feed": "input alone", "keras_float32": "keras fp32", "torch_float32": "pytorch fp32",
           "keras_best": "keras best", "torch_best": "pytorch best"}  # fmt: skip


# The machine: what it is and who else uses it. Here rather than in a module of its own
# because the benchmark is its only user; it is most of why this file passes 500 lines.


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


def profile(
    model: keras.Model, data: tf.data.Dataset, steps: int, folder: str, top: int = 12
) -> list[tuple[str, float]]:
    """Traces `steps` training steps into `folder` (TensorBoard's profile plugin reads it) and
    returns the `top` op types by their share of op time on the host.
    """
    import tensorflow as tf

    from zoo import compat

    model.fit(data, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)  # warm
    tf.profiler.experimental.start(folder)
    model.fit(data, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
    tf.profiler.experimental.stop()
    traces = sorted(Path(folder).glob("plugins/profile/*/*.xplane.pb"))
    if not traces:
        raise OSError(f"The profiler wrote no trace (*.xplane.pb) under {folder}.")
    trace = traces[-1]  # the newest, when the folder already held some
    reader = compat.xplane_space()
    if reader is None:
        raise OSError(
            f"This TensorFlow moved its trace format's reader; open {trace} with TensorBoard's "
            "profile plugin instead."
        )
    space = reader.FromString(trace.read_bytes())
    spent: dict[str, float] = {}
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):  # the threads that run ops
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" in name and "::" not in name:  # "scope/op:OpType": an executed op
                    kind = name.rsplit(":", 1)[1]
                    spent[kind] = spent.get(kind, 0.0) + event.duration_ps
    total = sum(spent.values()) or 1.0
    ranked = sorted(spent.items(), key=lambda kv: -kv[1])[:top]
    return [(kind, share / total) for kind, share in ranked]


def _twin(
    config: RunConfig, shape: tuple[int, int, int], params: int, steps: int, setting: Any
) -> tuple[Watch, Callable[[], None]]:
    """The PyTorch twin's watch, and a function that runs and times one window of it."""
    from zoo import twins

    twin = twins.build_twin(config.model, config.model_kwargs)
    if twins.trainable_params(twin) != params:
        raise ValueError(
            f"{config.model}: the PyTorch twin has {twins.trainable_params(twin):,} "
            f"trainable parameters, the Keras model {params:,}."
        )
    train = twins.trainer(
        twin, shape, config.batch_size, config.optimizer, config.lr,
        config.label_smoothing, config.model_kwargs.get("weight_decay", 0.0),
        decoupled_decay=config.decoupled_decay, momentum=config.momentum, rho=config.rho,
        setting=setting,
    )  # fmt: skip
    watch = Watch()

    def window() -> None:
        watch.start()
        train(steps)
        watch.stop()

    return watch, window


def _comparisons(
    config: RunConfig, shape: tuple[int, int, int], params: int, per_call: int,
    data: tf.data.Dataset, steps: int, windows: int,
) -> dict[str, tuple[Speed, Speed, dict[str, Any]]]:  # fmt: skip
    """Keras against its PyTorch twin twice: both at float32, and each at its fastest sound
    setting (Keras's auto policy; PyTorch's `twins.best_setting`). Each pair trains in
    alternating windows (Keras, PyTorch, Keras, ...) on the same in-memory batch; the ratio
    is taken over each Keras window and the PyTorch window right after it.
    """
    import keras
    import tensorflow as tf
    import torch

    import zoo
    from zoo import machine, twins
    from zoo.train import compile_model

    # Both frameworks on the same device: Keras runs where TensorFlow puts it.
    gpu = bool(tf.config.list_logical_devices("GPU"))
    if gpu and not torch.cuda.is_available():
        raise ValueError(
            "TensorFlow trains on the GPU here but this PyTorch has no CUDA: install a CUDA "
            "build of PyTorch, or compare on the CPU with CUDA_VISIBLE_DEVICES=''."
        )
    device = "cuda" if gpu else "cpu"
    best = machine.auto_precision()
    found = {}
    for name, precision, setting in (("float32", "float32", twins.Setting(device=device)),
                                     ("best", best, twins.best_setting(best, device))):  # fmt: skip
        if name == "best" and setting == twins.Setting(device=device):
            found[name] = found["float32"]  # float32 is the best here: measured once
            continue
        keras.mixed_precision.set_global_policy(precision)
        info = zoo.describe(config.model)
        model = zoo.build(config.model, input_shape=shape, num_classes=info.num_classes,
                          **config.model_kwargs)  # fmt: skip
        compile_model(model, dataclasses.replace(config, precision=precision), per_call)
        twin_watch, twin_window = _twin(config, shape, params, steps, setting)
        keras_speed = measure(model, data, config.batch_size, steps, windows, twin_window)
        torch_speed = speed(twin_watch, config.batch_size, steps)
        pairs = zip(keras_speed.window_images_per_second, torch_speed.window_images_per_second,
                    strict=True)  # fmt: skip
        ratios = [k / t for k, t in pairs]
        found[name] = (keras_speed, torch_speed, {
            "keras_setting": precision, "torch_setting": str(setting), "ratios": ratios,
            "ratio": statistics.median(ratios),
        })  # fmt: skip
    return found


def bench(
    config: RunConfig,
    *,
    steps: int,
    windows: int,
    pipeline: bool = True,
    torch: bool = False,
    profile_dir: str | None = None,
) -> dict[str, Any]:
    """Measures a run configuration's training speed; returns the figures as a dict.

    With `torch`, also the model's PyTorch twin (`zoo.twins`) on the same in-memory batch, in
    the same process, its windows alternating with the Keras ones (Keras, PyTorch, Keras, ...),
    and the Keras / PyTorch ratio of training images/s over each pair of windows: once with
    both at float32, once with each at its fastest sound setting (`_comparisons`).
    `figures["busy"]` says whether other processes took more than `BUSY_CORES` during any
    section's timed windows; the figures are not reliable then.

    Raises:
        ValueError: `torch` for a model without a twin, or a twin whose parameter count
            differs from the Keras model's.
        ModuleNotFoundError: `torch` without PyTorch installed.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    import zoo
    import zoo.data
    from zoo.train import compile_model, forward_flops, steps_per_execution

    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(config.precision)
    info = zoo.describe(config.model)
    shape, classes, batch = info.input_shape, info.num_classes, config.batch_size
    model = zoo.build(config.model, input_shape=shape, num_classes=classes, **config.model_kwargs)
    params = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    if torch:  # fails early for a model without a twin
        from zoo import twins

        twins.build_twin(config.model, config.model_kwargs)
    per_call = config.steps_per_execution or steps_per_execution(model, batch, steps)
    compile_model(model, config, per_call)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, *shape), dtype=np.float32))
    y = tf.constant(rng.integers(0, classes, batch, dtype=np.int32))
    if config.label_smoothing:
        y = tf.one_hot(y, classes)
    in_memory = tf.data.Dataset.from_tensors((x, y)).repeat()
    sections = {"in_memory": measure(model, in_memory, batch, steps, windows)}
    sections["inference"] = measure_inference(model, x, batch, steps, windows)
    if pipeline:
        train, *_ = zoo.data.load(
            config.home_dataset, data_dir=config.data_dir, batch_size=batch,
            augment=config.augment, normalize=config.normalize, seed=config.seed,
            epochs=(0, 10_000),
        )  # fmt: skip
        if config.label_smoothing:
            train = train.map(lambda a, b: (a, tf.one_hot(b, classes)))
        sections["feed"] = measure_feed(train, batch, steps, windows)
        train = train.take(steps * (windows + 1))
        sections["pipeline"] = measure(model, train, batch, steps, windows)
    memory, inference = sections["in_memory"], sections["inference"]
    flops = forward_flops(model)
    ceiling = matmul_ceiling(keras.mixed_precision.global_policy().compute_dtype)
    devices = [d.name for d in tf.config.list_logical_devices() if "CPU" not in d.name]
    figures: dict[str, Any] = {
        "model": config.model,
        "params": params,
        "batch": batch,
        "steps_per_execution": per_call,
        "precision": config.precision,
        "jit": config.jit,
        "device": ", ".join(devices) or "CPU",
        "cpu": cpu_description(),
        **{key: dataclasses.asdict(section) for key, section in sections.items()},
        "forward_flops": flops,
        "matmul_flops_per_second": ceiling,
        # A training step is counted as three forward passes (see zoo.train.forward_flops).
        "train_flop_fraction": 3 * flops * memory.images_per_second / ceiling,
        "inference_flop_fraction": flops * inference.images_per_second / ceiling,
        # Other processes' CPU, in cores, over each section's timed windows.
        "other_cores": {key: section.other_cores_mean for key, section in sections.items()},
        "contention": {
            key: load_state(section.other_cores_mean, section.resolution)
            for key, section in sections.items()
        },
    }
    if pipeline:
        real = sections["pipeline"].images_per_second
        figures["pipeline_cost"] = 1 - real / memory.images_per_second
    if profile_dir:
        figures["profile"] = profile(model, in_memory, steps, profile_dir)
    if torch:
        figures["comparisons"] = {}
        for name, (keras_speed, torch_speed, comparison) in _comparisons(
            config, shape, params, per_call, in_memory, steps, windows
        ).items():
            sections[f"keras_{name}"], sections[f"torch_{name}"] = keras_speed, torch_speed
            figures["comparisons"][name] = comparison
            for key, section in ((f"keras_{name}", keras_speed), (f"torch_{name}", torch_speed)):
                figures[key] = dataclasses.asdict(section)
                figures["other_cores"][key] = section.other_cores_mean
                figures["contention"][key] = load_state(
                    section.other_cores_mean, section.resolution
                )
        keras.mixed_precision.set_global_policy(config.precision)
    figures["busy"] = "busy" in figures["contention"].values()
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if tf.config.list_logical_devices("GPU"):
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
        figures["peak_gpu_mib"] = peak / 2**20
    return figures


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
        each = ", ".join(f"{_LABELS[key]} {cores:.2f}" for key, cores in busy.items())
        return (
            f"WARNING        figures not reliable: other processes used {max(busy.values()):.2f} "
            f"cores during the timed windows ({each}; quiet is under {BUSY_CORES})"
        )
    if unclear:
        each = ", ".join(f"{_LABELS[key]} ±{figures[key]['resolution']:.2f}" for key in unclear)
        return f"unclear        windows too short to measure others' CPU ({each}): more --steps"
    if "unmeasured" in states.values():
        return "unmeasured     others' CPU (no /proc/stat): the figures may hide a busy machine"
    return (
        f"quiet          other processes used at most {max(0.0, *means.values()):.2f} cores "
        f"during the timed windows (busy: over {BUSY_CORES})"
    )


def _parser() -> Parser:
    parser = Parser(prog="python -m zoo.bench", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    # fmt: off
    add("model", help="registry name of the model, e.g. vgg_a (python -m zoo list)")
    add("--data-dir", default=None, help="data folder (default: $ZOO_DATA_DIR, then TFDS)")
    add("--batch-size", type=positive_int, default=128, help="images per step (default: 128)")
    add("--steps", type=positive_int, default=10, help="steps per timed window (default: 10)")
    add("--windows", type=positive_int, default=5,
        help="timed windows after one warm-up; figures are their median (default: 5)")
    add("--no-pipeline", action="store_true", help="in-memory tensors only, no real pipeline")
    add("--precision", default="auto",
        help="auto (default: the fastest sound one here), float32, mixed_float16, mixed_bfloat16")
    add("--jit", action="store_true", help="compile the training step with XLA")
    add("--steps-per-execution", type=int, default=0,
        help="training steps per call (default: chosen as zoo.train does)")
    add("--profile", metavar="DIR", help="trace training steps into DIR and print the top ops")
    add("--set", action="append", default=[], metavar="KEY=VALUE",
        help="a model toggle, e.g. --set bn=True (repeatable)")
    add("--torch", action="store_true",
        help="also train the model's PyTorch twin, alternating windows, and print the ratio")
    add("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    add("--largest-batch", action="store_true",
        help="only find the largest power-of-two batch whose training step fits in memory")
    # fmt: on
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark CLI; exit status 2 with one line on misuse.

    The arguments are parsed before TensorFlow loads, so --help and misuse answer at once.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    import zoo
    from zoo import registry

    try:  # before TensorFlow loads
        registry.check_model(args.model)
    except ValueError as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
    zoo.load()
    from zoo.cli import parse_set
    from zoo.recipes import recipe

    try:
        toggles = parse_set(args.set)
        config = recipe(
            args.model, data_dir=args.data_dir, batch_size=args.batch_size,
            precision=args.precision, jit=args.jit,
            steps_per_execution=args.steps_per_execution,
        )  # fmt: skip
        config = dataclasses.replace(config, model_kwargs={**config.model_kwargs, **toggles})
        if args.largest_batch:
            fits, failed = largest_batch(config)
            beyond = f"; {failed} ran out of memory" if failed else " (the limit tried)"
            print(f"largest batch  {fits}{beyond}")
            return 0
        figures = bench(
            config, steps=args.steps, windows=args.windows, pipeline=not args.no_pipeline,
            torch=args.torch, profile_dir=args.profile,
        )  # fmt: skip
    except ModuleNotFoundError as err:
        parser.exit(2, f"{parser.prog}: --torch needs PyTorch ({err}): pip install -e '.[bench]'\n")
    except (ValueError, TypeError, OSError) as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
    print(report(figures, args.profile))
    if args.json:
        from zoo.files import write_json

        write_json(args.json, figures)
    return 0


def largest_batch(config: RunConfig, limit: int = 1 << 16) -> tuple[int, int | None]:
    """The largest power-of-two batch, up to `limit`, whose training step fits in memory.

    Doubles the batch from 1, training two steps on random data at each size. Returns the
    largest that fitted and the first that ran out of memory (None if none did; 0 fitted if
    even one image did not). Meant for GPUs: on a CPU the operating system may end the
    process before TensorFlow reports that memory ran out.
    """
    import keras
    import tensorflow as tf

    import zoo
    from zoo.train import compile_model

    keras.mixed_precision.set_global_policy(config.precision)
    info = zoo.describe(config.model)
    tf.get_logger().setLevel("ERROR")  # each size retraces the step, by design
    fits, batch = 0, 1
    while batch <= limit:
        keras.utils.clear_session(free_memory=True)
        model = zoo.build(
            config.model, input_shape=info.input_shape, num_classes=info.num_classes,
            **config.model_kwargs,
        )  # fmt: skip
        compile_model(model, dataclasses.replace(config, label_smoothing=0.0), 1)
        try:
            # Made on the device: a batch embedded in the graph would hit protobuf's 2 GB cap.
            x = tf.random.normal((batch, *info.input_shape))
            y = tf.random.uniform((batch,), 0, info.num_classes, dtype=tf.int32)
            for _ in range(2):
                model.train_on_batch(x, y)
        except (tf.errors.ResourceExhaustedError, tf.errors.InternalError) as err:
            # cuDNN reports a lack of workspace memory as an internal error.
            if isinstance(err, tf.errors.InternalError) and "memory" not in str(err).lower():
                raise
            return fits, batch
        fits, batch = batch, batch * 2
    return fits, None


def _cores(value: float) -> str:
    return f"{round(value, 2) + 0.0:.2f}"  # no "-0.00"


def _speed_line(label: str, s: dict[str, Any], unit: str = "step") -> str:
    windows = s["window_images_per_second"]
    return (
        f"{label:<15}{s['images_per_second']:,.1f} images/s ({min(windows):,.1f}–"
        f"{max(windows):,.1f} over {len(windows)} windows), {s['ms_per_step']:.1f} ms/{unit}"
    )


def report(f: dict[str, Any], profile_dir: str | None = None) -> str:
    """The figures of `bench` as the command prints them."""
    cpu = f["cpu"]
    lines = [
        f"model          {f['model']} ({f['params']:,} trainable params), batch {f['batch']}, "
        f"{f['steps_per_execution']} steps per call",
        f"device         {f['device']}, {f['precision']}{', XLA' if f['jit'] else ''}",
        f"cpu            {cpu['model']}, {cpu['cores']} cores; {cpu['vector']}",
        _speed_line("in-memory", f["in_memory"]),
        _speed_line("inference", f["inference"], "batch (predict)"),
        f"flop/s         train {f['train_flop_fraction']:.1%}, inference "
        f"{f['inference_flop_fraction']:.1%} of a large matmul's "
        f"{f['matmul_flops_per_second'] / 1e9:,.1f} GFLOP/s "
        f"({f['forward_flops'] / 1e6:,.1f} MFLOP per image forward)",
    ]
    if "pipeline" in f:
        lines.append(
            _speed_line("real pipeline", f["pipeline"])
            + f" (pipeline cost {f['pipeline_cost']:+.1%})"
        )
        lines.append(_speed_line("input alone", f["feed"], "batch (no model)"))
    lines.append(
        f"warm-up        {f['in_memory']['warmup_seconds']:.1f} s for the first window "
        "(tracing, compiling, first steps)"
    )
    for name, c in f.get("comparisons", {}).items():
        ratios = c["ratios"]
        lines += [
            _speed_line(_LABELS[f"keras_{name}"], f[f"keras_{name}"]) + f" ({c['keras_setting']})",
            _speed_line(_LABELS[f"torch_{name}"], f[f"torch_{name}"])
            + f" ({c['torch_setting']}, same {f['params']:,} params)",
            f"keras/pytorch  {c['ratio']:.2f}x training images/s {name} against {name}, median "
            f"of {len(ratios)} paired windows ({min(ratios):.2f}–{max(ratios):.2f}), alternating",
        ]
    lines.append("others' CPU    cores used by other processes in each timed window:")
    for key, mean in f["other_cores"].items():
        each = " ".join(_cores(cores) for cores in f[key]["other_cores"])
        resolution = f[key]["resolution"]
        lines.append(f"  {_LABELS[key]:<13}{each} (mean {_cores(mean)} ±{resolution:.2f})")
    lines.append(contention(f))
    if "profile" in f:
        lines.append(f"op time        (trace in {profile_dir})")
        lines += [f"  {share:6.1%}  {kind}" for kind, share in f["profile"]]
    gpu = f", {f['peak_gpu_mib']:,.0f} MiB GPU" if "peak_gpu_mib" in f else ""
    lines.append(f"peak memory    {f['peak_rss_mib']:,.0f} MiB resident{gpu}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
