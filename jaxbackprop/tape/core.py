"""The engine: a tape of equations, and the lecture's three steps as three functions.

A *tape* is a Wengert list. Every primitive call on a tape value (:class:`Var`) appends
one :class:`Equation` ``(primitive, parents, inputs, out, params)`` in execution order::

    variable  primitive    parents   inputs (residuals)   out
    3         mul          (0, 1)    (w=1.0, x=1.0)       y_hat=1.0
    4         sub          (3, 2)    (1.0, 2.0)           s=-1.0
    5         integer_pow  (4,)      (-1.0,), n=2         L=1.0

1. :func:`forward_pass` computes one primitive's output and appends its equation;
2. :func:`local_gradients` gives its partials ``d out / d input_k`` at the recorded values;
3. :func:`backward_pass` walks the equations in reverse (execution order is a topological
   order: no recursion, no sort) applying the chain rule along every edge.

Forward mode (:func:`push_forward`) walks them forwards. Both read one derivative table,
the primitives at the end of this module, each beside its local derivative.

Nested tapes (``grad(grad(f))``) are kept apart by *level*: a primitive records on the
highest-level tape among its arguments and treats values of lower tapes as constants.
Those constants are values of an outer tape, so computing the output (``bind`` again, one
level out) records the same step there: that is how the tape differentiates its own
backward pass.
"""

from __future__ import annotations

import math
import operator
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxbackprop.tape.compute import lib, shape


@dataclass(frozen=True, eq=False)
class Primitive:
    """An operation the tape records, with its local derivative, written once.

    ``impl(*inputs, **params)`` computes the output from plain numbers or arrays. An
    *elementwise* primitive gives ``partials[k](out, *inputs, **params)``, the local
    derivative ``d out / d input_k``. A *linear* one (sum, reshape, matmul in each input,
    indexing...) gives instead the linear map ``linear(k, tangent, *inputs, **params)``
    from input ``k``'s tangent to the output's, and its ``transpose(k, out_bar, *inputs,
    **params)``, input ``k``'s cotangent. ``formulas(out, *inputs, **params)`` writes the
    local derivatives as text from the values' names (the walkthrough shows them).
    """

    name: str
    impl: Callable[..., Any]
    formulas: Callable[..., tuple[str, ...]]
    partials: tuple[Callable[..., Any], ...] = ()
    linear: Callable[..., Any] | None = None
    transpose: Callable[..., Any] | None = None

    def __repr__(self) -> str:
        return f"Primitive({self.name})"


@dataclass(slots=True, eq=False)
class Equation:
    """One recorded call: ``out = primitive(*inputs, **params)``.

    ``parents[k]`` is the variable index of input ``k`` on the tape, ``None`` for a
    constant. ``inputs`` and ``out`` are values: the residuals the backward pass reads.
    """

    primitive: Primitive
    parents: tuple[int | None, ...]
    inputs: tuple[Any, ...]
    out: Any
    params: dict[str, Any]


NO_PARAMS: dict[str, Any] = {}  # the params of every equation that has none (never mutated)
_open = threading.local()  # how many tapes are open, in this thread


class Tape:
    """The equations of one call of ``vjp``/``jvp``/``grad``; lives only for that call.

    Inputs are variables ``0 .. num_inputs - 1``; equation ``i`` defines variable
    ``num_inputs + i``. Nothing on the tape points back at it: it makes no reference
    cycles. ``with Tape() as tape`` opens it one level above any tape already open; once
    closed, its values are refused (a value that escaped its call cannot record anywhere).
    """

    def __init__(self) -> None:
        self.level = 0  # set when opened
        self.open = False
        self.num_inputs = 0
        self.equations: list[Equation] = []
        self.names: dict[int, str] = {}  # display names, for the walkthrough

    def __enter__(self) -> Tape:
        self.level = _open.depth = getattr(_open, "depth", 0) + 1
        self.open = True
        return self

    def __exit__(self, *exc_info: Any) -> None:
        _open.depth = self.level - 1
        self.open = False

    def new_var(self, value: Any) -> Var:
        """A fresh input variable. All inputs are created before the first equation."""
        if self.equations:
            raise RuntimeError("Tape.new_var: inputs must be created before any equation")
        self.num_inputs += 1
        return Var(value, self, self.num_inputs - 1)

    @property
    def num_vars(self) -> int:
        return self.num_inputs + len(self.equations)


recording = Tape  # ``with recording() as tape``: a new tape, one level above the open ones


# ---------------------------------------------------------------------------------------
# Tape values


class Var:
    """A value being recorded: its primal ``value``, its ``tape`` and its ``index`` there.

    Operators ``+ - * / ** @``, unary ``-``, ``abs()`` and indexing record primitives.
    Comparisons and ``bool`` read the primal value, so Python control flow works, as
    under ``jax.grad``; ``float()``, ``int()``, ``math.*`` and NumPy conversions refuse,
    because the plain number they would make carries no gradient. ``value`` may itself be
    a value of an outer tape (higher order) or a JAX tracer (under ``jit``/``vmap``).
    """

    __slots__ = ("value", "tape", "index")
    __array_priority__ = 1000  # NumPy defers its binary operators to ours

    def __init__(self, value: Any, tape: Tape, index: int) -> None:
        self.value = value
        self.tape = tape
        self.index = index

    def __add__(self, other: Any) -> Any: return bind(add_p, self, other)  # noqa: E704
    def __radd__(self, other: Any) -> Any: return bind(add_p, other, self)  # noqa: E704
    def __sub__(self, other: Any) -> Any: return bind(sub_p, self, other)  # noqa: E704
    def __rsub__(self, other: Any) -> Any: return bind(sub_p, other, self)  # noqa: E704
    def __mul__(self, other: Any) -> Any: return bind(mul_p, self, other)  # noqa: E704
    def __rmul__(self, other: Any) -> Any: return bind(mul_p, other, self)  # noqa: E704
    def __truediv__(self, other: Any) -> Any: return bind(truediv_p, self, other)  # noqa: E704
    def __rtruediv__(self, other: Any) -> Any: return bind(truediv_p, other, self)  # noqa: E704
    def __pow__(self, other: Any) -> Any: return power(self, other)  # noqa: E704
    def __rpow__(self, other: Any) -> Any: return power(other, self)  # noqa: E704
    def __matmul__(self, other: Any) -> Any: return matmul(self, other)  # noqa: E704
    def __rmatmul__(self, other: Any) -> Any: return matmul(other, self)  # noqa: E704
    def __neg__(self) -> Any: return bind(neg_p, self)  # noqa: E704
    def __pos__(self) -> Any: return self  # noqa: E704
    def __abs__(self) -> Any: return bind(abs_p, self)  # noqa: E704
    def __getitem__(self, key: Any) -> Any: return getitem(self, key)  # noqa: E704

    def __iter__(self) -> Any:
        """``x[0], x[1], ...`` along the first axis (without it, Python would call ``x[0]``
        on a scalar, get ``IndexError`` and loop zero times: a silent empty loop)."""
        if not self.shape:
            raise TypeError("iteration over a 0-d tape value (a scalar has no elements)")
        return (self[i] for i in range(self.shape[0]))

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tape value (a scalar has no elements)")
        return self.shape[0]

    def sum(self, axis: Axis = None) -> Any: return sum(self, axis)  # noqa: E704
    def mean(self, axis: Axis = None) -> Any: return mean(self, axis)  # noqa: E704
    def reshape(self, *s: Any) -> Any: return reshape(self, s[0] if len(s) == 1 else s)  # noqa: E704

    def transpose(self, *axes: Any) -> Any:
        return transpose(self, (axes[0] if len(axes) == 1 else axes) or None)

    T = property(lambda self: transpose(self))
    shape = property(lambda self: shape(self.value))
    ndim = property(lambda self: len(shape(self.value)))
    dtype = property(lambda self: getattr(self.value, "dtype", None)
                     or np.result_type(self.value))

    # Comparisons and truth read the primal value; they are not differentiated.
    def __lt__(self, other: Any) -> Any: return primal(self) < primal(other)  # noqa: E704
    def __le__(self, other: Any) -> Any: return primal(self) <= primal(other)  # noqa: E704
    def __gt__(self, other: Any) -> Any: return primal(self) > primal(other)  # noqa: E704
    def __ge__(self, other: Any) -> Any: return primal(self) >= primal(other)  # noqa: E704
    def __eq__(self, other: Any) -> Any: return primal(self) == primal(other)  # noqa: E704
    def __ne__(self, other: Any) -> Any: return primal(self) != primal(other)  # noqa: E704
    def __bool__(self) -> bool: return bool(primal(self))  # noqa: E704
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        label = self.tape.names.get(self.index)
        return f"Var({self.value!r}{f', name={label!r}' if label else ''}, level={self.tape.level})"

    # What would silently drop the gradient is refused (JAX: ConcretizationTypeError).
    def __float__(self) -> float: raise _lost("float() (or math.*)")  # noqa: E704
    def __int__(self) -> int: raise _lost("int()")  # noqa: E704
    def __complex__(self) -> complex: raise _lost("complex()")  # noqa: E704
    def __index__(self) -> int: raise _lost("Using it as an integer (an index, a range)")  # noqa: E704
    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise _lost("Converting a tape value to an array (numpy.asarray, jax.numpy functions)")

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """NumPy's hook: ``ndarray * var`` and ``np.exp(var)`` record like our functions."""
        if method == "__call__" and not kwargs and ufunc.__name__ in _NUMPY_NAMES:
            return _NUMPY_NAMES[ufunc.__name__](*inputs)
        if method == "__call__" and ufunc.__name__ in _COMPARISONS:
            return ufunc(*map(primal, inputs), **kwargs)
        raise unsupported(f"numpy.{ufunc.__name__}", "Use jaxbackprop.numpy.")

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        """NumPy's hook for its other functions: ``np.sum(var)`` records ``sum``."""
        if func.__name__ not in _NUMPY_NAMES or getattr(np, func.__name__) is not func:
            raise unsupported(f"numpy.{func.__name__}", "Use jaxbackprop.numpy.")
        return _NUMPY_NAMES[func.__name__](*args, **kwargs)

    # Operators the tape does not record name themselves.
    def __mod__(self, other: Any) -> Any: raise unsupported("The operator %")  # noqa: E704
    def __floordiv__(self, other: Any) -> Any: raise unsupported("The operator //")  # noqa: E704
    def __divmod__(self, other: Any) -> Any: raise unsupported("divmod()")  # noqa: E704
    def __and__(self, other: Any) -> Any: raise unsupported("The bit operators & | ^ << >> ~")  # noqa: E704
    def __invert__(self) -> Any: raise unsupported("The bit operator ~")  # noqa: E704
    __rmod__, __rfloordiv__, __rdivmod__ = __mod__, __floordiv__, __divmod__
    __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = __lshift__ = __rlshift__ = __and__
    __rshift__ = __rrshift__ = __and__


def primal(x: Any) -> Any:
    """The plain number or array inside ``x``, through any number of tapes."""
    while type(x) is Var:
        x = x.value
    return x


def name(value: Any, label: str) -> Any:
    """Give a tape value a display name for the walkthrough; identity on anything else."""
    if type(value) is Var:
        value.tape.names[value.index] = label
    return value


class ShapeError(ValueError):
    """A primitive was given inputs whose shapes do not fit together."""


def unsupported(operation: str, hint: str = "") -> TypeError:
    """The error for an operation the tape cannot record: it names itself and the rest."""
    return TypeError(f"{operation} is not supported on tape values (jaxbackprop.tape.Var). "
                     f"{hint + ' ' if hint else ''}The tape records: {SUPPORTED}.")


def _lost(conversion: str) -> TypeError:
    return unsupported(
        conversion, "The plain number or array it makes would lose the gradient: the tape "
        "could not follow it, and the derivative through it would silently be 0 (JAX raises "
        "ConcretizationTypeError for the same reason). Compute with operators and "
        "jaxbackprop.numpy (jbnp.sin, not math.sin); comparisons and `if` on tape values work.")


def complex_error(where: str) -> TypeError:
    """The refusal of a complex value (``where`` names it)."""
    return TypeError(f"{where} is complex; the tape differentiates real functions only "
                     "(use jax.grad/jax.vjp for complex numbers)")


def is_complex(x: Any) -> bool:
    """Whether ``x`` is a complex number or array."""
    return type(x) is complex or getattr(getattr(x, "dtype", None), "kind", None) == "c"


# ---------------------------------------------------------------------------------------
# The three steps


def bind(primitive: Primitive, *args: Any, **params: Any) -> Any:
    """Apply ``primitive``: record it on the innermost tape among ``args``, or just compute."""
    tape = None
    for a in args:
        if type(a) is Var and a.tape is not tape:
            if not a.tape.open or (tape is not None and a.tape.level == tape.level):
                raise RuntimeError(
                    f"tape primitive {primitive.name!r}: an input belongs to a tape whose "
                    "call has returned (or to another tape of the same nesting level). A "
                    "tape value escaped the function that recorded it (kept in a global or "
                    "a closure after its grad/vjp call returned); pass values in as "
                    "arguments instead.")
            if tape is None or a.tape.level > tape.level:
                tape = a.tape
    try:
        if tape is None:
            return primitive.impl(*args, **params)
        return forward_pass(tape, primitive, args, params or NO_PARAMS)
    except (ValueError, TypeError) as error:  # shapes that do not fit: name them
        raise _shape_error(primitive, args, error) from None


def kept(value: Any) -> Any:
    """``value`` as the tape keeps it: a NumPy array is copied, so that a later write into
    the caller's array (a buffer refilled in a loop) cannot change what the backward pass
    reads. JAX arrays and Python numbers cannot be written to; they are kept as they are."""
    return value.copy() if isinstance(value, np.ndarray) else value


def forward_pass(tape: Tape, primitive: Primitive, args: tuple[Any, ...],
                 params: dict[str, Any]) -> Var:
    """Step 1, the forward pass: compute the output and append the equation to the tape.

    Values of this tape enter as variables; anything else (numbers, arrays, values of
    outer tapes) as constants, kept (:func:`kept`), and computing with those (``bind``
    again, when this tape is nested) records on their own tape.
    """
    parents, inputs = [], []
    for a in args:
        if type(a) is Var and a.tape is tape:
            parents.append(a.index)
            inputs.append(a.value)
        else:
            parents.append(None)
            inputs.append(kept(a))
    if params:  # (where's condition may be an array; the rest share NO_PARAMS)
        params = {k: kept(v) for k, v in params.items()}
    if tape.level == 1:  # the outermost tape: its values are plain numbers or arrays
        out = primitive.impl(*inputs, **params)
    else:  # they may be values of an outer tape: computing with them records there too
        out = bind(primitive, *inputs, **params)
    if type(out) is not float and is_complex(primal(out)):
        raise complex_error(f"the output of tape primitive {primitive.name!r}")
    tape.equations.append(Equation(primitive, tuple(parents), tuple(inputs), out, params))
    return Var(out, tape, tape.num_inputs + len(tape.equations) - 1)


def local_gradients(eqn: Equation) -> list[Any]:
    """Step 2, the local gradients: ``d out / d input_k`` at the recorded values, for each
    input that is a variable (``None`` for a constant: it needs no gradient). Elementwise
    primitives only; a linear primitive's local derivative is its linear map."""
    partials, grads = eqn.primitive.partials, []
    for k, parent in enumerate(eqn.parents):
        grads.append(None if parent is None else partials[k](eqn.out, *eqn.inputs, **eqn.params))
    return grads


def backward_pass(tape: Tape, out_index: int, out_bar: Any, *,
                  keep_intermediate: bool = False) -> list[Any]:
    """Step 3, the backward pass: ``ct[v] = sum over uses of ct[out] * d out / d v``.

    Walks the equations once in reverse and applies the chain rule along each edge: an
    elementwise primitive passes ``out_bar * d out / d input_k`` (its local gradients),
    summed back to the input's shape (:func:`unbroadcast`); a linear one passes its
    transpose applied to ``out_bar``. ``None`` marks a variable the output does not
    depend on. An equation's cotangent is complete when the loop reaches it (its uses all
    come later) and is dropped once passed on, unless ``keep_intermediate``.
    """
    cts: list[Any] = [None] * tape.num_vars
    cts[out_index] = out_bar
    for v in range(out_index, tape.num_inputs - 1, -1):  # later equations cannot matter
        ct = cts[v]
        if ct is None:
            continue
        if not keep_intermediate:
            cts[v] = None
        eqn = tape.equations[v - tape.num_inputs]
        transpose = eqn.primitive.transpose
        grads = local_gradients(eqn) if transpose is None else []
        for k, parent in enumerate(eqn.parents):
            if parent is None:
                continue
            if transpose is None:  # elementwise: out_bar times the local gradient
                x_bar = unbroadcast(ct * grads[k], eqn.inputs[k])
            else:  # linear: the transpose of its linear map, applied to out_bar
                x_bar = transpose(k, ct, *eqn.inputs, **eqn.params)
            cts[parent] = x_bar if cts[parent] is None else cts[parent] + x_bar  # fan-out adds
    return cts


def push_forward(tape: Tape, tangents: list[Any]) -> list[Any]:
    """Forward mode on the recorded tape: each variable's tangent, given the inputs'.

    ``d out = sum_k (d out / d input_k) * d input_k`` for an elementwise primitive (the
    local gradients of step 2, broadcast to the output's shape), its linear map applied to
    the tangents for a linear one. ``None`` marks a tangent that is zero.
    """
    tangents = list(tangents)
    for eqn in tape.equations:
        linear, dot = eqn.primitive.linear, None
        known = [(k, tangents[p]) for k, p in enumerate(eqn.parents)
                 if p is not None and tangents[p] is not None]
        grads = local_gradients(eqn) if known and linear is None else []
        for k, t in known:
            term = grads[k] * t if linear is None else linear(k, t, *eqn.inputs, **eqn.params)
            term = term if shape(term) == shape(eqn.out) else broadcast_to(term, shape(eqn.out))
            dot = term if dot is None else dot + term
        tangents.append(dot)
    return tangents


def unbroadcast(ct: Any, like: Any) -> Any:
    """Sum the cotangent ``ct`` back to the shape of ``like``, undoing broadcasting.

    Broadcasting copies an input along new leading axes and along axes of size 1; the
    adjoint of a copy is a sum: ``(3, 4) -> (4,)`` sums axis 0, ``(3, 4) -> (1, 4)`` sums
    it keeping it, ``(3, 4) -> ()`` sums everything.
    """
    if type(ct) is float:  # a Python float cotangent only ever meets a scalar
        return ct
    have, target = shape(ct), shape(like)
    if have == target:
        return ct
    lead = len(have) - len(target)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(target) if n == 1 and have[lead + i] != 1)
    return reshape(sum(ct, axis=axes), target)


def _shape_error(primitive: Primitive, inputs: tuple[Any, ...], error: Exception) -> Exception:
    """A :class:`ShapeError` naming the primitive and the input shapes if ``error`` is about
    shapes (NumPy's ``ValueError``, JAX's ``TypeError`` saying "shape"), else ``error``."""
    if isinstance(error, ShapeError) or not (isinstance(error, ValueError)
                                             or "shape" in str(error)):
        return error
    shapes = " and ".join(str(np.shape(x)) for x in inputs)
    return ShapeError(f"tape primitive {primitive.name!r}: inputs of shapes {shapes} "
                      f"do not combine: {error}")


# ---------------------------------------------------------------------------------------
# The derivative table: each primitive beside its local derivative, and the function that
# records it. Rules use these same functions, so a backward pass records on an outer tape
# (higher order) and traces under jax.jit, jax.vmap and jax.grad.

Axis = int | tuple[int, ...] | None


def elementwise(name: str, impl: Callable[..., Any], formulas: Callable[..., tuple[str, ...]],
                *partials: Callable[..., Any]) -> Primitive:
    """An elementwise primitive: ``partials[k]`` gives ``d out / d input_k``."""
    return Primitive(name, impl, formulas, partials=partials)


def linear(name: str, impl: Callable[..., Any], formulas: str | Callable[..., tuple[str, ...]],
           linear_map: Callable[..., Any], transpose: Callable[..., Any]) -> Primitive:
    """A linear primitive (``formulas`` may be one text, the same for every input)."""
    if isinstance(formulas, str):
        text = formulas
        formulas = lambda out, *xs, **params: (text,) * len(xs)  # noqa: E731
    return Primitive(name, impl, formulas, linear=linear_map, transpose=transpose)


def records(primitive: Primitive, name: str, doc: str) -> Callable[..., Any]:
    """The function ``name`` that applies ``primitive`` (``doc`` states its derivative)."""

    def record(*args: Any) -> Any:
        return bind(primitive, *args)

    record.__name__, record.__qualname__, record.__doc__ = name, name, doc
    return record


add_p = elementwise("add", operator.add, lambda o, a, b: ("1", "1"),
                    lambda out, a, b: 1.0, lambda out, a, b: 1.0)
add = records(add_p, "add", "``a + b``, broadcasting. d/da = 1, d/db = 1.")
sub_p = elementwise("sub", operator.sub, lambda o, a, b: ("1", "-1"),
                    lambda out, a, b: 1.0, lambda out, a, b: -1.0)
subtract = records(sub_p, "subtract", "``a - b``, broadcasting. d/da = 1, d/db = -1.")
mul_p = elementwise("mul", operator.mul, lambda o, a, b: (b, a),
                    lambda out, a, b: b, lambda out, a, b: a)
multiply = records(mul_p, "multiply", "``a * b``, broadcasting. d/da = b, d/db = a.")
truediv_p = elementwise("truediv", lambda a, b: lib(a, b).true_divide(a, b),
                        lambda o, a, b: (f"1/{b}", f"-{o}/{b}"),
                        lambda out, a, b: divide(1.0, b), lambda out, a, b: divide(-out, b))
divide = records(truediv_p, "divide",
                 "``a / b``, broadcasting. d/da = 1/b, d/db = -a/b^2 = -out/b.")
neg_p = elementwise("neg", operator.neg, lambda o, a: ("-1",), lambda out, a: -1.0)
negative = records(neg_p, "negative", "``-a``. d/da = -1.")
integer_pow_p = elementwise(
    "integer_pow", lambda a, *, n: lib(a).power(a, n),
    lambda o, a, *, n: ("0" if n == 0 else "1" if n == 1 else f"{n}{a}" if n == 2
                        else f"{n}{a}^{n - 1}",),
    lambda out, a, *, n: 0.0 * a if n == 0 else n * a if n == 2 else n * power(a, n - 1))
pow_p = elementwise(  # d/db = a^b log a, with log 0 taken as 0 as JAX does (nan for a < 0)
    "pow", lambda a, b: lib(a, b).power(a, b),
    lambda o, a, b: (f"{b}*{a}^({b}-1)", f"{o}*log({a})"),
    lambda out, a, b: b * power(a, b - 1.0),
    lambda out, a, b: out * log(where(primal(a) == 0, 1.0, a)))
exp_p = elementwise("exp", lambda x: lib(x).exp(x), lambda o, x: (f"exp({x})",),
                    lambda out, x: out)
exp = records(exp_p, "exp", "Elementwise e^x. d/dx = e^x, the output itself.")
log_p = elementwise("log", lambda x: lib(x).log(x), lambda o, x: (f"1/{x}",),
                    lambda out, x: divide(1.0, x))
log = records(log_p, "log", "Elementwise natural logarithm. d/dx = 1/x.")
sin_p = elementwise("sin", lambda x: lib(x).sin(x), lambda o, x: (f"cos({x})",),
                    lambda out, x: cos(x))
sin = records(sin_p, "sin", "Elementwise sine. d/dx = cos x.")
cos_p = elementwise("cos", lambda x: lib(x).cos(x), lambda o, x: (f"-sin({x})",),
                    lambda out, x: -sin(x))
cos = records(cos_p, "cos", "Elementwise cosine. d/dx = -sin x.")
tanh_p = elementwise("tanh", lambda x: lib(x).tanh(x), lambda o, x: (f"1 - {o}^2",),
                     lambda out, x: (1.0 - out) * (1.0 + out))
tanh = records(tanh_p, "tanh", "Elementwise hyperbolic tangent. d/dx = 1 - tanh(x)^2.")
sqrt_p = elementwise("sqrt", lambda x: lib(x).sqrt(x), lambda o, x: (f"1/(2 {o})",),
                     lambda out, x: divide(0.5, out))
sqrt = records(sqrt_p, "sqrt", "Elementwise square root. d/dx = 1 / (2 sqrt x).")
abs_p = elementwise("abs", lambda x: lib(x).abs(x), lambda o, x: (f"sign({x})",),  # 1 at 0, as JAX
                    lambda out, x: sign(x) + (primal(x) == 0))
abs = records(abs_p, "abs",
              "Elementwise ``|x|``. d/dx = sign(x), taken as 1 at 0 as ``jax.grad`` does.")
maximum_p = elementwise("maximum", lambda a, b: lib(a, b).maximum(a, b),  # ties: 1/2 each, as JAX
                        lambda o, a, b: (f"[{a} > {b}]", f"[{b} > {a}]"),
                        lambda out, a, b: 0.5 * (1.0 + sign(primal(a) - primal(b))),
                        lambda out, a, b: 0.5 * (1.0 - sign(primal(a) - primal(b))))
maximum = records(maximum_p, "maximum", "Elementwise ``max(a, b)``, broadcasting. d/da = 1 where "
                  "a > b, 0 where a < b, 1/2 at a tie (as ``jax.grad`` of ``jnp.maximum``).")
where_p = elementwise("where",
                      lambda a, b, *, condition: lib(condition, a, b).where(condition, a, b),
                      lambda o, a, b, *, condition: ("[condition]", "[not condition]"),
                      lambda out, a, b, *, condition: where(condition, 1.0, 0.0),
                      lambda out, a, b, *, condition: where(condition, 0.0, 1.0))


def _expand(ct: Any, x: Any, axis: tuple[int, ...]) -> Any:
    """``ct`` with the summed ``axis`` put back as size 1, broadcast to the shape of ``x``."""
    kept = tuple(1 if i in axis else n for i, n in enumerate(shape(x)))
    return broadcast_to(reshape(ct, kept), shape(x))


def _matmul_transpose(k: int, ct: Any, a: Any, b: Any) -> Any:
    """``a_bar = out_bar @ b^T`` and ``b_bar = a^T @ out_bar``; outer products for vectors."""
    if k == 0:
        if len(shape(b)) == 1:
            return _outer(ct, b) if len(shape(a)) == 2 else ct * b
        return matmul(ct, transpose(b)) if len(shape(a)) == 2 else matmul(b, ct)
    if len(shape(a)) == 1:
        return _outer(a, ct) if len(shape(b)) == 2 else ct * a
    return matmul(transpose(a), ct) if len(shape(b)) == 2 else matmul(ct, a)


def _outer(u: Any, v: Any) -> Any:
    return reshape(u, (shape(u)[0], 1)) * reshape(v, (1, shape(v)[0]))


def _scatter_impl(ct: Any, *, key: tuple[Any, ...], shape: tuple[int, ...]) -> Any:
    if isinstance(ct, (np.ndarray, np.generic, float)):
        zeros = np.zeros(shape, np.result_type(ct))
        zeros[key] = ct
        return zeros
    return jnp.zeros(shape, jnp.result_type(ct)).at[key].set(ct)


sum_p = linear("sum", lambda x, *, axis: lib(x).sum(x, axis=axis) if shape(x) else x,
               "1 (copy back along the summed axes)",
               lambda k, t, x, *, axis: sum(t, axis),
               lambda k, ct, x, *, axis: _expand(ct, x, axis))
mean_p = linear("mean", lambda x, *, axis: lib(x).mean(x, axis=axis) if shape(x) else x,
                "1/n (copy back, divided by the count)",
                lambda k, t, x, *, axis: mean(t, axis),
                lambda k, ct, x, *, axis:
                    _expand(ct, x, axis) / math.prod(shape(x)[i] for i in axis))
reshape_p = linear("reshape", lambda x, *, shape: lib(x).reshape(x, shape), "reshape back",
                   lambda k, t, x, *, shape: reshape(t, shape),
                   lambda k, ct, x, **params: reshape(ct, shape(x)))
transpose_p = linear("transpose", lambda x, *, axes: lib(x).transpose(x, axes) if shape(x) else x,
                     "transpose back",
                     lambda k, t, x, *, axes: transpose(t, axes),
                     lambda k, ct, x, *, axes: transpose(ct, tuple(np.argsort(axes).tolist())))
broadcast_to_p = linear("broadcast_to", lambda x, *, shape: lib(x).broadcast_to(x, shape),
                        "1 (sum the copies)",
                        lambda k, t, x, *, shape: broadcast_to(t, shape),
                        lambda k, ct, x, *, shape: unbroadcast(ct, x))
matmul_p = linear("matmul", lambda a, b: lib(a, b).matmul(a, b),
                  lambda o, a, b: (f"{o}_bar @ {b}^T", f"{a}^T @ {o}_bar"),
                  lambda k, t, a, b: matmul(t, b) if k == 0 else matmul(a, t), _matmul_transpose)
getitem_p = linear("getitem", lambda x, *, key: x[key], "1 at the selected elements, 0 elsewhere",
                   lambda k, t, x, *, key: getitem(t, key),
                   lambda k, ct, x, *, key: scatter(ct, key, shape(x)))
scatter_p = linear("scatter", _scatter_impl, "1 at the selected elements",
                   lambda k, t, ct, *, key, shape: scatter(t, key, shape),
                   lambda k, ct, t, *, key, shape: getitem(ct, key))


# The functions that record them: on a tape value they record; on anything else they compute.


def power(a: Any, b: Any) -> Any:
    """``a ** b``. An integer ``b`` records ``integer_pow``: d/da = b a^(b-1). Otherwise
    ``pow``: d/da = b a^(b-1), d/db = a^b log a (0 where a == 0 and nan where a < 0,
    as JAX takes it)."""
    return bind(integer_pow_p, a, n=b) if type(b) is int else bind(pow_p, a, b)


def sign(x: Any) -> Any:
    """``sign(x)`` in {-1, 0, 1}: piecewise constant, so not recorded (zero gradient)."""
    x = primal(x)
    return lib(x).sign(x)


def relu(x: Any) -> Any:
    """``maximum(x, 0)``: d/dx = 1 for x > 0, 0 for x < 0, 1/2 at 0 (like ``jnp.maximum``)."""
    return maximum(x, 0.0)


def where(condition: Any, a: Any, b: Any) -> Any:
    """``a`` where ``condition`` holds, else ``b``. d/da = [condition], d/db = [not
    condition]; the condition itself is not differentiated."""
    return bind(where_p, a, b, condition=primal(condition))


def _axes(x: Any, axis: Axis) -> Axis:
    """``axis`` as a sorted tuple of non-negative axes for a tape value (``None``: all)."""
    if type(x) is not Var:
        return axis
    ndim = len(shape(x))
    axes = tuple(range(ndim)) if axis is None else (axis,) if isinstance(axis, int) else axis
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(f"axis {a} is out of bounds for an array of {ndim} dimensions")
    return tuple(sorted(a % ndim for a in axes))


def sum(x: Any, axis: Axis = None) -> Any:  # noqa: A001
    """Sum over ``axis`` (all if ``None``). Linear: d out/d x_i = 1, so its transpose
    copies the cotangent back along the summed axes."""
    return bind(sum_p, x, axis=_axes(x, axis))


def mean(x: Any, axis: Axis = None) -> Any:
    """Mean over ``axis`` (all if ``None``). Linear: d out/d x_i = 1/n for n averaged."""
    return bind(mean_p, x, axis=_axes(x, axis))


def reshape(x: Any, shape: int | tuple[int, ...]) -> Any:
    """The elements in a new ``shape`` (one entry may be -1). Linear; transpose: reshape back."""
    return bind(reshape_p, x, shape=(shape,) if isinstance(shape, int) else tuple(shape))


def transpose(x: Any, axes: tuple[int, ...] | None = None) -> Any:
    """Permute the axes (reverse if ``None``). Linear; transpose: the inverse permutation."""
    if type(x) is Var:
        ndim = x.ndim
        axes = tuple(reversed(range(ndim))) if axes is None else tuple(a % ndim for a in axes)
    return bind(transpose_p, x, axes=axes)


def broadcast_to(x: Any, shape: tuple[int, ...]) -> Any:
    """Copies of ``x`` filling ``shape``. Linear; its transpose sums the copies."""
    return bind(broadcast_to_p, x, shape=tuple(shape))


def matmul(a: Any, b: Any) -> Any:
    """Matrix product ``a @ b`` of vectors and matrices. Linear in each operand:
    ``a_bar = out_bar @ b^T``, ``b_bar = a^T @ out_bar``."""
    if type(a) is Var or type(b) is Var:
        for label, operand in (("a", a), ("b", b)):
            if len(shape(operand)) not in (1, 2):
                raise ShapeError(f"tape primitive 'matmul': operand {label} must be 1-D or 2-D, "
                                 f"got shape {shape(operand)}")
    return bind(matmul_p, a, b)


def getitem(x: Any, key: Any) -> Any:
    """``x[key]`` for integers, slices and tuples of them. Linear: its transpose puts the
    cotangent back at the selected places in zeros of ``x``'s shape (:func:`scatter`)."""
    key = key if isinstance(key, tuple) else (key,)
    x_shape = shape(x)
    if len(key) > len(x_shape):
        raise IndexError(f"tape indexing: {len(key)} indices for an array of shape {x_shape}")
    for k, (i, n) in enumerate(zip(key, x_shape, strict=False)):
        if type(i) is slice:
            if not all(s is None or type(s) is int for s in (i.start, i.stop, i.step)):
                raise TypeError(f"tape indexing: slice {i} must have integer bounds")
        elif type(i) is not int:
            raise TypeError(f"tape indexing takes integers, slices and tuples of them, got "
                            f"{type(i).__name__} at position {k} (no arrays, lists or None)")
        elif not -n <= i < n:  # JAX would clamp silently
            raise IndexError(f"tape indexing: index {i} is out of bounds for axis {k} of size {n}")
    return bind(getitem_p, x, key=key)


def scatter(ct: Any, key: tuple[Any, ...], shape: tuple[int, ...]) -> Any:
    """Zeros of ``shape`` with ``ct`` at ``[key]``: indexing's transpose (its own: indexing)."""
    return bind(scatter_p, ct, key=key, shape=shape)


PRIMITIVES: dict[str, Primitive] = {p.name: p for p in (
    add_p, sub_p, mul_p, truediv_p, neg_p, integer_pow_p, pow_p, exp_p, log_p, sin_p, cos_p,
    tanh_p, sqrt_p, abs_p, maximum_p, where_p, sum_p, mean_p, reshape_p, transpose_p,
    broadcast_to_p, matmul_p, getitem_p, scatter_p)}

# The recording functions, as jaxbackprop.numpy exports them.
FUNCTIONS: dict[str, Callable[..., Any]] = {f.__name__: f for f in (
    add, subtract, multiply, divide, negative, power, exp, log, sin, cos, tanh, sqrt, abs, sign,
    maximum, relu, where, sum, mean, reshape, transpose, broadcast_to, matmul)}
_NUMPY_NAMES = dict(FUNCTIONS, absolute=abs, true_divide=divide,
                    shape=lambda x: x.shape, ndim=lambda x: x.ndim)
_COMPARISONS = ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal")

SUPPORTED = ("operators + - * / ** @, unary -, abs(), indexing x[i, 1:3]; comparisons "
             f"(not differentiated); jaxbackprop.numpy: {', '.join(FUNCTIONS)}")
