"""Where the time goes: a few training steps traced with TensorFlow's profiler, ranked by
op type."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras
    import tensorflow as tf


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
