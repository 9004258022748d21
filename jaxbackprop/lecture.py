"""The lecture's data and worked examples, each number derived by JAX, none typed in.

One source of truth for the lecture's constants (the training data, the initial weight,
the learning rate, the number of epochs, the worked examples), and the three sections
that the notes work through with numbers:

* :func:`chain_rule`: ``z = b(a(x))`` and ``dz/dx = dz/dy * dy/dx``;
* :func:`multiply_node`: the node ``z = x * y`` with local gradients ``dz/dx = y``,
  ``dz/dy = x``;
* :func:`linear_regression`: the graph ``y_hat = w * x``, ``s = y_hat - y``,
  ``L = s ** 2`` with its forward values, the local gradient on every edge (``jax.grad``
  of each node's own function) and the backward pass (the chain rule, edge by edge).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxbackprop._dtypes import default_float_dtype
from jaxbackprop.graph import Graph, LocalGradient, Operation, Role, Value
from jaxbackprop.model import predict

# The second note's training set and hyper-parameters (per-sample SGD).
X_DATA: tuple[float, ...] = (1.0, 2.0, 3.0)
Y_DATA: tuple[float, ...] = (2.0, 4.0, 6.0)
W0: float = 1.0
LEARNING_RATE: float = 0.01
EPOCHS: int = 10
X_PREDICT: float = 4.0  # "predict (before/after training) 4 ..."

# The worked examples: (x, y, w).
EXAMPLE_FIRST_NOTE: tuple[float, float, float] = (1.0, 2.0, 1.0)  # loss 1, dloss/dw = -2
EXAMPLE_SECOND_NOTE: tuple[float, float, float] = (2.0, 4.0, 1.0)  # dloss/dw = 2sx = -8


# ---------------------------------------------------------------------------------------
# The chain rule


def inner(x: jax.Array) -> jax.Array:
    """The first function of the chain, :math:`y = a(x) = x^2`.

    >>> from jaxbackprop import lecture
    >>> print(lecture.inner(3.0))
    9.0
    """
    return x**2


def outer(y: jax.Array) -> jax.Array:
    r"""The second function of the chain, :math:`z = b(y) = \sin y`.

    >>> from jaxbackprop import lecture
    >>> print(lecture.outer(0.0))
    0.0
    """
    return jnp.sin(y)


@dataclass(frozen=True)
class ChainRule:
    """``z = b(a(x))`` at one ``x``: both pieces' derivatives and their product.

    Made by :func:`chain_rule`; every field is a JAX scalar.
    """

    x: jax.Array
    y: jax.Array  # a(x)
    z: jax.Array  # b(y)
    dz_dy: jax.Array  # b'(y), from jax.grad(b)
    dy_dx: jax.Array  # a'(x), from jax.grad(a)
    dz_dx_chain: jax.Array  # dz/dy * dy/dx
    dz_dx_jax: jax.Array  # jax.grad of the composite, for comparison


def chain_rule(x: ArrayLike = 1.5, a: Callable[[Any], Any] = inner,
               b: Callable[[Any], Any] = outer) -> ChainRule:
    r"""The chain rule for :math:`z = b(a(x))`, each piece differentiated by ``jax.grad``.

    .. math::

       \frac{dz}{dx} = \frac{dz}{dy} \, \frac{dy}{dx}, \qquad y = a(x)

    ``jax.grad(a)`` at ``x`` and ``jax.grad(b)`` at ``y`` give the two factors; their
    product is compared with ``jax.grad`` of the composite.

    Args:
      x: where to differentiate.
      a: the first function (default :func:`inner`, :math:`x^2`).
      b: the second function (default :func:`outer`, :math:`\sin y`).

    Returns:
      A :class:`ChainRule` with ``x``, ``y``, ``z``, both factors, their product
      ``dz_dx_chain`` and ``jax.grad`` of the composite, ``dz_dx_jax``.

    Examples:
      >>> from jaxbackprop import lecture
      >>> c = lecture.chain_rule(1.5)
      >>> print(c.dy_dx, c.dz_dy)           # 2x and cos(x**2)
      3.0 -0.62817365
      >>> print(c.dz_dx_chain, c.dz_dx_jax)
      -1.884521 -1.884521
    """
    (x,) = _floats(x=x)
    y = a(x)
    dy_dx = jax.grad(a)(x)
    dz_dy = jax.grad(b)(y)
    return ChainRule(x, y, b(y), dz_dy, dy_dx, dz_dy * dy_dx, jax.grad(lambda t: b(a(t)))(x))


# ---------------------------------------------------------------------------------------
# Graphs: forward values, local gradients from jax.grad, the chain rule backwards


def _backward(values: dict[str, Any], operations: list[Operation], output: str) -> dict[str, Any]:
    """Adjoints ``dL/dv``: start from ``dL/dL = 1`` and walk the operations backwards,
    adding ``dL/d out * d out/d in`` to every input (the chain rule, edge by edge)."""
    adjoints: dict[str, Any] = {name: 0.0 for name in values}
    adjoints[output] = jnp.ones_like(values[output])
    for op in reversed(operations):
        for edge in op.local_gradients:
            adjoints[edge.source] = adjoints[edge.source] + adjoints[op.output] * edge.value
    return adjoints


def _graph(inputs: dict[str, tuple[Any, Role]], operations: list[Operation],
           forward: dict[str, Any], output: str) -> Graph:
    adjoints = _backward(forward, operations, output)
    values = [Value(n, v, role, adjoints[n]) for n, (v, role) in inputs.items()]
    values += [Value(op.output, forward[op.output], "intermediate", adjoints[op.output])
               for op in operations]
    return Graph(tuple(values), tuple(operations), output)


def _node(output: str, primitive: str, fn: Callable[..., Any], args: dict[str, Any],
          formulas: tuple[str, ...]) -> tuple[Any, Operation]:
    """Evaluate one node's own function and its local gradients with ``jax.grad``."""
    names = tuple(args)
    values = tuple(args.values())
    grads = jax.grad(fn, argnums=tuple(range(len(values))))(*values)
    edges = tuple(LocalGradient(n, output, f, g) for n, f, g in zip(names, formulas, grads,
                                                                        strict=True))
    return fn(*values), Operation(output, primitive, names, edges)


def _floats(**numbers: Any) -> tuple[jax.Array, ...]:
    """Each argument as a scalar of JAX's default float dtype, or a TypeError naming it:
    one real number (bools and integers promoted); not a string, which ``jnp.asarray``
    would parse, a complex number, or an array (each node is differentiated by
    ``jax.grad``, which takes one number)."""
    for name, value in numbers.items():
        try:  # a JAX array (or a tracer, under jit) has its dtype; anything else: NumPy's
            array = value if isinstance(value, jax.Array) else np.asarray(value)
            kind, shape = array.dtype.kind, array.shape
        except (TypeError, ValueError):
            kind, shape = None, ()
        if kind not in ("b", "i", "u", "f"):
            raise TypeError(f"{name} must be a real number, got {value!r}")
        if shape:
            raise TypeError(f"{name} must be one real number, got an array of shape {shape}")
    dtype = default_float_dtype()
    return tuple(jnp.asarray(n, dtype=dtype) for n in numbers.values())


def multiply_node(x: ArrayLike = 2.0, y: ArrayLike = 3.0) -> Graph:
    r"""The node :math:`z = x y` as a graph, with its local gradients.

    :math:`\partial z/\partial x = y` and :math:`\partial z/\partial y = x`, each from
    ``jax.grad`` of the node's own function. With :math:`z` as the output, the adjoints
    are the local gradients themselves.

    Args:
      x: the first input.
      y: the second input.

    Returns:
      A :class:`~jaxbackprop.graph.Graph` with the values ``x``, ``y``, ``z`` and one
      operation.

    Examples:
      >>> from jaxbackprop import lecture
      >>> node = lecture.multiply_node(x=2.0, y=3.0)
      >>> print(node.table("local"))
      1. Forward pass: each value from its inputs
         x  =  (input)    2
         y  =  (input)    3
         z  =  mul(x, y)  = 6
      <BLANKLINE>
      2. Local gradients at each node
         dz/dx  =  y  = 3
         dz/dy  =  x  = 2
    """
    x, y = _floats(x=x, y=y)
    z, op = _node("z", "mul", lambda a, b: a * b, {"x": x, "y": y}, ("y", "x"))
    return _graph({"x": (x, "parameter"), "y": (y, "parameter")}, [op],
                  {"x": x, "y": y, "z": z}, "z")


def linear_regression(x: ArrayLike = 1.0, y: ArrayLike = 2.0, w: ArrayLike = 1.0) -> Graph:
    r"""The lecture's graph for one sample, with all the numbers of its three steps.

    .. math::

       \hat y = w x, \qquad s = \hat y - y, \qquad L = s^2

    1. Forward pass: every node's value.
    2. Local gradients: each node differentiated on its own by ``jax.grad``
       (:math:`\partial L/\partial s = 2s`, :math:`\partial s/\partial \hat y = 1`,
       :math:`\partial \hat y/\partial w = x`).
    3. Backward pass: the adjoints, by the chain rule edge by edge from
       :math:`\partial L/\partial L = 1`.

    ``w`` is the parameter; ``x`` and ``y`` are fixed data (the lecture's red lines).

    Args:
      x: the sample's input.
      y: the sample's target.
      w: the weight.

    Returns:
      A :class:`~jaxbackprop.graph.Graph`: values ``w, x, y, y_hat, s, L`` with their
      adjoints, and the three operations with their local gradients.

    Examples:
      The first note's numbers: ``y_hat = 1``, ``s = -1``, loss 1, ``dL/dw = -2``.

      >>> from jaxbackprop import lecture
      >>> graph = lecture.linear_regression(x=1.0, y=2.0, w=1.0)
      >>> print(graph.value("L").value, graph.value("w").adjoint)
      1.0 -2.0
      >>> print(graph.table("backward").split("\n\n")[-1])  # doctest: +NORMALIZE_WHITESPACE
      3. Backward pass: the chain rule, from the loss back to the inputs
         dL/dL      =  1
         dL/ds      =  dL/dL * dL/ds          = -2
         dL/dy_hat  =  dL/ds * ds/dy_hat      = -2
         dL/dy      =  dL/ds * ds/dy          = 2   (not needed: fixed data)
         dL/dw      =  dL/dy_hat * dy_hat/dw  = -2
         dL/dx      =  dL/dy_hat * dy_hat/dx  = -2   (not needed: fixed data)
    """
    x, y, w = _floats(x=x, y=y, w=w)
    y_hat, mul = _node("y_hat", "mul", predict, {"w": w, "x": x}, ("x", "w"))
    s, sub = _node("s", "sub", lambda a, b: a - b, {"y_hat": y_hat, "y": y}, ("1", "-1"))
    loss, square = _node("L", "square", lambda t: t**2, {"s": s}, ("2s",))
    forward = {"w": w, "x": x, "y": y, "y_hat": y_hat, "s": s, "L": loss}
    inputs: dict[str, tuple[Any, Role]] = {"w": (w, "parameter"), "x": (x, "data"),
                                           "y": (y, "data")}
    return _graph(inputs, [mul, sub, square], forward, "L")
