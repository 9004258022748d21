"""The tape's primitives: each forward function beside its local derivative and VJP rule.

For an elementwise primitive ``out = f(a, b)`` the *local gradients* are the partials
``d out / d a`` and ``d out / d b``; the VJP rule multiplies the incoming cotangent by
them (the chain rule) and sums away any broadcasting (:func:`unbroadcast`):

    a_bar = unbroadcast(out_bar * d out / d a, shape of a)

Every public function here is *dual*: on a tape value it records its primitive; on
anything else it computes directly, with ``math`` for Python floats (fast eager use),
NumPy for NumPy arrays, and ``jax.numpy`` for everything else (JAX arrays, tracers).
Rules are written with these same functions and the operators, so a backward pass
records onto an outer tape (higher order) and traces under ``jax.jit``/``jax.vmap``/
``jax.grad``. On Python floats the results follow IEEE arithmetic as NumPy and JAX do
(``1.0 / 0.0 == inf``, ``log(0.0) == -inf``) instead of raising.
"""

from __future__ import annotations

import builtins
import math
import operator
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np

from jaxbackprop.tape.core import Primitive, ShapeError, Var, bind, binary_op, unary_op

Axis = int | tuple[int, ...] | None

# ---------------------------------------------------------------------------------------
# Plain computation: math for Python floats, NumPy for NumPy arrays, jax.numpy otherwise


def _numpy_float(numpy_fn: Callable[..., Any], *args: Any) -> float:
    """``numpy_fn(*args)`` as a Python float, with NumPy's silent inf and nan."""
    with np.errstate(all="ignore"):
        return float(numpy_fn(*args))


def _ieee(numpy_fn: Callable[..., Any], math_fn: Callable[..., float]) -> Callable[..., float]:
    """``math_fn`` on Python floats, falling back to NumPy's inf or nan where it raises."""

    def fn(*args: float) -> float:
        try:
            return math_fn(*args)
        except (ValueError, OverflowError, ZeroDivisionError):
            return _numpy_float(numpy_fn, *args)

    return fn


class _ScalarMath:
    """The functions of NumPy's namespace that the tape uses, for Python floats."""

    exp = staticmethod(_ieee(np.exp, math.exp))
    log = staticmethod(_ieee(np.log, math.log))
    sqrt = staticmethod(_ieee(np.sqrt, math.sqrt))
    sin = staticmethod(_ieee(np.sin, math.sin))
    cos = staticmethod(_ieee(np.cos, math.cos))
    tanh = staticmethod(math.tanh)
    power = staticmethod(_ieee(np.power, math.pow))
    abs = staticmethod(builtins.abs)
    sign = staticmethod(lambda x: x if x != x else float((x > 0) - (x < 0)))
    maximum = staticmethod(lambda a, b: a if a > b or a != a else b)  # a != a: a is nan
    where = staticmethod(lambda c, a, b: a if c else b)
    reshape = staticmethod(lambda x, shape: x if shape == () else np.reshape(x, shape))
    broadcast_to = staticmethod(lambda x, shape: x if shape == () else np.broadcast_to(x, shape))
    matmul = staticmethod(np.matmul)


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


def _plain(function_name: str) -> Callable[..., Any]:
    """NumPy's function ``function_name``, from the library that fits the arguments."""

    def impl(*args: Any) -> Any:
        return getattr(_lib(*args), function_name)(*args)

    impl.__name__ = function_name
    return impl


def _true_divide(a: Any, b: Any) -> Any:
    try:
        return a / b
    except ZeroDivisionError:  # Python floats only; NumPy and JAX give inf or nan
        return _numpy_float(np.true_divide, a, b)


def _integer_power(a: Any, *, n: int) -> Any:
    try:
        return a**n
    except (OverflowError, ZeroDivisionError):  # Python floats only
        return _numpy_float(np.power, float(a), n)


def _shape(x: Any) -> tuple[int, ...]:
    if type(x) is float:
        return ()
    shape = getattr(x, "shape", None)  # arrays, tracers, tape values
    return np.shape(x) if shape is None else tuple(shape)


def _primal(x: Any) -> Any:
    """The plain number or array inside ``x``, through any number of tapes."""
    while type(x) is Var:
        x = x.value
    return x


# ---------------------------------------------------------------------------------------
# Building blocks of the rules


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


def _chain_rule(k: int, partial: Callable[..., Any]) -> Callable[..., Any]:
    """Input ``k``'s rule from its local derivative: ``unbroadcast(out_bar * d out/d in_k)``."""

    def vjp(ct: Any, out: Any, *inputs: Any, **params: Any) -> Any:
        return unbroadcast(ct * partial(out, *inputs, **params), inputs[k])

    return vjp


def _elementwise(name: str, impl: Callable[..., Any], derivative: str,
                 partials: tuple[Callable[..., Any], ...], formulas: Callable[..., tuple[str, ...]],
                 vjps: tuple[Callable[..., Any], ...] | None = None) -> Primitive:
    """An elementwise primitive from its local derivatives, ``partials[k](out, *inputs)``
    being ``d out / d input_k``. Input ``k``'s rule is the chain rule along its edge,
    ``unbroadcast(out_bar * partials[k](out, *inputs), input_k)``, unless ``vjps`` writes
    the same rules out (to skip a multiplication by 1 or a call, or to select rather than
    multiply).
    """
    rules = vjps or tuple(_chain_rule(k, partial) for k, partial in enumerate(partials))
    for rule in rules:
        rule.__doc__ = f"{derivative}."
    return Primitive(name, impl, rules, derivative, partials, formulas)


def _dual(apply: Callable[..., Any], function_name: str, doc: str) -> Callable[..., Any]:
    """Name and document a function made by ``unary_op`` or ``binary_op``."""
    apply.__name__ = apply.__qualname__ = function_name
    apply.__doc__ = doc
    return apply


# ---------------------------------------------------------------------------------------
# Arithmetic


def _integer_pow_partial(out: Any, a: Any, *, n: int) -> Any:
    return 0.0 * a if n == 0 else n * a if n == 2 else n * power(a, n - 1)


def _integer_pow_formula(out: str, a: str, *, n: int) -> tuple[str]:
    return ("0" if n == 0 else "1" if n == 1 else f"{n}{a}" if n == 2 else f"{n}{a}^{n - 1}",)


def _pow_exponent_partial(out: Any, a: Any, b: Any) -> Any:
    positive = _primal(a) > 0
    return where(positive, out * log(where(positive, a, 1.0)), 0.0 * out)


# add, sub and mul write their rules out, and a Python float cotangent (which never needs
# unbroadcast) skips a call: they are the hot path of eager use on scalars.
add_p = _elementwise(
    "add", operator.add, "out = a + b:  d out/d a = 1,  d out/d b = 1",
    partials=(lambda out, a, b: 1.0, lambda out, a, b: 1.0),
    formulas=lambda o, a, b: ("1", "1"),
    vjps=(lambda ct, out, a, b: ct if type(ct) is float else unbroadcast(ct, a),
          lambda ct, out, a, b: ct if type(ct) is float else unbroadcast(ct, b)))
sub_p = _elementwise(
    "sub", operator.sub, "out = a - b:  d out/d a = 1,  d out/d b = -1",
    partials=(lambda out, a, b: 1.0, lambda out, a, b: -1.0),
    formulas=lambda o, a, b: ("1", "-1"),
    vjps=(lambda ct, out, a, b: ct if type(ct) is float else unbroadcast(ct, a),
          lambda ct, out, a, b: -ct if type(ct) is float else unbroadcast(-ct, b)))
mul_p = _elementwise(
    "mul", operator.mul, "out = a * b:  d out/d a = b,  d out/d b = a",
    partials=(lambda out, a, b: b, lambda out, a, b: a),
    formulas=lambda o, a, b: (b, a),
    vjps=(lambda ct, out, a, b: ct * b if type(ct) is float else unbroadcast(ct * b, a),
          lambda ct, out, a, b: ct * a if type(ct) is float else unbroadcast(ct * a, b)))
truediv_p = _elementwise(
    "truediv", _true_divide, "out = a / b:  d out/d a = 1/b,  d out/d b = -a/b**2 = -out/b",
    partials=(lambda out, a, b: divide(1.0, b), lambda out, a, b: divide(-out, b)),
    formulas=lambda o, a, b: (f"1/{b}", f"-{o}/{b}"))
neg_p = _elementwise(
    "neg", operator.neg, "out = -a:  d out/d a = -1",
    partials=(lambda out, a: -1.0,), formulas=lambda o, a: ("-1",),
    vjps=(lambda ct, out, a: -ct,))
integer_pow_p = _elementwise(
    "integer_pow", _integer_power,
    "out = a**n (n an integer):  d out/d a = n * a**(n - 1)  (0 when n = 0)",
    partials=(_integer_pow_partial,), formulas=_integer_pow_formula)
pow_p = _elementwise(
    "pow", _plain("power"),
    "out = a**b:  d out/d a = b * a**(b - 1),  d out/d b = out * log(a), taken as 0 where a <= 0",
    partials=(lambda out, a, b: b * power(a, b - 1.0), _pow_exponent_partial),
    formulas=lambda o, a, b: (f"{b}*{a}^({b}-1)", f"{o}*log({a})"))

add = _dual(binary_op(add_p), "add", "``a + b``, broadcasting.")
subtract = _dual(binary_op(sub_p), "subtract", "``a - b``, broadcasting.")
multiply = _dual(binary_op(mul_p), "multiply", "``a * b``, broadcasting.")
divide = _dual(binary_op(truediv_p), "divide", "``a / b``, broadcasting.")
negative = _dual(unary_op(neg_p), "negative", "``-a``.")
_real_power = binary_op(pow_p)


def power(a: Any, b: Any) -> Any:
    """``a ** b``; an integer exponent records ``integer_pow``, anything else ``pow``."""
    if type(b) is int:
        return bind(integer_pow_p, a, n=b) if type(a) is Var else _integer_power(a, n=b)
    return _real_power(a, b)


# ---------------------------------------------------------------------------------------
# Elementary functions


def _unary(function_name: str, partial: Callable[[Any, Any], Any], formula: str) -> Primitive:
    """The elementwise primitive ``out = function_name(x)`` with ``d out/d x = formula``."""
    derivative = f"out = {function_name}(x):  d out/d x = {formula.format(x='x', out='out')}"
    return _elementwise(function_name, _plain(function_name), derivative, partials=(partial,),
                        formulas=lambda o, x: (formula.format(x=x, out=o),))


exp_p = _unary("exp", lambda out, x: out, "exp({x})")
log_p = _unary("log", lambda out, x: divide(1.0, x), "1/{x}")
sin_p = _unary("sin", lambda out, x: cos(x), "cos({x})")
cos_p = _unary("cos", lambda out, x: -sin(x), "-sin({x})")
tanh_p = _unary("tanh", lambda out, x: (1.0 - out) * (1.0 + out), "1 - {out}^2")
sqrt_p = _unary("sqrt", lambda out, x: divide(0.5, out), "1/(2 {out})")
# sign(x), taking the value 1 at x = 0 as jax.grad does (any value in [-1, 1] would do).
abs_p = _unary("abs", lambda out, x: sign(x) + (_primal(x) == 0), "sign({x})")


def _elementary(prim: Primitive) -> Callable[[Any], Any]:
    return _dual(unary_op(prim), prim.name, f"Elementwise {prim.name}. {prim.derivative}.")


exp = _elementary(exp_p)
log = _elementary(log_p)
sin = _elementary(sin_p)
cos = _elementary(cos_p)
tanh = _elementary(tanh_p)
sqrt = _elementary(sqrt_p)
abs = _elementary(abs_p)  # noqa: A001 (the name of numpy's function)


def sign(x: Any) -> Any:
    """``sign(x)`` in {-1, 0, 1}; piecewise constant, so it is not recorded (zero gradient)."""
    x = _primal(x)
    return _lib(x).sign(x)


# ---------------------------------------------------------------------------------------
# Selection


maximum_p = _elementwise(
    "maximum", _plain("maximum"),
    "out = maximum(a, b):  d out/d a = 1 where a > b, 1/2 at a tie, 0 where a < b "
    "(as jax.grad of jnp.maximum);  d out/d b mirrors it",
    partials=(lambda out, a, b: 0.5 * (1.0 + sign(_primal(a) - _primal(b))),
              lambda out, a, b: 0.5 * (1.0 - sign(_primal(a) - _primal(b)))),
    formulas=lambda o, a, b: (f"[{a} > {b}]", f"[{b} > {a}]"))
where_p = _elementwise(  # selects the cotangent rather than multiplying it by 1 or 0
    "where", lambda a, b, *, condition: _lib(condition, a, b).where(condition, a, b),
    "out = where(c, a, b):  d out/d a = 1 where c else 0,  d out/d b = 0 where c else 1",
    partials=(lambda out, a, b, *, condition: where(condition, 1.0, 0.0),
              lambda out, a, b, *, condition: where(condition, 0.0, 1.0)),
    formulas=lambda o, a, b, *, condition: ("[condition]", "[not condition]"),
    vjps=(lambda ct, out, a, b, *, condition: unbroadcast(where(condition, ct, 0.0 * ct), a),
          lambda ct, out, a, b, *, condition: unbroadcast(where(condition, 0.0 * ct, ct), b)))

maximum = _dual(binary_op(maximum_p), "maximum",
                "Elementwise ``max(a, b)``, broadcasting. Ties split the gradient in half.")


def relu(x: Any) -> Any:
    """``maximum(x, 0)``: d/dx = 1 for x > 0, 0 for x < 0, 1/2 at 0 (like ``jnp.maximum``)."""
    return maximum(x, 0.0)


def where(condition: Any, a: Any, b: Any) -> Any:
    """``a`` where ``condition`` holds, else ``b``; the condition is not differentiated."""
    condition = _primal(condition)
    if type(a) is Var or type(b) is Var:
        return bind(where_p, a, b, condition=condition)
    return where_p.impl(a, b, condition=condition)


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


def _sum_vjp(ct: Any, out: Any, x: Any, *, axis: tuple[int, ...]) -> Any:
    """out = sum(x, axis):  d out/d x_i = 1 for every summed element, so x_bar is out_bar
    copied back along the summed axes."""
    return _expand_to(ct, x, axis)


def _mean_vjp(ct: Any, out: Any, x: Any, *, axis: tuple[int, ...]) -> Any:
    """out = mean(x, axis):  d out/d x_i = 1/n, n the number of elements averaged."""
    count = math.prod(_shape(x)[a] for a in axis)
    return _expand_to(ct, x, axis) / count


def _reshape_vjp(ct: Any, out: Any, x: Any, *, shape: tuple[int, ...]) -> Any:
    """out = reshape(x): the same numbers in a new shape; x_bar = reshape(out_bar, x.shape)."""
    return reshape(ct, _shape(x))


def _transpose_vjp(ct: Any, out: Any, x: Any, *, axes: tuple[int, ...]) -> Any:
    """out = transpose(x, axes): a permutation; x_bar = transpose(out_bar, inverse(axes))."""
    return transpose(ct, tuple(int(i) for i in np.argsort(axes)))


def _broadcast_to_vjp(ct: Any, out: Any, x: Any, *, shape: tuple[int, ...]) -> Any:
    """out = broadcast_to(x, shape): copies of x; x_bar sums the copies (unbroadcast)."""
    return unbroadcast(ct, x)


def _matmul_a_bar(ct: Any, out: Any, a: Any, b: Any) -> Any:
    """out = a @ b:  a_bar = out_bar @ b^T; an outer product when b is a vector."""
    if len(_shape(b)) == 1:
        return _outer(ct, b) if len(_shape(a)) == 2 else ct * b
    return matmul(ct, transpose(b)) if len(_shape(a)) == 2 else matmul(b, ct)


def _matmul_b_bar(ct: Any, out: Any, a: Any, b: Any) -> Any:
    """out = a @ b:  b_bar = a^T @ out_bar; an outer product when a is a vector."""
    if len(_shape(a)) == 1:
        return _outer(a, ct) if len(_shape(b)) == 2 else ct * a
    return matmul(transpose(a), ct) if len(_shape(b)) == 2 else matmul(ct, a)


def _outer(u: Any, v: Any) -> Any:
    """The outer product ``u v^T`` of two vectors, as a column times a row."""
    return reshape(u, (_shape(u)[0], 1)) * reshape(v, (1, _shape(v)[0]))


def _structural(prim_name: str, impl: Callable[..., Any], vjp: Callable[..., Any],
                description: str) -> Primitive:
    """A one-input primitive whose local derivative is a linear map (the rule's docstring)."""
    return Primitive(prim_name, impl, (vjp,), " ".join(str(vjp.__doc__).split()), None,
                     lambda o, *xs, **params: (description,) * len(xs))


def _reduction(function_name: str) -> Callable[..., Any]:
    def impl(x: Any, *, axis: Axis) -> Any:
        return getattr(_lib(x), function_name)(x, axis=axis) if _shape(x) else x

    return impl


sum_p = _structural("sum", _reduction("sum"), _sum_vjp, "1 (copy back along the summed axes)")
mean_p = _structural("mean", _reduction("mean"), _mean_vjp, "1/n (copy back, divided by the count)")
reshape_p = _structural("reshape", lambda x, *, shape: _lib(x).reshape(x, shape), _reshape_vjp,
                        "reshape back")
transpose_p = _structural("transpose",
                          lambda x, *, axes: _lib(x).transpose(x, axes) if _shape(x) else x,
                          _transpose_vjp, "transpose back")
broadcast_to_p = _structural("broadcast_to", lambda x, *, shape: _lib(x).broadcast_to(x, shape),
                             _broadcast_to_vjp, "1 (sum the copies)")
matmul_p = Primitive("matmul", _plain("matmul"), (_matmul_a_bar, _matmul_b_bar),
                     "out = a @ b:  a_bar = out_bar @ b^T,  b_bar = a^T @ out_bar", None,
                     lambda o, a, b: (f"{o}_bar @ {b}^T", f"{a}^T @ {o}_bar"))
_matmul = binary_op(matmul_p)


def sum(x: Any, axis: Axis = None) -> Any:  # noqa: A001
    """Sum over ``axis`` (all axes if ``None``)."""
    if type(x) is Var:
        return bind(sum_p, x, axis=_normalize_axis(axis, x.ndim))
    return sum_p.impl(x, axis=axis)


def mean(x: Any, axis: Axis = None) -> Any:
    """Mean over ``axis`` (all axes if ``None``)."""
    if type(x) is Var:
        return bind(mean_p, x, axis=_normalize_axis(axis, x.ndim))
    return mean_p.impl(x, axis=axis)


def reshape(x: Any, shape: int | tuple[int, ...]) -> Any:
    """The same elements in a new ``shape`` (one entry may be -1: inferred)."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if type(x) is Var:
        return bind(reshape_p, x, shape=shape)
    return reshape_p.impl(x, shape=shape)


def transpose(x: Any, axes: tuple[int, ...] | None = None) -> Any:
    """Permute the axes (reverse them if ``axes`` is ``None``)."""
    if type(x) is Var:
        ndim = x.ndim
        axes = tuple(reversed(range(ndim))) if axes is None else tuple(a % ndim for a in axes)
        return bind(transpose_p, x, axes=axes)
    return transpose_p.impl(x, axes=axes)


def broadcast_to(x: Any, shape: tuple[int, ...]) -> Any:
    """Copies of ``x`` filling ``shape`` (NumPy's broadcasting rules)."""
    shape = tuple(shape)
    if type(x) is Var:
        return bind(broadcast_to_p, x, shape=shape)
    return broadcast_to_p.impl(x, shape=shape)


def matmul(a: Any, b: Any) -> Any:
    """Matrix product ``a @ b`` of vectors and matrices (1-D or 2-D operands)."""
    if type(a) is Var or type(b) is Var:
        for label, operand in (("a", a), ("b", b)):
            if len(_shape(operand)) not in (1, 2):
                raise ShapeError(f"tape primitive 'matmul': operand {label} must be 1-D or 2-D, "
                                 f"got shape {_shape(operand)}")
    return _matmul(a, b)


# ---------------------------------------------------------------------------------------
# The tables, and the operators of tape values

PRIMITIVES: dict[str, Primitive] = {
    p.name: p
    for p in (add_p, sub_p, mul_p, truediv_p, neg_p, integer_pow_p, pow_p, exp_p, log_p, sin_p,
              cos_p, tanh_p, sqrt_p, abs_p, maximum_p, where_p, sum_p, mean_p, reshape_p,
              transpose_p, broadcast_to_p, matmul_p)
}

# The dual functions, as jaxbackprop.numpy exports them.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (add, subtract, multiply, divide, negative, power, exp, log, sin, cos, tanh, sqrt,
              abs, sign, maximum, relu, where, sum, mean, reshape, transpose, broadcast_to, matmul)
}

SUPPORTED = ("operators + - * / ** @, unary -, abs(); comparisons (not differentiated); "
             f"jaxbackprop.numpy: {', '.join(FUNCTIONS)}")


def unsupported(operation: str, hint: str = "") -> TypeError:
    """The error for an operation the tape cannot record: it names itself and the rest."""
    return TypeError(f"{operation} is not supported on tape values (jaxbackprop.tape.Var). "
                     f"{hint + ' ' if hint else ''}The tape records: {SUPPORTED}.")


_NUMPY_UFUNCS: dict[Any, Callable[..., Any]] = {
    np.add: add, np.subtract: subtract, np.multiply: multiply, np.true_divide: divide,
    np.negative: negative, np.power: power, np.exp: exp, np.log: log, np.sin: sin, np.cos: cos,
    np.tanh: tanh, np.sqrt: sqrt, np.absolute: abs, np.sign: sign, np.maximum: maximum,
    np.matmul: matmul,
}
_NUMPY_COMPARISONS = (np.less, np.less_equal, np.greater, np.greater_equal, np.equal,
                      np.not_equal)
_NUMPY_FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.sum: sum, np.mean: mean, np.reshape: reshape, np.transpose: transpose, np.where: where,
    np.broadcast_to: broadcast_to, np.shape: _shape, np.ndim: lambda x: x.ndim,
}


def _array_ufunc(self: Var, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
    """NumPy's hook for ufuncs: ``ndarray * var`` and ``np.exp(var)`` record like our own
    functions; comparisons compare the primal values."""
    if method == "__call__" and not kwargs:
        if ufunc in _NUMPY_COMPARISONS:
            return ufunc(*(x.value if type(x) is Var else x for x in inputs))
        if ufunc in _NUMPY_UFUNCS:
            return _NUMPY_UFUNCS[ufunc](*inputs)
    raise unsupported(f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}"),
                      "Use jaxbackprop.numpy.")


def _array_function(self: Var, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
    """NumPy's hook for its other functions: ``np.sum(var)`` records ``sum``."""
    if func not in _NUMPY_FUNCTIONS:
        raise unsupported(f"numpy.{func.__name__}", "Use jaxbackprop.numpy.")
    return _NUMPY_FUNCTIONS[func](*args, **kwargs)


def _array(self: Var, *args: Any, **kwargs: Any) -> Any:
    raise unsupported("Converting a tape value to an array (numpy.asarray, jax.numpy functions)",
                      "Use jaxbackprop.numpy, which records on the tape.")


def _getattr(self: Var, attribute: str) -> Any:
    raise AttributeError(f"tape values have no attribute {attribute!r}. "
                         f"The tape records: {SUPPORTED}.")


def _getitem(self: Var, key: Any) -> Any:
    raise unsupported("Indexing")


def _shape_arguments(args: tuple[Any, ...]) -> Any:
    """``x.reshape(2, 3)`` and ``x.reshape((2, 3))`` alike, as NumPy's methods take them."""
    return args[0] if len(args) == 1 and not isinstance(args[0], int) else args


def _reflected(fn: Callable[[Any, Any], Any]) -> Callable[[Var, Any], Any]:
    def method(self: Var, other: Any) -> Any:
        return fn(other, self)

    return method


def _compare(compare: Callable[[Any, Any], Any]) -> Callable[[Var, Any], Any]:
    def method(self: Var, other: Any) -> Any:
        return compare(self.value, other.value if type(other) is Var else other)

    return method


for _name, _method in {
    "__add__": add, "__radd__": _reflected(add),
    "__sub__": subtract, "__rsub__": _reflected(subtract),
    "__mul__": multiply, "__rmul__": _reflected(multiply),
    "__truediv__": divide, "__rtruediv__": _reflected(divide),
    "__pow__": power, "__rpow__": _reflected(power),
    "__matmul__": matmul, "__rmatmul__": _reflected(matmul),
    "__neg__": negative, "__abs__": abs, "__pos__": lambda s: s,
    "__lt__": _compare(operator.lt), "__le__": _compare(operator.le),
    "__gt__": _compare(operator.gt), "__ge__": _compare(operator.ge),
    "__eq__": _compare(operator.eq), "__ne__": _compare(operator.ne),
    "sum": sum, "mean": mean,
    "transpose": lambda s, *axes: transpose(s, _shape_arguments(axes) if axes else None),
    "reshape": lambda s, *shape: reshape(s, _shape_arguments(shape)),
    "T": property(lambda s: transpose(s)),
    "__array_ufunc__": _array_ufunc, "__array_function__": _array_function,
    "__array__": _array, "__getattr__": _getattr, "__getitem__": _getitem,
}.items():
    setattr(Var, _name, _method)
