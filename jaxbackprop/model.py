"""The lecture's model and loss as pure functions of arrays.

    y_hat = w * x                       (predict)
    s     = y_hat - y                   (the residual)
    L     = s ** 2 = (w * x - y) ** 2   (squared_error, loss)
    dL/dw = 2 * s * x                   (loss_grad: the closed form, used only to check)

Every function takes Python numbers, NumPy arrays or JAX arrays (integers are promoted
to JAX's default float dtype, see :mod:`jaxbackprop._dtypes`), returns JAX arrays, and
composes with ``jax.jit``, ``jax.vmap`` and ``jax.grad``. The same definitions run on the
hand-written tape (:mod:`jaxbackprop.tape`): they use only operators, so a tape value
passes through them and records each step, with the names ``y_hat``, ``s`` and ``L``.

Integer inputs: ``loss(1, 1, 2)`` works and returns ``1.0``. ``jax.grad(loss)(1, 1, 2)``
still raises JAX's own ``TypeError``, because ``jax.grad`` checks its inputs before
calling ``loss``; pass floats, or use :func:`loss_and_grad` or ``jaxbackprop.tape.grad``,
which promote integers first.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxbackprop._dtypes import promote_integer
from jaxbackprop.tape.core import Var, name

ArrayLike = Any  # Python number, NumPy array, JAX array, or a tape value


def _operands(*args: ArrayLike) -> tuple[ArrayLike, ...]:
    """The operands of one model step, integers promoted to floats.

    Outside the tape they become JAX arrays. On the tape (some operand is a tape value)
    the others stay as given, so eager tape use on Python floats stays in Python floats.
    """
    if any(type(a) is Var for a in args):
        return tuple(a if type(a) is Var else promote_integer(a) for a in args)
    return tuple(jnp.asarray(promote_integer(a)) for a in args)


def predict(w: ArrayLike, x: ArrayLike) -> ArrayLike:
    """The linear model ``y_hat = w * x`` (broadcasting)."""
    w, x = _operands(w, x)
    return name(w * x, "y_hat")


def squared_error(y_hat: ArrayLike, y: ArrayLike) -> ArrayLike:
    """``L = s ** 2`` with ``s = y_hat - y``; ``dL/ds = 2 s`` and ``ds/dy_hat = 1``."""
    y_hat, y = _operands(y_hat, y)
    s = name(y_hat - y, "s")
    return name(s**2, "L")


def loss(w: ArrayLike, x: ArrayLike, y: ArrayLike) -> ArrayLike:
    """The lecture's loss for one sample: ``L(w) = (w * x - y) ** 2``."""
    return squared_error(predict(w, x), y)


def loss_grad(w: ArrayLike, x: ArrayLike, y: ArrayLike) -> jax.Array:
    """The closed form ``dL/dw = 2 (w x - y) x = 2 s x``, an independent check on autodiff."""
    w, x, y = _operands(w, x, y)
    return 2.0 * (w * x - y) * x


def _check_batch(xs: ArrayLike, ys: ArrayLike) -> tuple[jax.Array, jax.Array]:
    xs, ys = _operands(xs, ys)
    if jnp.shape(xs) != jnp.shape(ys):
        raise ValueError(
            f"mean_loss: xs and ys must have the same shape, got xs.shape={jnp.shape(xs)} "
            f"and ys.shape={jnp.shape(ys)}"
        )
    if jnp.ndim(xs) == 0:
        raise ValueError(
            "mean_loss: xs and ys must be batches (at least one axis), got scalars; "
            "use loss(w, x, y) for one sample"
        )
    if jnp.shape(xs)[0] == 0:
        raise ValueError("mean_loss: xs and ys are empty: the mean needs at least one sample")
    return xs, ys


def mean_loss(w: ArrayLike, xs: ArrayLike, ys: ArrayLike) -> jax.Array:
    """The batch mean ``(1/N) sum_i (w x_i - y_i) ** 2``, :func:`loss` mapped by ``jax.vmap``.

    ``xs`` and ``ys`` have the same shape; the batch runs along their first axis.
    Raises ``ValueError`` naming both shapes when they differ.
    """
    xs, ys = _check_batch(xs, ys)
    (w,) = _operands(w)
    per_sample = jax.vmap(loss, in_axes=(None, 0, 0))(w, xs, ys)
    return jnp.mean(per_sample)


@jax.jit
def _loss_and_grad(w: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jax.value_and_grad(loss)(w, x, y)


def loss_and_grad(w: ArrayLike, x: ArrayLike, y: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """``(L, dL/dw)`` from ``jax.value_and_grad(loss)``, jit-compiled; integers promoted."""
    return _loss_and_grad(*_operands(w, x, y))
