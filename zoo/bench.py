"""`python -m zoo.bench MODEL`: training speed of a model, with and without the input pipeline.

Prints images/s and ms per step (median of timed windows after a warm-up) for the model's home
shape, fed (1) from one batch of in-memory tensors and (2) from the real `zoo.data` pipeline
with the recipe's augmentation, the pipeline's cost as the gap between them, and peak memory.
"""

from __future__ import annotations

import dataclasses
import resource
import statistics
import sys
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import zoo
import zoo.data
from zoo.cli import Parser
from zoo.recipes import RunConfig, parse_set, recipe
from zoo.train import make_loss, make_optimizer


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


def bench(
    config: RunConfig, *, steps: int, windows: int, pipeline: bool = True, torch: bool = False
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
    model.compile(
        make_optimizer(config), make_loss(config), metrics=["accuracy"], jit_compile=config.jit
    )
    batch = config.batch_size
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, *shape), dtype=np.float32))
    y = tf.constant(rng.integers(0, classes, batch, dtype=np.int32))
    if config.label_smoothing:
        y = tf.one_hot(y, classes)
    memory = measure(model, tf.data.Dataset.from_tensors((x, y)).repeat(), batch, steps, windows)
    figures: dict[str, Any] = {
        "model": config.model,
        "params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "batch": batch,
        "precision": config.precision,
        "jit": config.jit,
        "device": ", ".join(d.name for d in tf.config.list_logical_devices() if "CPU" not in d.name)
        or "CPU",
        "in_memory": dataclasses.asdict(memory),
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
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--torch", action="store_true",
                        help="also train the model's PyTorch twin and print the ratio")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        toggles = parse_set(args.set)
        config = recipe(
            args.model, data_dir=args.data_dir, batch_size=args.batch_size,
            precision=args.precision, jit=args.jit,
        )  # fmt: skip
        config = dataclasses.replace(config, model_kwargs={**config.model_kwargs, **toggles})
        f = bench(
            config, steps=args.steps, windows=args.windows, pipeline=not args.no_pipeline,
            torch=args.torch,
        )  # fmt: skip
    except ModuleNotFoundError as err:
        parser.exit(2, f"{parser.prog}: --torch needs PyTorch ({err}); pip install torch\n")
    except (ValueError, TypeError, OSError) as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
    mem = f["in_memory"]
    print(f"model          {f['model']} ({f['params']:,} trainable params), batch {f['batch']}")
    print(f"device         {f['device']}, {f['precision']}{', XLA' if f['jit'] else ''}")
    print(
        f"in-memory      {mem['images_per_second']:,.1f} images/s, {mem['ms_per_step']:.1f} ms/step"
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
    print(f"peak memory    {f['peak_rss_mib']:,.0f} MiB resident", end="")
    print(f", {f['peak_gpu_mib']:,.0f} MiB GPU" if "peak_gpu_mib" in f else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
