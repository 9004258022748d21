"""The lecture's model and loss as pure functions of arrays.

    y_hat = w * x                       (predict)
    s     = y_hat - y                   (the residual)
    L     = s ** 2 = (w * x - y) ** 2   (squared_error, loss)
    dL/dw = 2 * s * x                   (loss_grad: the closed form, used only to check)

Every function takes Python numbers, NumPy arrays or JAX arrays (integers are promoted
to JAX's default float dtype, see :mod:`jaxbackprop._dtypes`), returns JAX arrays, and
composes with ``jax.jit``, ``jax.vmap`` and ``jax.grad``. The same definitions run on the
hand-written tape (:mod:`jaxbackprop.tape`): they use only operators, so a tape value
passes through them and records each step. The model knows nothing about the tape; the
tape's walkthrough names the values after the local variables ``y_hat``, ``s``, ``L``.

Integer inputs: ``loss(1, 1, 2)`` works and returns ``1.0``. ``jax.grad(loss)(1, 1, 2)``
still raises JAX's own ``TypeError``, because ``jax.grad`` checks its inputs before
calling ``loss``; pass floats, or use :func:`loss_and_grad` or ``jaxbackprop.tape.grad``,
which promote integers first.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbackprop._dtypes import promote_integer

ArrayLike = Any  # Python number, NumPy array, JAX array, or another library's array value
_ARRAYS = (int, float, bool, list, tuple, np.ndarray, np.generic, jax.Array)


def _operands(**named: ArrayLike) -> tuple[ArrayLike, ...]:
    """The operands of one model step, by name, integers promoted to floats.

    Numbers and arrays become JAX arrays. If some operand is a value of another array
    library (the hand-written tape's, say: anything with a ``shape``), every operand stays
    as given and that library's operators do the computing: eager use on Python floats
    stays in floats. Anything else (a string, ``None``) is a ``TypeError`` naming it.
    """
    args = tuple(named.values())
    for name, a in named.items():
        if not isinstance(a, _ARRAYS) and not hasattr(a, "shape"):
            raise TypeError(f"{name} must be a number or an array, got {type(a).__name__} {a!r}")
    if all(isinstance(a, _ARRAYS) for a in args):
        return tuple(jnp.asarray(promote_integer(a)) for a in args)
    return tuple(promote_integer(a) for a in args)


def predict(w: ArrayLike, x: ArrayLike) -> ArrayLike:
    r"""The linear model of the lecture, :math:`\hat y = w x`.

    On the tape the product is named ``y_hat``; ``w`` and ``x`` broadcast against each
    other, so ``x`` can be a batch.

    Args:
      w: the weight, a number or an array.
      x: the input, a number or an array that broadcasts with ``w``.

    Returns:
      ``w * x`` as a JAX array (a tape value when either input is one).

    Examples:
      >>> import jaxbackprop as jb
      >>> print(jb.predict(2.0, 4.0))
      8.0
      >>> print(jb.predict(2.0, [1.0, 2.0, 3.0]))
      [2. 4. 6.]
    """
    w, x = _operands(w=w, x=x)
    y_hat = w * x
    return y_hat


def squared_error(y_hat: ArrayLike, y: ArrayLike) -> ArrayLike:
    r"""The squared error :math:`L = s^2` of the residual :math:`s = \hat y - y`.

    Its local gradients are :math:`\partial L/\partial s = 2s` and
    :math:`\partial s/\partial \hat y = 1`. On the tape ``s`` and ``L`` are named.

    Args:
      y_hat: the prediction.
      y: the target, broadcasting with ``y_hat``.

    Returns:
      ``(y_hat - y) ** 2``, elementwise.

    Examples:
      >>> import jaxbackprop as jb
      >>> print(jb.squared_error(1.0, 2.0))
      1.0
    """
    y_hat, y = _operands(y_hat=y_hat, y=y)
    s = y_hat - y
    L = s**2  # noqa: N806  (the lecture's name)
    return L


def loss(w: ArrayLike, x: ArrayLike, y: ArrayLike) -> ArrayLike:
    r"""The lecture's loss for one sample, :math:`L(w) = (w x - y)^2`.

    :func:`predict` then :func:`squared_error`: the graph ``y_hat = w * x``,
    ``s = y_hat - y``, ``L = s ** 2`` that the lecture differentiates by hand. Pure, so
    ``jax.grad``, ``jax.jit``, ``jax.vmap`` and :func:`jaxbackprop.tape.grad` all take it.

    Args:
      w: the weight (the parameter).
      x: the input (fixed data).
      y: the target (fixed data).

    Returns:
      The loss, a JAX array of the broadcast shape of the inputs (a scalar for scalars).

    Examples:
      The first note's example, ``x=1, y=2, w=1``: loss 1 and ``dL/dw = -2``.

      >>> import jax
      >>> import jaxbackprop as jb
      >>> print(jb.loss(1.0, 1.0, 2.0))
      1.0
      >>> print(jax.grad(jb.loss)(1.0, 1.0, 2.0))
      -2.0
    """
    return squared_error(predict(w, x), y)


def loss_grad(w: ArrayLike, x: ArrayLike, y: ArrayLike) -> jax.Array:
    r"""The gradient of :func:`loss` in closed form, an independent check on autodiff.

    .. math::

       \frac{\partial L}{\partial w} = \frac{\partial L}{\partial s}
       \frac{\partial s}{\partial \hat y} \frac{\partial \hat y}{\partial w}
       = 2 s \cdot 1 \cdot x = 2 (w x - y) x

    Args:
      w: the weight.
      x: the input.
      y: the target.

    Returns:
      ``2 * (w * x - y) * x``, a JAX array.

    Examples:
      The second note's example, ``x=2, y=4, w=1``: ``2sx = -8``, as ``jax.grad`` gives.

      >>> import jax
      >>> import jaxbackprop as jb
      >>> print(jb.loss_grad(1.0, 2.0, 4.0), jax.grad(jb.loss)(1.0, 2.0, 4.0))
      -8.0 -8.0
    """
    w, x, y = _operands(w=w, x=x, y=y)
    return 2.0 * (w * x - y) * x


def _check_batch(xs: ArrayLike, ys: ArrayLike) -> tuple[jax.Array, jax.Array]:
    xs, ys = _operands(xs=xs, ys=ys)
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
    r"""The mean of :func:`loss` over a batch, :func:`loss` mapped by ``jax.vmap``.

    .. math::

       \bar L(w) = \frac{1}{N} \sum_{i=1}^{N} (w x_i - y_i)^2

    Args:
      w: the weight, shared by every sample.
      xs: the inputs, the batch along the first axis.
      ys: the targets, of the same shape as ``xs``.

    Returns:
      The mean loss, a scalar JAX array.

    Raises:
      ValueError: ``xs`` and ``ys`` differ in shape (both shapes are named), or are
        scalars rather than batches.

    Examples:
      >>> import jaxbackprop as jb
      >>> from jaxbackprop import lecture
      >>> print(jb.mean_loss(1.0, lecture.X_DATA, lecture.Y_DATA))   # (1 + 4 + 9) / 3
      4.666667
      >>> jb.mean_loss(1.0, [1.0, 2.0], [2.0, 4.0, 6.0])
      Traceback (most recent call last):
      ...
      ValueError: mean_loss: xs and ys must have the same shape, got xs.shape=(2,) and ys.shape=(3,)
    """
    xs, ys = _check_batch(xs, ys)
    (w,) = _operands(w=w)
    per_sample = jax.vmap(loss, in_axes=(None, 0, 0))(w, xs, ys)
    return jnp.mean(per_sample)


@jax.jit
def _loss_and_grad(w: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jax.value_and_grad(loss)(w, x, y)


def loss_and_grad(w: ArrayLike, x: ArrayLike, y: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """The loss and its gradient ``(L, dL/dw)`` from ``jax.value_and_grad(loss)``, compiled.

    Unlike ``jax.grad(loss)``, which refuses integer inputs, this promotes integers to
    JAX's default float dtype first.

    Args:
      w: the weight.
      x: the input.
      y: the target.

    Returns:
      A pair of JAX arrays ``(loss(w, x, y), dL/dw)``.

    Examples:
      >>> import jaxbackprop as jb
      >>> value, grad = jb.loss_and_grad(1, 2, 4)
      >>> print(value, grad)
      4.0 -8.0
    """
    return _loss_and_grad(*_operands(w=w, x=x, y=y))
