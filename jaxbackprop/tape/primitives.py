"""The tape's primitives: each forward function beside its local derivative and VJP rule.

For an elementwise primitive ``out = f(a, b)`` the *local gradients* are the partials
``d out / d a`` and ``d out / d b``; the VJP rule multiplies the incoming cotangent by
them (the chain rule) and sums away any broadcasting (:func:`unbroadcast`):

    a_bar = unbroadcast(out_bar * d out / d a, shape of a)

Every function here is *dual*: on a tape value it records its primitive; on anything
else it computes directly, with ``math`` for Python floats (fast eager use), NumPy for
NumPy arrays, and ``jax.numpy`` for everything else (JAX arrays, tracers). Rules are
written with these same functions, so a backward pass records onto an outer tape
(higher order) and traces under ``jax.jit``/``jax.vmap``/``jax.grad``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np

from jaxbackprop.tape.core import Primitive, ShapeError, Var, bind, bind_binary, bind_unary

Axis = int | tuple[int, ...] | None
_NO_PARAMS: dict[str, Any] = {}

# ---------------------------------------------------------------------------------------
# Choosing the library for plain values


class _ScalarMath:
    """Python-float versions of the elementary functions, with NumPy's nan/inf results."""

    @staticmethod
    def _guard(fn: Callable[..., float], *args: float) -> float:
        try:
            return fn(*args)
        except (ValueError, OverflowError, ZeroDivisionError):
            with np.errstate(all="ignore"):
                return float(getattr(np, fn.__name__ if fn.__name__ != "pow" else "power")(*args))

    exp = staticmethod(lambda x: _ScalarMath._guard(math.exp, x))
    log = staticmethod(lambda x: _ScalarMath._guard(math.log, x))
    sqrt = staticmethod(lambda x: _ScalarMath._guard(math.sqrt, x))
    power = staticmethod(lambda a, b: _ScalarMath._guard(math.pow, a, b))
    sin = staticmethod(math.sin)
    cos = staticmethod(math.cos)
    tanh = staticmethod(math.tanh)
    abs = staticmethod(abs)
    sign = staticmethod(lambda x: float((x > 0) - (x < 0)))
    maximum = staticmethod(lambda a, b: a if a > b else b)
    where = staticmethod(lambda c, a, b: a if c else b)
    reshape = staticmethod(lambda x, shape: x if shape == () else np.reshape(x, shape))
    broadcast_to = staticmethod(lambda x, shape: x if shape == () else np.broadcast_to(x, shape))


def _lib(*values: Any) -> Any:
    """``math`` (as :class:`_ScalarMath`) if all values are Python numbers, else NumPy if
    all are NumPy or Python, else ``jax.numpy``."""
    scalar = True
    for v in values:
        t = type(v)
        if t is float or t is int or t is bool:
            continue
        if isinstance(v, (np.ndarray, np.generic)):
            scalar = False
            continue
        return jnp
    return _ScalarMath if scalar else np


def _is_var(*values: Any) -> bool:
    for v in values:
        if type(v) is Var:
            return True
    return False


def _shape(x: Any) -> tuple[int, ...]:
    return () if type(x) is float else np.shape(x)


def unbroadcast(ct: Any, like: Any) -> Any:
    """Sum the cotangent ``ct`` back to the shape of ``like``, undoing broadcasting.

    Broadcasting copies an input along new leading axes and along axes of size 1; the
    adjoint of a copy is a sum, so those axes are summed (leading ones dropped, size-1
    ones kept). ``(3, 4) -> (4,)`` sums axis 0; ``(3, 4) -> (1, 4)`` sums axis 0 keeping
    it; ``(3, 4) -> ()`` sums everything.
    """
    if type(ct) is float:  # a Python float cotangent only ever meets a scalar
        return ct
    target = _shape(like)
    have = _shape(ct)
    if have == target:
        return ct
    lead = len(have) - len(target)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(target) if n == 1 and have[lead + i] != 1
    )
    return reshape(sum(ct, axis=axes), target)


def _elementwise_vjp(partials: Callable[..., tuple[Any, ...]]) -> Callable[..., tuple[Any, ...]]:
    """The chain rule for an elementwise primitive: ``in_bar = out_bar * d out / d in``."""

    def vjp(ct: Any, out: Any, *inputs: Any, **params: Any) -> tuple[Any, ...]:
        return tuple(unbroadcast(ct * p, x) for p, x in zip(partials(out, *inputs, **params), inputs))

    return vjp


# ---------------------------------------------------------------------------------------
# Arithmetic


def _add_vjp(ct: Any, out: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """out = a + b:  d out/d a = 1,  d out/d b = 1."""
    if type(ct) is float:
        return ct, ct
    return unbroadcast(ct, a), unbroadcast(ct, b)


def _sub_vjp(ct: Any, out: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """out = a - b:  d out/d a = 1,  d out/d b = -1."""
    return unbroadcast(ct, a), unbroadcast(-ct, b)


def _mul_vjp(ct: Any, out: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """out = a * b:  d out/d a = b,  d out/d b = a."""
    if type(ct) is float:
        return ct * b, ct * a
    return unbroadcast(ct * b, a), unbroadcast(ct * a, b)


def _truediv_partials(out: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """out = a / b:  d out/d a = 1 / b,  d out/d b = -a / b**2 = -out / b."""
    return 1.0 / b, -out / b


def _neg_vjp(ct: Any, out: Any, a: Any) -> tuple[Any]:
    """out = -a:  d out/d a = -1."""
    return (-ct,)


def _integer_pow_partials(out: Any, a: Any, *, n: int) -> tuple[Any]:
    """out = a**n (n an integer):  d out/d a = n * a**(n - 1)  (0 when n = 0)."""
    if n == 0:
        return (a * 0.0,)
    return (n * a if n == 2 else n * a ** (n - 1),)


def _pow_partials(out: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """out = a**b:  d out/d a = b * a**(b - 1),  d out/d b = out * log(a) where a > 0, else 0."""
    positive = a > 0
    safe_a = where(positive, a, 1.0)
    return b * power(a, b - 1.0), where(positive, out * log(safe_a), 0.0 * out)


add_p = Primitive("add", lambda a, b: a + b, _add_vjp, lambda o, a, b: (1.0, 1.0),
                  lambda o, a, b: ("1", "1"))
sub_p = Primitive("sub", lambda a, b: a - b, _sub_vjp, lambda o, a, b: (1.0, -1.0),
                  lambda o, a, b: ("1", "-1"))
mul_p = Primitive("mul", lambda a, b: a * b, _mul_vjp, lambda o, a, b: (b, a),
                  lambda o, a, b: (b, a))
truediv_p = Primitive("truediv", lambda a, b: a / b, _elementwise_vjp(_truediv_partials),
                      _truediv_partials, lambda o, a, b: (f"1/{b}", f"-{o}/{b}"))
neg_p = Primitive("neg", lambda a: -a, _neg_vjp, lambda o, a: (-1.0,), lambda o, a: ("-1",))
integer_pow_p = Primitive(
    "integer_pow", lambda a, *, n: a**n, _elementwise_vjp(_integer_pow_partials),
    _integer_pow_partials,
    lambda o, a, *, n: (("0" if n == 0 else "1" if n == 1 else f"{n}{a}" if n == 2
                         else f"{n}{a}^{n - 1}"),),
)
pow_p = Primitive("pow", lambda a, b: power(a, b), _elementwise_vjp(_pow_partials),
                  _pow_partials, lambda o, a, b: (f"{b}*{a}^({b}-1)", f"{o}*log({a})"))


def add(a: Any, b: Any) -> Any:
    """``a + b``, broadcasting."""
    return bind_binary(add_p, a, b, _NO_PARAMS)


def subtract(a: Any, b: Any) -> Any:
    """``a - b``, broadcasting."""
    return bind_binary(sub_p, a, b, _NO_PARAMS)


def multiply(a: Any, b: Any) -> Any:
    """``a * b``, broadcasting."""
    return bind_binary(mul_p, a, b, _NO_PARAMS)


def divide(a: Any, b: Any) -> Any:
    """``a / b``, broadcasting."""
    return bind_binary(truediv_p, a, b, _NO_PARAMS)


def negative(a: Any) -> Any:
    """``-a``."""
    return bind_unary(neg_p, a, _NO_PARAMS)


def power(a: Any, b: Any) -> Any:
    """``a ** b``; an integer exponent records ``integer_pow``, anything else ``pow``."""
    if type(b) is int and not isinstance(b, bool):
        return bind(integer_pow_p, a, n=b) if type(a) is Var else a**b
    return bind(pow_p, a, b) if _is_var(a, b) else _lib(a, b).power(a, b)


# ---------------------------------------------------------------------------------------
# Elementary functions


def _unary(prim_name: str, partial: Callable[[Any, Any], Any], formula: str) -> Primitive:
    def impl(x: Any) -> Any:
        return _UNARY[prim_name](x)

    partials = lambda out, x: (partial(out, x),)  # noqa: E731
    partials.__doc__ = f"out = {prim_name}(x):  d out/d x = {formula.format(x='x', out='out')}."
    return Primitive(prim_name, impl, _elementwise_vjp(partials), partials,
                     lambda o, x: (formula.format(x=x, out=o),))


exp_p = _unary("exp", lambda out, x: out, "exp({x})")
log_p = _unary("log", lambda out, x: 1.0 / x, "1/{x}")
sin_p = _unary("sin", lambda out, x: cos(x), "cos({x})")
cos_p = _unary("cos", lambda out, x: -sin(x), "-sin({x})")
tanh_p = _unary("tanh", lambda out, x: 1.0 - out * out, "1 - {out}^2")
sqrt_p = _unary("sqrt", lambda out, x: 0.5 / out, "1/(2 {out})")
abs_p = _unary("abs", lambda out, x: sign(x), "sign({x})")


def _dual_unary(prim: Primitive) -> Callable[[Any], Any]:
    def fn(x: Any) -> Any:
        return bind_unary(prim, x, _NO_PARAMS) if type(x) is Var else getattr(_lib(x), prim.name)(x)

    fn.__name__ = fn.__qualname__ = prim.name
    fn.__doc__ = f"Elementwise {prim.name}. {prim.partials.__doc__}"  # type: ignore[union-attr]
    return fn


exp = _dual_unary(exp_p)
log = _dual_unary(log_p)
sin = _dual_unary(sin_p)
cos = _dual_unary(cos_p)
tanh = _dual_unary(tanh_p)
sqrt = _dual_unary(sqrt_p)
abs = _dual_unary(abs_p)  # noqa: A001 (the name of numpy's function)
_UNARY = {"exp": exp, "log": log, "sin": sin, "cos": cos, "tanh": tanh, "sqrt": sqrt, "abs": abs}


def sign(x: Any) -> Any:
    """``sign(x)`` in {-1, 0, 1}; piecewise constant, so it is not recorded (zero gradient)."""
    while type(x) is Var:
        x = x.value
    return _lib(x).sign(x)


# ---------------------------------------------------------------------------------------
# Selection


def _maximum_partials(out: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """out = maximum(a, b):  d out/d a = 1 where a > b, 1/2 at a tie, 0 where a < b
    (so ``(1 + sign(a - b)) / 2``, as ``jax.grad`` of ``jnp.maximum``); d out/d b mirrors it."""
    s = sign(a - b)
    return 0.5 * (1.0 + s), 0.5 * (1.0 - s)


def _where_vjp(ct: Any, out: Any, a: Any, b: Any, *, condition: Any) -> tuple[Any, Any]:
    """out = where(c, a, b):  d out/d a = 1 where c else 0,  d out/d b = 0 where c else 1."""
    zero = 0.0 * ct
    return unbroadcast(where(condition, ct, zero), a), unbroadcast(where(condition, zero, ct), b)


maximum_p = Primitive("maximum", lambda a, b: maximum(a, b), _elementwise_vjp(_maximum_partials),
                      _maximum_partials, lambda o, a, b: (f"[{a} > {b}]", f"[{b} > {a}]"))
where_p = Primitive(
    "where", lambda a, b, *, condition: where(condition, a, b), _where_vjp,
    lambda o, a, b, *, condition: (where(condition, 1.0, 0.0), where(condition, 0.0, 1.0)),
    lambda o, a, b, *, condition: ("[condition]", "[not condition]"),
)


def maximum(a: Any, b: Any) -> Any:
    """Elementwise ``max(a, b)``, broadcasting. Ties split the gradient in half."""
    return bind(maximum_p, a, b) if _is_var(a, b) else _lib(a, b).maximum(a, b)


def relu(x: Any) -> Any:
    """``maximum(x, 0)``: d/dx = 1 for x > 0, 0 for x < 0, 1/2 at 0 (like ``jnp.maximum``)."""
    return maximum(x, 0.0)


def where(condition: Any, a: Any, b: Any) -> Any:
    """``a`` where ``condition`` holds, else ``b``; the condition is not differentiated."""
    while type(condition) is Var:
        condition = condition.value
    if _is_var(a, b):
        return bind(where_p, a, b, condition=condition)
    return _lib(condition, a, b).where(condition, a, b)


# ---------------------------------------------------------------------------------------
# Structure: reductions, shapes, matrix products


def _normalize_axis(axis: Axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(f"axis {a} is out of bounds for an array of {ndim} dimensions")
    return tuple(sorted(a % ndim for a in axes))


def _expand_to(ct: Any, x: Any, axes: tuple[int, ...]) -> Any:
    """Put the summed ``axes`` back into ``ct`` and broadcast it to the shape of ``x``."""
    shape = _shape(x)
    kept = tuple(1 if i in axes else n for i, n in enumerate(shape))
    return broadcast_to(reshape(ct, kept), shape)


def _sum_vjp(ct: Any, out: Any, x: Any, *, axis: tuple[int, ...]) -> tuple[Any]:
    """out = sum(x, axis):  d out/d x_i = 1 for every summed element, so x_bar is out_bar
    copied back along the summed axes."""
    return (_expand_to(ct, x, axis),)


def _mean_vjp(ct: Any, out: Any, x: Any, *, axis: tuple[int, ...]) -> tuple[Any]:
    """out = mean(x, axis):  d out/d x_i = 1/n, n the number of elements averaged."""
    count = math.prod(_shape(x)[a] for a in axis)
    return (_expand_to(ct, x, axis) / count,)


def _reshape_vjp(ct: Any, out: Any, x: Any, *, shape: tuple[int, ...]) -> tuple[Any]:
    """out = reshape(x): the same numbers in a new shape; x_bar = reshape(out_bar, x.shape)."""
    return (reshape(ct, _shape(x)),)


def _transpose_vjp(ct: Any, out: Any, x: Any, *, axes: tuple[int, ...]) -> tuple[Any]:
    """out = transpose(x, axes): a permutation; x_bar = transpose(out_bar, inverse(axes))."""
    return (transpose(ct, tuple(np.argsort(axes))),)


def _broadcast_to_vjp(ct: Any, out: Any, x: Any, *, shape: tuple[int, ...]) -> tuple[Any]:
    """out = broadcast_to(x, shape): copies of x; x_bar sums the copies (unbroadcast)."""
    return (unbroadcast(ct, x),)


def _matmul_vjp(ct: Any, out: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """out = a @ b:  a_bar = out_bar @ b^T,  b_bar = a^T @ out_bar (vectors as 1-row or
    1-column matrices)."""
    a_shape, b_shape = _shape(a), _shape(b)
    a2 = a if len(a_shape) == 2 else reshape(a, (1, a_shape[0]))
    b2 = b if len(b_shape) == 2 else reshape(b, (b_shape[0], 1))
    ct2 = reshape(ct, (_shape(a2)[0], _shape(b2)[1]))
    a_bar = matmul(ct2, transpose(b2, (1, 0)))
    b_bar = matmul(transpose(a2, (1, 0)), ct2)
    return reshape(a_bar, a_shape), reshape(b_bar, b_shape)


def _structural(name: str, impl: Callable[..., Any], vjp: Callable[..., tuple[Any, ...]],
                description: str) -> Primitive:
    return Primitive(name, impl, vjp, None, lambda o, *xs, **params: (description,) * len(xs))


sum_p = _structural("sum", lambda x, *, axis: sum(x, axis),
                    _sum_vjp, "1 (copy back along the summed axes)")
mean_p = _structural("mean", lambda x, *, axis: mean(x, axis),
                     _mean_vjp, "1/n (copy back, divided by the count)")
reshape_p = _structural("reshape", lambda x, *, shape: reshape(x, shape), _reshape_vjp,
                        "reshape back")
transpose_p = _structural("transpose", lambda x, *, axes: transpose(x, axes), _transpose_vjp,
                          "transpose back")
broadcast_to_p = _structural("broadcast_to", lambda x, *, shape: broadcast_to(x, shape),
                             _broadcast_to_vjp, "1 (sum the copies)")
matmul_p = Primitive("matmul", lambda a, b: matmul(a, b), _matmul_vjp, None,
                     lambda o, a, b: (f"{o}_bar @ {b}^T", f"{a}^T @ {o}_bar"))


def sum(x: Any, axis: Axis = None) -> Any:  # noqa: A001
    """Sum over ``axis`` (all axes if ``None``)."""
    if type(x) is Var:
        return bind(sum_p, x, axis=_normalize_axis(axis, x.ndim))
    return _lib(x).sum(x, axis=axis) if _shape(x) else x


def mean(x: Any, axis: Axis = None) -> Any:
    """Mean over ``axis`` (all axes if ``None``)."""
    if type(x) is Var:
        return bind(mean_p, x, axis=_normalize_axis(axis, x.ndim))
    return _lib(x).mean(x, axis=axis) if _shape(x) else x


def reshape(x: Any, shape: tuple[int, ...]) -> Any:
    """The same elements in a new ``shape``."""
    shape = tuple(shape)
    if type(x) is Var:
        return bind(reshape_p, x, shape=shape)
    return _lib(x).reshape(x, shape)


def transpose(x: Any, axes: tuple[int, ...] | None = None) -> Any:
    """Permute the axes (reverse them if ``axes`` is ``None``)."""
    if type(x) is Var:
        ndim = x.ndim
        axes = tuple(reversed(range(ndim))) if axes is None else tuple(a % ndim for a in axes)
        return bind(transpose_p, x, axes=axes)
    return x if not _shape(x) else _lib(x).transpose(x, axes)


def broadcast_to(x: Any, shape: tuple[int, ...]) -> Any:
    """Copies of ``x`` filling ``shape`` (NumPy's broadcasting rules)."""
    shape = tuple(shape)
    if type(x) is Var:
        return bind(broadcast_to_p, x, shape=shape)
    return _lib(x).broadcast_to(x, shape)


def matmul(a: Any, b: Any) -> Any:
    """Matrix product ``a @ b`` of vectors and matrices (1-D or 2-D operands)."""
    if not _is_var(a, b):
        return _lib(a, b).matmul(a, b)
    for label, operand in (("a", a), ("b", b)):
        if len(_shape(operand)) not in (1, 2):
            raise ShapeError(f"tape primitive 'matmul': operand {label} must be 1-D or 2-D, "
                             f"got shape {_shape(operand)}")
    return bind(matmul_p, a, b)


# ---------------------------------------------------------------------------------------
# The table, and the operators of tape values

PRIMITIVES: dict[str, Primitive] = {
    p.name: p
    for p in (add_p, sub_p, mul_p, truediv_p, neg_p, integer_pow_p, pow_p, exp_p, log_p, sin_p,
              cos_p, tanh_p, sqrt_p, abs_p, maximum_p, where_p, sum_p, mean_p, reshape_p,
              transpose_p, broadcast_to_p, matmul_p)
}

SUPPORTED = ("operators + - * / ** @ and unary -, abs(); jaxbackprop.numpy: add, subtract, "
             "multiply, divide, negative, power, exp, log, sin, cos, tanh, sqrt, abs, maximum, "
             "relu, where, sum, mean, reshape, transpose, broadcast_to, matmul")


def unsupported(operation: str) -> TypeError:
    """The error for an operation the tape cannot record: it names itself and the rest."""
    return TypeError(f"{operation} is not supported on tape values (jaxbackprop.tape.Var). "
                     f"The tape records: {SUPPORTED}.")


_NUMPY_UFUNCS: dict[Any, Callable[..., Any]] = {
    np.add: add, np.subtract: subtract, np.multiply: multiply, np.true_divide: divide,
    np.negative: negative, np.power: power, np.exp: exp, np.log: log, np.sin: sin, np.cos: cos,
    np.tanh: tanh, np.sqrt: sqrt, np.absolute: abs, np.maximum: maximum, np.matmul: matmul,
}


def _array_ufunc(self: Var, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
    """NumPy's hook: ``ndarray * var`` and ``np.exp(var)`` record like our own functions."""
    fn = _NUMPY_UFUNCS.get(ufunc)
    if fn is None or method != "__call__" or kwargs:
        raise unsupported(f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}"))
    return fn(*inputs)


def _array(self: Var, *args: Any, **kwargs: Any) -> Any:
    raise unsupported("Converting a tape value to an array (numpy.asarray, jax.numpy functions)")


def _getattr(self: Var, attribute: str) -> Any:
    raise AttributeError(f"tape values have no attribute {attribute!r}. The tape records: {SUPPORTED}.")


def _getitem(self: Var, key: Any) -> Any:
    raise unsupported("Indexing")


for _name, _method in {
    "__add__": add, "__radd__": lambda s, o: add(o, s),
    "__sub__": subtract, "__rsub__": lambda s, o: subtract(o, s),
    "__mul__": multiply, "__rmul__": lambda s, o: multiply(o, s),
    "__truediv__": divide, "__rtruediv__": lambda s, o: divide(o, s),
    "__pow__": power, "__rpow__": lambda s, o: power(o, s),
    "__matmul__": matmul, "__rmatmul__": lambda s, o: matmul(o, s),
    "__neg__": negative, "__abs__": abs, "__pos__": lambda s: s,
    "__lt__": lambda s, o: s.value < (o.value if type(o) is Var else o),
    "__le__": lambda s, o: s.value <= (o.value if type(o) is Var else o),
    "__gt__": lambda s, o: s.value > (o.value if type(o) is Var else o),
    "__ge__": lambda s, o: s.value >= (o.value if type(o) is Var else o),
    "sum": sum, "mean": mean, "transpose": lambda s, *axes: transpose(s, axes or None),
    "reshape": lambda s, *shape: reshape(s, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape),
    "T": property(lambda s: transpose(s)),
    "__array_ufunc__": _array_ufunc, "__array__": _array, "__getattr__": _getattr,
    "__getitem__": _getitem,
}.items():
    setattr(Var, _name, _method)
