"""``vjp``, ``grad``, ``value_and_grad`` and ``jvp`` on the tape, with JAX's signatures.

``vjp`` records the forward pass and returns the backward pass as its pullback;
``grad(f, argnums)`` is ``vjp`` seeded with ``out_bar = 1`` for a scalar ``f``. Inputs are
real numbers or arrays, or pytrees of them; integers are promoted to floating point
(:mod:`jaxbackprop._dtypes`). Each call records on a fresh tape and keeps nothing.

Complex numbers are refused: the tape differentiates real functions (JAX's convention
for complex inputs, ``grad`` of a holomorphic function and the conjugates it implies, is
not implemented, and a silent conjugate would be wrong).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbackprop._dtypes import promote_integer
from jaxbackprop.tape.compute import shape
from jaxbackprop.tape.core import (
    Tape,
    Var,
    backward_pass,
    complex_error,
    is_complex,
    kept,
    primal,
    push_forward,
    unsupported,
)

Argnums = int | Sequence[int]
flatten, unflatten = jax.tree_util.tree_flatten, jax.tree_util.tree_unflatten


def check_input(leaf: Any, who: str, what: str, i: int) -> Any:
    """A real number or array, integers promoted to floating point; anything else refused
    (the error names it: ``{who}: {what} {i}``)."""
    if type(leaf) is float or type(leaf) is Var:
        return leaf
    if not isinstance(leaf, (bool, int, float, complex, np.ndarray, np.generic)) \
            and not hasattr(leaf, "shape"):
        raise TypeError(f"{who}: {what} {i} must be a number or an array (or a pytree of "
                        f"them), got {type(leaf).__name__}")
    if is_complex(leaf):
        raise complex_error(f"{who}: {what} {i}")
    return promote_integer(leaf)


def _like(value: Any, ct: Any = None) -> Any:
    """``ct`` in the dtype of ``value`` (a Python float stays a float), as JAX gives it;
    zeros of ``value``'s kind, shape and dtype if ``ct`` is ``None`` (no dependence)."""
    if ct is None:
        return (0.0 if type(value) is float else 0.0 * value if type(value) is Var
                else np.zeros_like(value) if isinstance(value, (np.ndarray, np.generic))
                else jnp.zeros_like(value))
    dtype = getattr(value, "dtype", None)
    if dtype is not None and isinstance(ct, jax.Array):  # JAX has no float64 without x64
        dtype = jax.dtypes.canonicalize_dtype(dtype)
    if dtype is None or type(ct) is Var or getattr(ct, "dtype", dtype) == dtype:
        return ct
    return ct.astype(dtype) if hasattr(ct, "astype") else np.asarray(ct, dtype)


def record(f: Callable[..., Any], primals: tuple[Any, ...], who: str, what: str,
           has_aux: bool) -> tuple[Tape, list[Any], Any, list[int | None], list[Any], Any, Any]:
    """Run ``f`` on fresh variables of a new tape. Returns the tape, the input values and
    their structure, the outputs' variable indices (``None``: a constant) and values and
    their structure, and ``aux`` (values unwrapped)."""
    leaves, in_tree = flatten(primals)
    leaves = [check_input(leaf, who, what, i) for i, leaf in enumerate(leaves)]
    with Tape() as tape:
        try:
            out = f(*unflatten(in_tree, [tape.new_var(kept(leaf)) for leaf in leaves]))
        except TypeError as error:  # JAX refusing a tape value: say what to use instead
            if str(Var) not in str(error):
                raise
            raise unsupported("A jax.numpy or jax.lax function applied to a tape value",
                              "Use jaxbackprop.numpy instead: its functions record on the tape "
                              f"and call jax.numpy otherwise. (JAX said: "
                              f"{str(error).splitlines()[0]})") from None
    ours = lambda x: type(x) is Var and x.tape is tape  # noqa: E731
    aux = None
    if has_aux:
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(f"{who}: with has_aux=True, f must return a pair (output, aux), "
                            f"got {type(out).__name__}")
        out, aux = out
        aux = jax.tree_util.tree_map(lambda x: x.value if ours(x) else x, aux)
    out_leaves, out_tree = flatten(out)
    if out is None or not out_leaves:
        raise TypeError(f"{who}: f returned {out!r}; it must return an array or a number "
                        "(did it forget a return statement?)")
    indices = [x.index if ours(x) else None for x in out_leaves]
    outs = [x.value if ours(x) else x for x in out_leaves]
    for value in outs:
        if not isinstance(primal(value), (float, int, complex)) and not hasattr(value, "shape"):
            raise TypeError(f"{who}: f must return numbers or arrays, got {type(value).__name__}")
        if is_complex(primal(value)):
            raise complex_error(f"{who}: f's output")
        if type(value) is bool or getattr(getattr(value, "dtype", None), "kind", None) == "b":
            raise TypeError(f"{who}: f returned a bool (a comparison?); comparisons are not "
                            "differentiated, so its gradient would silently be 0: return a "
                            "real number or array")
    return tape, leaves, in_tree, indices, outs, out_tree, aux


def vjp(f: Callable[..., Any], *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """Like ``jax.vjp``: ``f(*primals)`` and its pullback ``out_bar -> primals_bar``.

    The output may be a pytree; ``out_bar`` then has its structure. The pullback returns
    a tuple with one cotangent per primal, of the primal's structure, shape and dtype; an
    input ``f`` does not depend on gets zeros. With ``has_aux=True``, ``f`` returns
    ``(output, aux)`` and ``vjp`` returns ``(output, pullback, aux)``.

    Raises:
      TypeError: an input, output or cotangent that is not a real number or array (a
        bool output too); ``f`` returning ``None``; ``has_aux`` output that is not a pair.

    Example:
      >>> out, pullback = vjp(lambda w, x: w * x, 3.0, 2.0)
      >>> out, pullback(1.0)
      (6.0, (2.0, 3.0))
    """
    return _vjp(f, primals, "tape.vjp", "primal input", has_aux)


def _vjp(f: Callable[..., Any], primals: tuple[Any, ...], who: str, what: str,
         has_aux: bool) -> tuple[Any, ...]:
    tape, leaves, in_tree, indices, outs, out_tree, aux = record(f, primals, who, what, has_aux)

    def pullback(out_bar: Any) -> tuple[Any, ...]:
        bars, bar_tree = flatten(out_bar)
        if bar_tree != out_tree:
            raise ValueError(f"{who}: the cotangent must have the output's structure "
                             f"{out_tree}, got {bar_tree}")
        cts: list[Any] = [None] * len(leaves)
        for i, (index, value, bar) in enumerate(zip(indices, outs, bars, strict=True)):
            bar = check_input(bar, who, "cotangent", i)  # (complex: its imaginary part lost)
            if shape(bar) != shape(value):
                raise ValueError(f"{who}: the cotangent must have the output's shape "
                                 f"{shape(value)}, got {shape(bar)}")
            if index is not None:  # one backward pass per output (a constant has none)
                for k, ct in enumerate(backward_pass(tape, index, bar)[:len(leaves)]):
                    cts[k] = ct if cts[k] is None else cts[k] if ct is None else cts[k] + ct
        return tuple(unflatten(in_tree, list(map(_like, leaves, cts))))

    out = unflatten(out_tree, outs)
    return (out, pullback, aux) if has_aux else (out, pullback)


def normalize_argnums(argnums: Argnums, num_args: int, who: str) -> tuple[int, ...]:
    """``argnums`` as a tuple of distinct non-negative positions, checked against ``num_args``."""
    positions: list[int] = []
    for i in argnums if isinstance(argnums, (tuple, list)) else (argnums,):
        if type(i) is not int:  # (a bool, a float...)
            positions = []
            break
        if not -num_args <= i < num_args:
            raise ValueError(f"{who}: argnums {argnums!r} is out of range for a call with "
                             f"{num_args} positional argument(s)")
        if i % num_args in positions:
            raise ValueError(f"{who}: argnums {argnums!r} names an argument twice; each "
                             "argument's gradient can be asked for once")
        positions.append(i % num_args)
    if not positions:
        raise TypeError(f"{who}: argnums must be an int or a non-empty tuple of ints, "
                        f"got {argnums!r}")
    return tuple(positions)


def value_and_grad(f: Callable[..., Any], argnums: Argnums = 0,
                   has_aux: bool = False) -> Callable[..., Any]:
    """Like ``jax.value_and_grad``: ``(f(*args), df/d args[argnums])`` for a scalar ``f``.

    ``argnums`` an int gives one gradient, a tuple a tuple of them. With ``has_aux=True``,
    ``f`` returns ``(output, aux)`` and the result is ``((output, aux), gradient)``.

    Raises:
      TypeError: ``f``'s output is not a scalar (use :func:`vjp`), or see :func:`vjp`.
      ValueError: ``argnums`` out of range or repeated.

    Example:
      >>> value_and_grad(lambda w, x, y: (w * x - y) ** 2)(1.0, 1.0, 2.0)  # the lecture
      (1.0, -2.0)
    """
    return _grad(f, argnums, has_aux, "tape.value_and_grad", with_value=True)


def grad(f: Callable[..., Any], argnums: Argnums = 0, has_aux: bool = False) -> Callable[..., Any]:
    """Like ``jax.grad``: the gradient of a scalar ``f`` with respect to ``args[argnums]``.

    ``argnums`` an int gives one gradient, a tuple a tuple of them; with ``has_aux=True``
    the result is ``(gradient, aux)``. Errors as :func:`value_and_grad`.

    Example:
      >>> grad(lambda w, x, y: (w * x - y) ** 2, argnums=(0, 1))(1.0, 2.0, 4.0)
      (-8.0, -4.0)
    """
    return _grad(f, argnums, has_aux, "tape.grad", with_value=False)


def _grad(f: Callable[..., Any], argnums: Argnums, has_aux: bool, who: str,
          with_value: bool) -> Callable[..., Any]:
    """``grad``, or ``value_and_grad`` if ``with_value``: ``vjp`` seeded with 1."""
    @functools.wraps(f)
    def grad_f(*args: Any, **kwargs: Any) -> Any:
        nums = normalize_argnums(argnums, len(args), who)

        def f_of_diff_args(*diff_args: Any) -> Any:
            full = list(args)
            for i, a in zip(nums, diff_args, strict=True):
                full[i] = a
            return f(*full, **kwargs)

        out, pullback, *aux = _vjp(f_of_diff_args, tuple([args[i] for i in nums]), who,
                                   "argument", has_aux)
        if shape(out) != () or not (hasattr(out, "shape") or type(out) in (int, float)):
            raise TypeError(f"{who}: f must return a scalar, got an output of shape "
                            f"{shape(out)}; use tape.vjp(f, *args) for non-scalar outputs")
        grads = pullback(1.0 if type(out) in (float, int, Var) else np.ones_like(out)
                         if isinstance(out, (np.ndarray, np.generic)) else jnp.ones_like(out))
        g = grads[0] if isinstance(argnums, int) else grads
        if with_value:
            return ((out, aux[0]) if has_aux else out), g
        return (g, aux[0]) if has_aux else g

    return grad_f


def jvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any],
        has_aux: bool = False) -> tuple[Any, ...]:
    """Like ``jax.jvp``: ``(f(*primals), J tangents)``, forward mode from the same table.

    ``primals`` and ``tangents`` are tuples (or lists) of the same structure; each
    tangent has its primal's shape and dtype. The forward pass is recorded, then the
    tangents are pushed through its equations in order (:func:`core.push_forward`).
    With ``has_aux=True`` returns ``(out, out_dot, aux)``.

    Raises:
      TypeError: ``primals``/``tangents`` not tuples or lists, or a dtype mismatch.
      ValueError: different structures or shapes.

    Example:
      >>> jvp(lambda w, x, y: (w * x - y) ** 2, (1.0, 2.0, 4.0), (1.0, 0.0, 0.0))
      (4.0, -8.0)
    """
    who = "tape.jvp"
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(f"{who}: primals and tangents must be tuples or lists, got "
                        f"{type(primals).__name__} and {type(tangents).__name__}")
    t_leaves, t_tree = flatten(tuple(tangents))
    if jax.tree_util.tree_structure(tuple(primals)) != t_tree:
        raise ValueError(f"{who}: primals and tangents must have the same structure, got "
                         f"{jax.tree_util.tree_structure(tuple(primals))} and {t_tree}")
    tape, leaves, _, indices, outs, out_tree, aux = record(f, tuple(primals), who, "primal",
                                                           has_aux)
    for i, (p, t) in enumerate(zip(leaves, t_leaves, strict=True)):
        check_input(t, who, "tangent", i)  # an integer array beside a float one: refused
        # below as a dtype mismatch; a Python int beside a Python float counts as its value
        if shape(p) != shape(t):
            raise ValueError(f"{who}: tangent {i} has shape {shape(t)}, its primal {shape(p)}")
        p_dtype, t_dtype = getattr(p, "dtype", None), getattr(t, "dtype", None)
        if p_dtype is not None and t_dtype is not None and p_dtype != t_dtype:
            raise TypeError(f"{who}: tangent {i} has dtype {t_dtype}, its primal {p_dtype}; "
                            "they must be equal")
    dots = push_forward(tape, list(t_leaves))
    out_dots = [_like(v, None if i is None else dots[i])
                for i, v in zip(indices, outs, strict=True)]
    out, out_dot = unflatten(out_tree, outs), unflatten(out_tree, out_dots)
    return (out, out_dot, aux) if has_aux else (out, out_dot)
