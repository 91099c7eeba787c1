"""Keras's SGD, Adam and AdamW, each updating a variable with TensorFlow's fused kernel.

Keras 3 writes an update as separate ops (momentum SGD: two multiplies, a subtract and two
assignments; Adam: about ten), each a pass over the variable. TensorFlow has one kernel per
rule that computes the same formula in a single pass: `ResourceApplyKerasMomentum` (Keras's
momentum form, `m = momentum * m - lr * g; w += m`), `ResourceApplyGradientDescent` and
`ResourceApplyAdam` (`w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon)`, as
Keras's Adam). Same variables, slots and configuration as Keras's classes, so saved models and
optimizer states load either way; other backends, sparse gradients, AMSGrad and slots that
`zoo.compat.optimizer_slot` cannot find take Keras's own update.
"""

from __future__ import annotations

from typing import Any

import keras

from zoo import compat


def _fusable(gradient: Any, variable: Any) -> bool:
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return not isinstance(gradient, tf.IndexedSlices) and hasattr(variable, "handle")


@keras.saving.register_keras_serializable(package="zoo")
class SGD(keras.optimizers.SGD):
    """`keras.optimizers.SGD` (plain, momentum or Nesterov) with a fused update."""

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if not _fusable(gradient, variable):
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        lr = tf.cast(learning_rate, variable.dtype)
        gradient = tf.cast(gradient, variable.dtype)
        if not self.momentum:
            tf.raw_ops.ResourceApplyGradientDescent(var=variable.handle, alpha=lr, delta=gradient)
            return None
        m = compat.optimizer_slot(self, "momentum", variable)
        if m is None:
            return super().update_step(gradient, variable, learning_rate)
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=variable.handle, accum=m.handle, lr=lr, grad=gradient,
            momentum=tf.cast(self.momentum, variable.dtype), use_nesterov=self.nesterov,
        )  # fmt: skip
        return None


class _FusedAdam:
    """The update of Keras's Adam (and AdamW, whose decay Keras applies before it), fused."""

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self.amsgrad or not _fusable(gradient, variable):
            return super().update_step(gradient, variable, learning_rate)  # type: ignore[misc]
        import tensorflow as tf

        m = compat.optimizer_slot(self, "momentum", variable)
        v = compat.optimizer_slot(self, "velocity", variable)
        if m is None or v is None:
            return super().update_step(gradient, variable, learning_rate)  # type: ignore[misc]
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=m.handle, v=v.handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype), beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype), epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )  # fmt: skip
        return None


@keras.saving.register_keras_serializable(package="zoo")
class Adam(_FusedAdam, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with a fused update."""


@keras.saving.register_keras_serializable(package="zoo")
class AdamW(_FusedAdam, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with a fused update (the decoupled decay stays Keras's)."""
