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


# Jordan's quintic Newton-Schulz coefficients: the fastest rise of small singular values to ~1.
_NS = (3.4445, -4.7750, 2.0315)


def orthogonalize(g: Any, steps: int = 5) -> Any:
    """`g` (rows, cols) pushed towards the nearest semi-orthogonal matrix `U Vᵀ` by `steps`
    Newton-Schulz iterations: its singular values end between about 0.7 and 1.2, in the
    same directions."""
    a, b, c = _NS
    x = g / (keras.ops.sqrt(keras.ops.sum(keras.ops.square(g))) + 1e-7)
    tall = g.shape[0] > g.shape[1]
    if tall:  # iterate on the smaller Gram matrix
        x = keras.ops.transpose(x)
    for _ in range(steps):
        gram = keras.ops.matmul(x, keras.ops.transpose(x))
        x = a * x + keras.ops.matmul(b * gram + c * keras.ops.matmul(gram, gram), x)
    return keras.ops.transpose(x) if tall else x


@keras.saving.register_keras_serializable(package="zoo")
class Muon(keras.optimizers.Optimizer):
    """Muon (Jordan et al. 2024) for conv kernels, SGD with Nesterov momentum for the rest.

    A conv kernel `(kh, kw, in, out)` is a matrix `(out, kh·kw·in)`; its Nesterov momentum
    direction is orthogonalized (`orthogonalize`) and the kernel rescaled to Frobenius norm
    √out before the step, as airbench94's Muon does, so the step size is `learning_rate`
    whatever the gradient's scale. Every other variable (biases, BN offsets, dense kernels)
    takes PyTorch's Nesterov SGD at `other_lr` (dense kernels at `head_lr`), scaled as the
    schedule scales `learning_rate`.

    Args:
        learning_rate: Muon's rate (a float or a schedule).
        momentum: Muon's momentum.
        other_lr: The SGD rate of the other variables at the start; None: `learning_rate`.
        head_lr: The SGD rate of dense kernels (airbench's head) at the start; None:
            `other_lr`.
        other_momentum: Their momentum.
        ns_steps: Newton-Schulz iterations per step.
        initial_lr: The rate `other_lr` corresponds to; None: `learning_rate`'s at step 0.
    """

    def __init__(
        self,
        learning_rate: Any = 0.02,
        momentum: float = 0.6,
        other_lr: float | None = None,
        head_lr: float | None = None,
        other_momentum: float = 0.85,
        ns_steps: int = 5,
        initial_lr: float | None = None,
        name: str = "muon",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum, self.other_momentum, self.ns_steps = momentum, other_momentum, ns_steps
        self.other_lr, self.head_lr = other_lr, head_lr
        if initial_lr is None:  # saved configs carry it: their learning_rate may have decayed
            first = learning_rate(0) if callable(learning_rate) else learning_rate
            initial_lr = float(keras.ops.convert_to_numpy(first))
        self._initial_lr = initial_lr

    def build(self, variables: list) -> None:
        if self.built:
            return
        super().build(variables)
        self.momentums = [self.add_variable_from_reference(v, "momentum") for v in variables]

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        ops = keras.ops
        buffer = self.momentums[self._get_variable_index(variable)]
        gradient = ops.cast(gradient, variable.dtype)
        lr = ops.cast(learning_rate, variable.dtype)
        if len(variable.shape) != 4:
            rate = self.head_lr if len(variable.shape) == 2 and self.head_lr else self.other_lr
            scale = (rate or self._initial_lr) / self._initial_lr
            self.assign(buffer, self.other_momentum * buffer + gradient)
            self.assign_sub(variable, lr * scale * (gradient + self.other_momentum * buffer))
            return
        self.assign(buffer, self.momentum * buffer + gradient)
        direction = gradient + self.momentum * buffer
        kh, kw, cin, cout = variable.shape
        matrix = ops.transpose(ops.reshape(direction, (kh * kw * cin, cout)))  # (out, fan-in)
        update = ops.reshape(ops.transpose(orthogonalize(matrix, self.ns_steps)), variable.shape)
        norm = ops.sqrt(ops.sum(ops.square(variable)))
        self.assign(variable, variable * (cout**0.5 / (norm + 1e-7)) - lr * update)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "other_lr": self.other_lr,
                "head_lr": self.head_lr,
                "other_momentum": self.other_momentum, "ns_steps": self.ns_steps,
                "initial_lr": self._initial_lr}  # fmt: skip
