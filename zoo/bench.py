"""`python -m zoo.bench MODEL`: training and inference speed of a model, and where time goes.

Prints images/s and ms per step (median of timed windows after a warm-up) for the model's home
shape, fed (1) from one batch of in-memory tensors and (2) from the real `zoo.data` pipeline
with the recipe's augmentation, the pipeline's cost as the gap between them; inference
images/s; the FLOP/s achieved, as a fraction of what a large matmul reaches on the same
device (the practical ceiling); and peak memory. `--profile DIR` also traces a few training
steps with TensorFlow's profiler and prints the ops that took the time.
"""

from __future__ import annotations

import dataclasses
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import zoo
import zoo.data
from zoo.cli import Parser
from zoo.recipes import RunConfig, parse_set, recipe
from zoo.train import compile_model, forward_flops, steps_per_execution


@dataclasses.dataclass(frozen=True)
class Speed:
    """Median training speed over timed windows."""

    images_per_second: float
    ms_per_step: float


class _WindowTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.times.append(time.perf_counter() - self._start)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.times: list[float] = []


def measure(
    model: keras.Model, data: tf.data.Dataset, batch: int, steps: int, windows: int
) -> Speed:
    """Trains on `data` for one warm-up window and `windows` timed ones of `steps` steps each."""
    timer = _WindowTimer()
    model.fit(
        data, epochs=windows + 1, steps_per_epoch=steps, callbacks=[timer], shuffle=False, verbose=0
    )
    median = statistics.median(timer.times[1:])
    return Speed(batch * steps / median, 1000 * median / steps)


def measure_inference(
    model: keras.Model, x: tf.Tensor, batch: int, steps: int, windows: int
) -> Speed:
    """`model.predict` over `steps` copies of the batch `x`; median of the timed windows."""
    data = tf.data.Dataset.from_tensors(x).repeat(steps)
    times = []
    for _ in range(windows + 1):
        start = time.perf_counter()
        model.predict(data, verbose=0)
        times.append(time.perf_counter() - start)
    median = statistics.median(times[1:])
    return Speed(batch * steps / median, 1000 * median / steps)


def matmul_ceiling(dtype: str = "float32", n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of an `n` x `n` matmul on the default device: the practical ceiling of a step."""
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
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    model.fit(data, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)  # warm
    tf.profiler.experimental.start(folder)
    model.fit(data, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
    tf.profiler.experimental.stop()
    traces = sorted(Path(folder).glob("plugins/profile/*/*.xplane.pb"))
    if not traces:
        raise OSError(f"The profiler wrote no trace (*.xplane.pb) under {folder}.")
    trace = traces[-1]  # the newest, when the folder already held some
    space = xplane_pb2.XSpace.FromString(trace.read_bytes())
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

    With `torch`, also the model's PyTorch twin (`zoo.twins`) on the same in-memory batch,
    in the same process, and the Keras / PyTorch ratio of training images/s.

    Raises:
        ValueError: `torch` for a model without a twin, or a twin whose parameter count
            differs from the Keras model's.
        ModuleNotFoundError: `torch` without PyTorch installed.
    """
    if torch:  # a model without a twin fails before anything is measured
        from zoo import twins

        twin = twins.build_twin(config.model, config.model_kwargs)
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(config.precision)
    info = zoo.describe(config.model)
    shape, classes = info.input_shape, info.num_classes
    model = zoo.build(config.model, input_shape=shape, num_classes=classes, **config.model_kwargs)
    batch = config.batch_size
    per_call = config.steps_per_execution or steps_per_execution(model, batch, steps)
    compile_model(model, config, per_call)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, *shape), dtype=np.float32))
    y = tf.constant(rng.integers(0, classes, batch, dtype=np.int32))
    if config.label_smoothing:
        y = tf.one_hot(y, classes)
    in_memory = tf.data.Dataset.from_tensors((x, y)).repeat()
    memory = measure(model, in_memory, batch, steps, windows)
    inference = measure_inference(model, x, batch, steps, windows)
    flops = forward_flops(model)
    ceiling = matmul_ceiling(keras.mixed_precision.global_policy().compute_dtype)
    figures: dict[str, Any] = {
        "model": config.model,
        "params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "batch": batch,
        "steps_per_execution": per_call,
        "precision": config.precision,
        "jit": config.jit,
        "device": ", ".join(d.name for d in tf.config.list_logical_devices() if "CPU" not in d.name)
        or "CPU",
        "in_memory": dataclasses.asdict(memory),
        "inference": dataclasses.asdict(inference),
        "forward_flops": flops,
        "matmul_flops_per_second": ceiling,
        # A training step is counted as three forward passes (see zoo.train.forward_flops).
        "train_flop_fraction": 3 * flops * memory.images_per_second / ceiling,
        "inference_flop_fraction": flops * inference.images_per_second / ceiling,
    }
    if pipeline:
        n_steps = steps * (windows + 1)
        train, *_ = zoo.data.load(
            config.home_dataset, data_dir=config.data_dir, batch_size=batch,
            augment=config.augment, normalize=config.normalize, seed=config.seed,
            epochs=(0, 10_000),
        )  # fmt: skip
        if config.label_smoothing:
            train = train.map(lambda a, b: (a, tf.one_hot(b, classes)))
        real = measure(model, train.take(n_steps), batch, steps, windows)
        figures["pipeline"] = dataclasses.asdict(real)
        figures["pipeline_cost"] = 1 - real.images_per_second / memory.images_per_second
    if torch:
        if twins.trainable_params(twin) != figures["params"]:
            raise ValueError(
                f"{config.model}: the PyTorch twin has {twins.trainable_params(twin):,} "
                f"trainable parameters, the Keras model {figures['params']:,}."
            )
        figures["torch"] = twins.measure_twin(
            twin, shape, batch, steps, windows, config.optimizer, config.lr,
            config.label_smoothing, config.model_kwargs.get("weight_decay", 0.0),
        )  # fmt: skip
        figures["keras_over_torch"] = (
            memory.images_per_second / figures["torch"]["images_per_second"]
        )
    if profile_dir:
        figures["profile"] = profile(model, in_memory, steps, profile_dir)
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if tf.config.list_logical_devices("GPU"):
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
        figures["peak_gpu_mib"] = peak / 2**20
    return figures


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark CLI; exit status 2 with one line on misuse."""
    parser = Parser(prog="python -m zoo.bench", description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed window")
    parser.add_argument("--windows", type=int, default=5, help="timed windows (median)")
    parser.add_argument("--no-pipeline", action="store_true", help="in-memory tensors only")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--jit", action="store_true")
    parser.add_argument(
        "--steps-per-execution",
        type=int,
        default=0,
        help="training steps per call (default: chosen as zoo.train does)",
    )
    parser.add_argument("--profile", metavar="DIR",
                        help="trace training steps into DIR and print the top ops")  # fmt: skip
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--torch", action="store_true",
                        help="also train the model's PyTorch twin and print the ratio")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        toggles = parse_set(args.set)
        config = recipe(
            args.model, data_dir=args.data_dir, batch_size=args.batch_size,
            precision=args.precision, jit=args.jit,
            steps_per_execution=args.steps_per_execution,
        )  # fmt: skip
        config = dataclasses.replace(config, model_kwargs={**config.model_kwargs, **toggles})
        f = bench(
            config, steps=args.steps, windows=args.windows, pipeline=not args.no_pipeline,
            torch=args.torch, profile_dir=args.profile,
        )  # fmt: skip
    except ModuleNotFoundError as err:
        parser.exit(2, f"{parser.prog}: --torch needs PyTorch ({err}); pip install torch\n")
    except (ValueError, TypeError, OSError) as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
    mem = f["in_memory"]
    print(
        f"model          {f['model']} ({f['params']:,} trainable params), batch {f['batch']}, "
        f"{f['steps_per_execution']} steps per call"
    )
    print(f"device         {f['device']}, {f['precision']}{', XLA' if f['jit'] else ''}")
    print(
        f"in-memory      {mem['images_per_second']:,.1f} images/s, {mem['ms_per_step']:.1f} ms/step"
    )
    inf = f["inference"]
    print(
        f"inference      {inf['images_per_second']:,.1f} images/s, "
        f"{inf['ms_per_step']:.1f} ms/batch (predict)"
    )
    print(
        f"flop/s         train {f['train_flop_fraction']:.1%}, inference "
        f"{f['inference_flop_fraction']:.1%} of a large matmul's "
        f"{f['matmul_flops_per_second'] / 1e9:,.1f} GFLOP/s "
        f"({f['forward_flops'] / 1e6:,.1f} MFLOP per image forward)"
    )
    if "pipeline" in f:
        real = f["pipeline"]
        print(
            f"real pipeline  {real['images_per_second']:,.1f} images/s, "
            f"{real['ms_per_step']:.1f} ms/step (pipeline cost {f['pipeline_cost']:+.1%})"
        )
    if "torch" in f:
        t = f["torch"]
        print(
            f"pytorch twin   {t['images_per_second']:,.1f} images/s, {t['ms_per_step']:.1f} ms/step"
            f" (same {f['params']:,} trainable params, in-memory)"
        )
        print(f"keras/pytorch  {f['keras_over_torch']:.2f}x training images/s")
    if "profile" in f:
        print(f"op time        (trace in {args.profile})")
        for kind, share in f["profile"]:
            print(f"  {share:6.1%}  {kind}")
    print(f"peak memory    {f['peak_rss_mib']:,.0f} MiB resident", end="")
    print(f", {f['peak_gpu_mib']:,.0f} MiB GPU" if "peak_gpu_mib" in f else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
