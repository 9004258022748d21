"""How inputs become floating point: one rule shared by the model and the tape.

JAX's ``jax.grad`` refuses integer inputs (``TypeError: grad requires real- or
complex-valued inputs``). The lecture writes ``x = 1``, ``w = 1``, so this project
promotes integers and booleans to JAX's default floating dtype instead:
``float32``, or ``float64`` when ``jax.config.update("jax_enable_x64", True)`` is on.
Floating inputs keep their own dtype.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def default_float_dtype() -> np.dtype:
    """JAX's default floating dtype right now: float32, or float64 under x64."""
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


def is_integer_like(value: Any) -> bool:
    """True for Python ints/bools and for arrays of an integer or boolean dtype."""
    if isinstance(value, (bool, numbers.Integral)) and not isinstance(value, np.ndarray):
        return True
    dtype = getattr(value, "dtype", None)
    return dtype is not None and (
        jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.bool_)
    )


def promote_integer(value: Any) -> Any:
    """Return ``value`` with integers promoted to floating point, keeping its kind.

    A Python int becomes a Python float, an integer NumPy array a NumPy array of the
    default float dtype, an integer JAX array a JAX array of that dtype. Anything else
    (floats, float arrays, tracers of float dtype) is returned unchanged.
    """
    if not is_integer_like(value):
        return value
    if isinstance(value, (bool, numbers.Integral)) and not hasattr(value, "dtype"):
        return float(value)
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value, dtype=default_float_dtype())
    return jnp.asarray(value, dtype=default_float_dtype())
