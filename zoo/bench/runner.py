"""`bench`: one model's speed, trained from memory and through the real pipeline, against
its PyTorch twin with `--torch`; and the largest batch that fits."""

from __future__ import annotations

import dataclasses
import resource
import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zoo import runs as zoo_runs
from zoo.bench.profiling import profile
from zoo.bench.timing import (
    Speed,
    Watch,
    load_state,
    matmul_ceiling,
    measure,
    measure_feed,
    measure_inference,
    speed,
)
from zoo.machine import cpu_description

if TYPE_CHECKING:
    import tensorflow as tf

    from zoo.recipes import RunConfig


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
        # The run's own pipeline (split, subset, augmentation, labels as its loss takes them).
        train, *_ = zoo_runs.data(config, batch_size=batch, epochs=(0, 10_000))
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
