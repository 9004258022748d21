"""``vjp``, ``grad`` and ``value_and_grad`` on the hand-written tape, shaped like JAX's.

    out, f_vjp = tape.vjp(f, *primals)      # forward pass, recorded
    primals_bar = f_vjp(out_bar)            # backward pass: one cotangent per primal

``grad(f, argnums)`` is ``vjp`` seeded with ``out_bar = 1`` for a scalar ``f``. One user
function can be handed to both engines: ``tape.grad(jb.loss)`` and ``jax.grad(jb.loss)``
give the same numbers. Inputs are numbers or arrays, or pytrees of them (lists, tuples,
dicts); integers are promoted to floating point (:mod:`jaxbackprop._dtypes`). The output
of ``f`` is one array. Each call records on a fresh tape and keeps nothing afterwards.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxbackprop._dtypes import promote_integer
from jaxbackprop.tape.core import Var, backward, recording

Argnums = int | Sequence[int]


def check_input(leaf: Any, where: str) -> Any:
    """A number or an array, integers promoted to floating point; anything else refused."""
    if type(leaf) is Var:
        return leaf
    if isinstance(leaf, (bool, int, float, np.ndarray, np.generic)) or hasattr(leaf, "shape"):
        return promote_integer(leaf)
    raise TypeError(f"{where} must be a number or an array (or a pytree of them), "
                    f"got {type(leaf).__name__}")


def _like(value: Any, fill: float) -> Any:
    """``zeros_like``/``ones_like`` that keeps the kind: Python float, NumPy or JAX."""
    if type(value) is float:
        return fill
    if type(value) is Var:  # an outer tape's value: stay connected to it
        return 0.0 * value + fill if fill else 0.0 * value
    if isinstance(value, (np.ndarray, np.generic)):
        return np.full_like(value, fill)
    return jnp.full_like(value, fill)


def vjp(f: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[[Any], tuple[Any, ...]]]:
    """Run ``f(*primals)`` on a tape; return its value and the pullback ``out_bar -> primals_bar``.

    The pullback returns a tuple with one cotangent per primal, each of the primal's
    structure, shape and dtype; an input ``f`` does not depend on gets zeros.
    """
    return _vjp(f, primals, "tape.vjp", "primal input")


def _vjp(f: Callable[..., Any], primals: tuple[Any, ...], who: str,
         what: str) -> tuple[Any, Callable[[Any], tuple[Any, ...]]]:
    leaves, treedef = jax.tree_util.tree_flatten(primals)
    leaves = [check_input(leaf, f"{who}: {what} {i}") for i, leaf in enumerate(leaves)]
    with recording() as tape:
        in_vars = [tape.new_var(leaf) for leaf in leaves]
        out = f(*jax.tree_util.tree_unflatten(treedef, in_vars))
    if isinstance(out, (tuple, list, dict)):
        raise TypeError(f"{who}: f must return a single array, got a {type(out).__name__} "
                        "(pytrees of outputs are not supported)")
    recorded = type(out) is Var and out.tape is tape
    out_value = out.value if recorded else out

    def pullback(out_bar: Any) -> tuple[Any, ...]:
        if np.shape(out_bar) != np.shape(out_value):
            raise ValueError(f"{who}: the cotangent must have the output's shape "
                             f"{np.shape(out_value)}, got {np.shape(out_bar)}")
        cts = backward(tape, out.index, out_bar) if recorded else [None] * tape.num_vars
        grads = [_like(leaf, 0.0) if cts[v.index] is None else _cast_like(cts[v.index], leaf)
                 for v, leaf in zip(in_vars, leaves)]
        return tuple(jax.tree_util.tree_unflatten(treedef, grads))

    return out_value, pullback


def _cast_like(ct: Any, primal: Any) -> Any:
    """The cotangent in the primal's dtype (a Python float stays a float)."""
    dtype = getattr(primal, "dtype", None)
    if dtype is None or type(ct) is Var or getattr(ct, "dtype", dtype) == dtype:
        return ct
    return ct.astype(dtype) if hasattr(ct, "astype") else np.asarray(ct, dtype)


def normalize_argnums(argnums: Argnums, num_args: int, who: str) -> tuple[int, ...]:
    """``argnums`` as a tuple of non-negative positions, checked against ``num_args``."""
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums or not all(isinstance(i, int) for i in nums):
        raise TypeError(f"{who}: argnums must be an int or a non-empty tuple of ints, "
                        f"got {argnums!r}")
    for i in nums:
        if not -num_args <= i < num_args:
            raise ValueError(f"{who}: argnums {argnums!r} is out of range for a call with "
                             f"{num_args} positional argument(s)")
    return tuple(i % num_args for i in nums)


def value_and_grad(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., tuple[Any, Any]]:
    """Like ``jax.value_and_grad``: ``(f(*args), df/d args[argnums])`` for a scalar ``f``.

    ``argnums`` an int gives one gradient; a tuple gives a tuple of gradients.
    """
    return _value_and_grad(f, argnums, "tape.value_and_grad")


def _value_and_grad(f: Callable[..., Any], argnums: Argnums,
                    who: str) -> Callable[..., tuple[Any, Any]]:
    @functools.wraps(f)
    def value_and_grad_f(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        nums = normalize_argnums(argnums, len(args), who)

        def f_of_diff_args(*diff_args: Any) -> Any:
            full = list(args)
            for i, a in zip(nums, diff_args):
                full[i] = a
            return f(*full, **kwargs)

        out, pullback = _vjp(f_of_diff_args, tuple(args[i] for i in nums), who, "argument")
        if np.shape(out) != ():
            raise TypeError(f"{who}: f must return a scalar, got an output of shape "
                            f"{np.shape(out)}; use tape.vjp(f, *args) for non-scalar outputs")
        grads = pullback(1.0 if type(out) is Var else _like(out, 1.0))
        return out, grads[0] if isinstance(argnums, int) else grads

    return value_and_grad_f


def grad(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """Like ``jax.grad``: the gradient of a scalar ``f`` with respect to ``args[argnums]``.

    ``argnums`` an int gives one gradient; a tuple gives a tuple of gradients.
    """
    value_and_grad_f = _value_and_grad(f, argnums, "tape.grad")

    @functools.wraps(f)
    def grad_f(*args: Any, **kwargs: Any) -> Any:
        return value_and_grad_f(*args, **kwargs)[1]

    return grad_f


__all__ = ["vjp", "grad", "value_and_grad"]
