"""Plain computation, no tape: ``math`` for Python floats, NumPy for NumPy, ``jax.numpy`` else.

Each primitive computes its output with :func:`lib`, which picks the library that fits its
inputs: eager use on Python floats stays in fast Python floats, NumPy arrays stay NumPy
arrays, and JAX arrays and tracers go to ``jax.numpy`` (so the tape traces under ``jit``).
On Python floats the results follow IEEE arithmetic as NumPy and JAX do
(``1.0 / 0.0 == inf``, ``log(0.0) == -inf``) instead of raising.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np


def _ieee(numpy_fn: Callable[..., Any], math_fn: Callable[..., float]) -> Callable[..., float]:
    """``math_fn`` on Python floats, NumPy's inf or nan where ``math`` would raise."""

    def fn(*args: float) -> float:
        try:
            return math_fn(*args)
        except (ValueError, OverflowError, ZeroDivisionError):
            with np.errstate(all="ignore"):
                return float(numpy_fn(*args))

    return fn


class scalar_math:  # noqa: N801  (used like a module: lib(x).exp(x))
    """The part of NumPy's namespace the primitives use, for Python floats."""

    exp = staticmethod(_ieee(np.exp, math.exp))
    log = staticmethod(_ieee(np.log, math.log))
    sqrt = staticmethod(_ieee(np.sqrt, math.sqrt))
    sin = staticmethod(_ieee(np.sin, math.sin))
    cos = staticmethod(_ieee(np.cos, math.cos))
    tanh = staticmethod(math.tanh)
    power = staticmethod(_ieee(np.power, math.pow))
    true_divide = staticmethod(_ieee(np.true_divide, lambda a, b: a / b))
    abs = staticmethod(builtins.abs)
    sign = staticmethod(lambda x: x if x != x else float((x > 0) - (x < 0)))
    maximum = staticmethod(lambda a, b: a if a > b or a != a else b)  # a != a: a is nan
    where = staticmethod(lambda c, a, b: a if c else b)
    reshape = staticmethod(lambda x, shape: x if shape == () else np.reshape(x, shape))
    broadcast_to = staticmethod(lambda x, shape: x if shape == () else np.broadcast_to(x, shape))


def lib(*values: Any) -> Any:
    """:class:`scalar_math` if every value is a Python number, else NumPy if every value is
    NumPy or Python, else ``jax.numpy``."""
    library: Any = scalar_math
    for v in values:
        if type(v) in (float, int, bool):
            continue
        if not isinstance(v, (np.ndarray, np.generic)):
            return jnp
        library = np
    return library


def shape(x: Any) -> tuple[int, ...]:
    """The shape of a number, an array, a tracer or a tape value."""
    if type(x) is float:
        return ()
    s = getattr(x, "shape", None)
    return np.shape(x) if s is None else tuple(s)
