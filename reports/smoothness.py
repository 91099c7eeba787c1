"""Santurkar et al. (2018), "How Does Batch Normalization Help Optimization?": along training,
how much the loss and its gradient change over the step the optimizer is about to take.

    from reports.smoothness import smoothness
    result = smoothness("vgg_a", {"bn": True}, steps=200, every=10, data_dir="~/data")

Every `every` steps, at the current weights θ with the current batch's gradient g and learning
rate η, and for each step size s = η × (0.5, 1, 2, 4):
- loss variation: the range of L(θ − s·g) over the step sizes (their figure 4a);
- gradient predictiveness: ‖∇L(θ) − ∇L(θ − s·g)‖, a band over the step sizes (figure 4b);
- effective β-smoothness: the largest ‖∇L(θ) − ∇L(θ − s·g)‖ / ‖s·g‖ (figure 4c).
The model and its ablation train, and are probed, on the same batches in the same order.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import keras
import pandas as pd
from matplotlib.figure import Figure

from zoo.files import save_figure, write_csv

MULTIPLIERS = (0.5, 1.0, 2.0, 4.0)


def probe(model: keras.Model, x: Any, y: Any, lr: float, multipliers=MULTIPLIERS) -> dict:
    """The three measures at the model's current weights on one batch; the model is left as
    it was (weights and batch-norm statistics).

    Returns:
        `loss`, `loss_min`, `loss_max` (over the steps), `grad_change_min` / `_max` (over the
        steps) and `beta` (the largest ratio), as floats.
    """
    import tensorflow as tf

    variables = model.trainable_variables
    saved = [v.numpy() for v in model.variables]  # BN's moving statistics move in training mode

    def loss_and_gradient() -> tuple[float, list[tf.Tensor]]:
        with tf.GradientTape() as tape:
            predicted = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=predicted, training=True)
        return float(loss), tape.gradient(loss, variables)

    try:
        loss, gradient = loss_and_gradient()
        norm = float(tf.linalg.global_norm(gradient))
        losses, changes, ratios = [], [], []
        for multiplier in multipliers:
            step = lr * multiplier
            for v, g in zip(variables, gradient, strict=True):
                v.assign_sub(step * g)
            moved_loss, moved = loss_and_gradient()
            difference = [a - b for a, b in zip(gradient, moved, strict=True)]
            change = float(tf.linalg.global_norm(difference))
            losses.append(moved_loss)
            changes.append(change)
            ratios.append(change / max(step * norm, 1e-30))
            for v, w in zip(model.variables, saved, strict=True):
                v.assign(w)
    finally:
        for v, w in zip(model.variables, saved, strict=True):
            v.assign(w)
    return dict(loss=loss, loss_min=min(losses), loss_max=max(losses),
                grad_change_min=min(changes), grad_change_max=max(changes),
                beta=max(ratios))  # fmt: skip


class Probes(keras.callbacks.Callback):
    """Probes the model before every `every`-th training step, on the next batch of
    `batches`: a seeded pipeline, so a model and its ablation are probed on the same batches."""

    def __init__(self, batches: Any, every: int, lr: float) -> None:
        super().__init__()
        self.batches, self.every, self.lr = iter(batches), every, lr
        self.rows: list[dict] = []
        self.step = 0

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        x, y = next(self.batches)
        if self.step % self.every == 0:
            self.rows.append({"step": self.step, **probe(self.model, x, y, self.lr)})
        self.step += 1


@dataclasses.dataclass
class Smoothness:
    """The probes of a model and its ablation: one DataFrame each, keyed by label."""

    frames: dict[str, pd.DataFrame]
    files: list[Path]


def smoothness(
    model: str,
    compare: dict[str, Any],
    *,
    steps: int = 200,
    every: int = 10,
    lr: float | None = None,
    batch_size: int | None = None,
    subset: float | int | None = None,
    data_dir: str | None = None,
    seed: int = 0,
    toggles: dict[str, Any] | None = None,
    out: str | Path = "smoothness",
    verbose: bool = True,
    precision: str = "float32",
) -> Smoothness:
    """Trains `model` and the ablation `compare` for `steps` steps each on the same batches,
    probing every `every` steps, and draws the three measures for both on one figure.
    `toggles` apply to both (a study's budget halves the width, say). `precision` is the
    Keras policy of both, float32 by default whatever the study trained in: the probes measure
    loss changes along tiny steps, which bfloat16 activations would round away.

    Raises:
        ValueError: Unknown model or toggle, or steps / every below 1.
    """
    import zoo
    from zoo import runs as zoo_runs
    from zoo.recipes import recipe
    from zoo.train import compile_model

    if steps < 1 or every < 1:
        raise ValueError(f"steps and every must be >= 1, got {steps}, {every}.")
    toggles = dict(toggles or {})
    zoo.registry.resolve_toggles(model, {**toggles, **compare})  # fails before any training
    base = recipe(model, seed=seed, steps_per_execution=1, precision=precision,
                  **{k: v for k, v in (("lr", lr), ("batch_size", batch_size), ("subset", subset),
                                       ("data_dir", data_dir)) if v is not None})  # fmt: skip
    frames = {}
    for label, ablation in (("baseline", {}), (_label(compare), compare)):
        config = dataclasses.replace(
            base, model_kwargs={**base.model_kwargs, **toggles, **ablation}
        )
        keras.utils.set_random_seed(seed)
        keras.mixed_precision.set_global_policy(config.precision)
        train, _, _, info = zoo_runs.data(config, augment=False)
        net = zoo.build(model, input_shape=info.input_shape, num_classes=info.num_classes,
                        **config.model_kwargs)  # fmt: skip
        compile_model(net, config, 1)
        probes = Probes(train.repeat(), every, config.lr)
        net.fit(train.repeat(), steps_per_epoch=steps, epochs=1, callbacks=[probes],
                shuffle=False, verbose=0)  # fmt: skip
        frames[label] = pd.DataFrame(probes.rows)
        if verbose:
            print(f"{model} {label}: {len(probes.rows)} probes over {steps} steps")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for label, frame in frames.items():
        files.append(out / f"probes_{label}.csv")
        write_csv(files[-1], frame, index=False)
    fig = smoothness_figure(frames, f"{model}: loss and gradient along the training path")
    for suffix in (".png", ".svg"):
        files.append(out / f"smoothness{suffix}")
        save_figure(files[-1], fig, dpi=120)
    if verbose:
        print(f"{out}: {', '.join(p.name for p in files)}")
    return Smoothness(frames, files)


def _label(toggles: dict[str, Any]) -> str:
    return "+".join(k if v is True else f"{k}={v}" for k, v in toggles.items()) or "ablation"


def smoothness_figure(frames: dict[str, pd.DataFrame], title: str = "") -> Figure:
    """Santurkar et al.'s figure 4: loss variation and gradient predictiveness as bands over
    the step sizes, and effective β-smoothness, for each model, against training steps."""
    fig = Figure(figsize=(13, 4), layout="constrained")
    axes = fig.subplots(1, 3)
    for (label, frame), color in zip(frames.items(), ("tab:blue", "tab:red"), strict=False):
        axes[0].fill_between(frame["step"], frame["loss_min"], frame["loss_max"], color=color,
                             alpha=0.35, label=label)  # fmt: skip
        axes[1].fill_between(frame["step"], frame["grad_change_min"], frame["grad_change_max"],
                             color=color, alpha=0.35, label=label)  # fmt: skip
        axes[2].plot(frame["step"], frame["beta"], color=color, label=label)
    for ax, name in zip(axes, ("loss variation", "gradient predictiveness (ℓ2 change)",
                               "effective β-smoothness"), strict=True):  # fmt: skip
        ax.set(xlabel="training step", title=name)
        ax.legend()
    fig.suptitle(title)
    return fig
