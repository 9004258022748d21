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
    """The first function of the chain, ``y = a(x) = x ** 2``."""
    return x**2


def outer(y: jax.Array) -> jax.Array:
    """The second function of the chain, ``z = b(y) = sin(y)``."""
    return jnp.sin(y)


@dataclass(frozen=True)
class ChainRule:
    """``z = b(a(x))`` at one ``x``: both pieces' derivatives and their product."""

    x: jax.Array
    y: jax.Array  # a(x)
    z: jax.Array  # b(y)
    dz_dy: jax.Array  # b'(y), from jax.grad(b)
    dy_dx: jax.Array  # a'(x), from jax.grad(a)
    dz_dx_chain: jax.Array  # dz/dy * dy/dx
    dz_dx_jax: jax.Array  # jax.grad of the composite, for comparison


def chain_rule(x: ArrayLike = 1.5, a: Callable[[Any], Any] = inner,
               b: Callable[[Any], Any] = outer) -> ChainRule:
    """The chain rule ``dz/dx = dz/dy * dy/dx`` for ``z = b(a(x))``, checked by ``jax.grad``."""
    x = jnp.asarray(x, dtype=default_float_dtype())
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


def _floats(*numbers: Any) -> tuple[jax.Array, ...]:
    dtype = default_float_dtype()
    return tuple(jnp.asarray(n, dtype=dtype) for n in numbers)


def multiply_node(x: ArrayLike = 2.0, y: ArrayLike = 3.0) -> Graph:
    """The node ``z = x * y``: local gradients ``dz/dx = y`` and ``dz/dy = x``."""
    x, y = _floats(x, y)
    z, op = _node("z", "mul", lambda a, b: a * b, {"x": x, "y": y}, ("y", "x"))
    return _graph({"x": (x, "parameter"), "y": (y, "parameter")}, [op],
                  {"x": x, "y": y, "z": z}, "z")


def linear_regression(x: ArrayLike = 1.0, y: ArrayLike = 2.0, w: ArrayLike = 1.0) -> Graph:
    """The lecture's graph for one sample: ``y_hat = w * x``, ``s = y_hat - y``, ``L = s ** 2``.

    Each node is differentiated on its own by ``jax.grad`` (the local gradients); the
    adjoints then follow by the chain rule. ``w`` is the parameter; ``x`` and ``y`` are
    fixed data. At ``x=1, y=2, w=1``: ``y_hat=1, s=-1, L=1``, ``dL/ds = 2s = -2``,
    ``ds/dy_hat = 1``, ``dy_hat/dw = x = 1``, so ``dL/dy_hat = -2`` and ``dL/dw = -2``.
    """
    x, y, w = _floats(x, y, w)
    y_hat, mul = _node("y_hat", "mul", predict, {"w": w, "x": x}, ("x", "w"))
    s, sub = _node("s", "sub", lambda a, b: a - b, {"y_hat": y_hat, "y": y}, ("1", "-1"))
    loss, square = _node("L", "square", lambda t: t**2, {"s": s}, ("2s",))
    forward = {"w": w, "x": x, "y": y, "y_hat": y_hat, "s": s, "L": loss}
    inputs: dict[str, tuple[Any, Role]] = {"w": (w, "parameter"), "x": (x, "data"),
                                           "y": (y, "data")}
    return _graph(inputs, [mul, sub, square], forward, "L")
