"""Array functions that work on both engines, like ``autograd.numpy``.

On a tape value (:class:`jaxbackprop.tape.Var`) each function records its primitive on
the tape; on anything else it computes directly (``jax.numpy`` for JAX arrays and
tracers, NumPy for NumPy arrays, ``math`` for Python floats). Write a function once with
these and the operators, and both ``jax.grad`` and ``jaxbackprop.tape.grad`` can
differentiate it::

    import jaxbackprop.numpy as jbnp
    def f(w, x):
        return jbnp.sum(jbnp.tanh(x @ w) ** 2)

NumPy's own ufuncs and a few of its functions (``np.exp``, ``np.sum``, ``np.where``...)
record on tape values too; ``jax.numpy`` functions cannot (JAX refuses the tape's
values), and the tape says so, naming these functions instead.
"""

from jaxbackprop.tape.core import (
    abs,
    add,
    broadcast_to,
    cos,
    divide,
    exp,
    log,
    matmul,
    maximum,
    mean,
    multiply,
    name,
    negative,
    power,
    relu,
    reshape,
    sign,
    sin,
    sqrt,
    subtract,
    sum,
    tanh,
    transpose,
    where,
)

__all__ = ["abs", "add", "broadcast_to", "cos", "divide", "exp", "log", "matmul", "maximum",
           "mean", "multiply", "name", "negative", "power", "relu", "reshape", "sign", "sin",
           "sqrt", "subtract", "sum", "tanh", "transpose", "where"]
