"""The tape itself: recording primitive calls, then running them backwards.

A *tape* is a Wengert list. Every primitive call on a tape value (:class:`Var`)
appends one equation ``(out, primitive, inputs, residuals)`` in execution order:

    index  primitive  parents        residuals (inputs, output, parameters)
    3      mul        (0, 1)         (w=1.0, x=1.0), y_hat=1.0
    4      sub        (3, 2)         (1.0, 2.0),     s=-1.0
    5      integer_pow (4,)          (-1.0,), n=2    L=1.0

Execution order is already a topological order, so the backward pass is a plain loop
over ``equations[::-1]``: no recursion (a million-node chain is fine), no sort, one
deterministic order. Cotangents live in a list indexed by variable and accumulate out of
place (``ct[p] = ct[p] + g``), which handles fan-out. Each rule is written with
operators and :mod:`jaxbackprop.numpy`, so the whole tape traces under ``jax.jit``,
``jax.vmap`` and ``jax.grad``, and records onto an outer tape for higher order.

Nested tapes (``grad(grad(f))``) are kept apart by *level*: a tape opened inside
another has a higher level, and a primitive records on the highest-level tape among its
arguments, treating values of lower tapes as constants. Those constants are themselves
tape values of the outer tape, so the inner computation is recorded there too.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np


@dataclass(frozen=True, eq=False)
class Primitive:
    """An operation the tape knows, with its reverse-mode rule.

    ``impl(*inputs, **params)`` computes the output; ``vjp(ct, out, *inputs, **params)``
    returns one cotangent per input (``ct * d out / d input``, summed back to the
    input's shape). ``partials`` gives the elementwise local derivatives, and
    ``formulas(out_name, *input_names, **params)`` their formulas as text, for the
    walkthrough and the pictures; both are ``None`` for structural primitives
    (sum, reshape, matmul...), whose local derivative is a linear map, not a number.
    """

    name: str
    impl: Callable[..., Any]
    vjp: Callable[..., tuple[Any, ...]]
    partials: Callable[..., tuple[Any, ...]] | None = None
    formulas: Callable[..., tuple[str, ...]] | None = None

    def __repr__(self) -> str:
        return f"Primitive({self.name})"


class Equation(NamedTuple):
    """One recorded call: variable ``index`` = ``primitive(*inputs, **params)``.

    ``parents[i]`` is the tape index of input ``i``, or ``-1`` for a constant.
    """

    index: int
    primitive: Primitive
    parents: tuple[int, ...]
    inputs: tuple[Any, ...]
    out: Any
    params: dict[str, Any]


class Tape:
    """The equations of one ``vjp`` call, stored column by column. Lives only for that call.

    Inputs are variables ``0 .. num_inputs - 1``; equation ``i`` defines variable
    ``num_inputs + i``. The columns (``primitives``, ``parents``, ``inputs``, ``outs``,
    ``params``) hold no object that points back at a tape, so recording creates no
    reference cycles, and the long-lived tuples it does create hold only numbers, which
    Python's garbage collector stops tracking: its cost no longer grows with the tape.
    """

    __slots__ = ("level", "num_inputs", "num_vars", "primitives", "parents", "inputs", "outs",
                 "params", "names")

    def __init__(self, level: int) -> None:
        self.level = level
        self.num_inputs = 0
        self.num_vars = 0
        self.primitives: list[Primitive] = []
        self.parents: list[tuple[int, ...]] = []  # tape index of each input, -1 for constants
        self.inputs: list[tuple[Any, ...]] = []  # the inputs' values (residuals)
        self.outs: list[Any] = []  # the output's value (a residual too)
        self.params: list[dict[str, Any]] = []
        self.names: dict[int, str] = {}

    def new_var(self, value: Any) -> Var:
        """A fresh input variable. All inputs are created before the first equation."""
        if self.primitives:
            raise RuntimeError("Tape.new_var: inputs must be created before any equation")
        var = Var(value, self, self.num_vars)
        self.num_vars += 1
        self.num_inputs = self.num_vars
        return var

    def push(self, primitive: Primitive, parents: tuple[int, ...], inputs: tuple[Any, ...],
             out: Any, params: dict[str, Any]) -> Var:
        """Record one equation and return its output as a new variable."""
        index = self.num_vars
        self.num_vars = index + 1
        self.primitives.append(primitive)
        self.parents.append(parents)
        self.inputs.append(inputs)
        self.outs.append(out)
        self.params.append(params)
        return Var(out, self, index)

    @property
    def equations(self) -> list[Equation]:
        """The recorded equations, in execution order, as :class:`Equation` records."""
        first = self.num_inputs
        return [Equation(first + i, *row) for i, row in
                enumerate(zip(self.primitives, self.parents, self.inputs, self.outs, self.params))]


class Var:
    """A value being recorded on a tape: its primal ``value``, its ``tape``, its ``index``.

    Operators (``+ - * / ** @``, unary ``-``, ``abs``) record primitives; comparisons
    compare the primal values and are not differentiated. ``value`` may itself be a
    variable of an outer tape (higher-order derivatives) or a JAX tracer (under
    ``jit``/``vmap``/``grad``).
    """

    __slots__ = ("value", "tape", "index")
    __array_priority__ = 1000  # NumPy defers binary operators to us

    def __init__(self, value: Any, tape: Tape, index: int) -> None:
        self.value = value
        self.tape = tape
        self.index = index

    # The operators and array-like methods are attached in jaxbackprop.tape.primitives,
    # next to the rules they record.

    @property
    def shape(self) -> tuple[int, ...]:
        return np.shape(self.value)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def dtype(self) -> Any:
        value = self.value
        return value.dtype if hasattr(value, "dtype") else np.result_type(value)

    def __repr__(self) -> str:
        label = self.tape.names.get(self.index)
        named = f", name={label!r}" if label else ""
        return f"Var({self.value!r}{named}, level={self.tape.level})"

    def __float__(self) -> float:
        return float(self.value)

    def __bool__(self) -> bool:
        return bool(self.value)

    def __hash__(self) -> int:
        return id(self)


def name(value: Any, label: str) -> Any:
    """Give a tape value a display name (``s``, ``y_hat``); identity on anything else.

    Names only label the walkthrough and the pictures; they change no number.
    """
    if type(value) is Var:
        value.tape.names[value.index] = label
    return value


# ---------------------------------------------------------------------------------------
# Recording


def bind(primitive: Primitive, *args: Any, **params: Any) -> Any:
    """Apply ``primitive`` to ``args``, recording it on the innermost tape among them."""
    if len(args) == 1:
        return bind_unary(primitive, args[0], params)
    if len(args) == 2:
        return bind_binary(primitive, args[0], args[1], params)
    tape = None
    for a in args:
        if type(a) is Var and (tape is None or a.tape.level > tape.level):
            tape = a.tape
    if tape is None:  # no tape value: just compute
        return primitive.impl(*args, **params)
    inputs = tuple(a.value if type(a) is Var and a.tape is tape else a for a in args)
    parents = tuple(a.index if type(a) is Var and a.tape is tape else -1 for a in args)
    return tape.push(primitive, parents, inputs, _call(primitive, inputs, params), params)


def bind_unary(primitive: Primitive, a: Any, params: dict[str, Any]) -> Any:
    """:func:`bind` for one argument (the common case, written out for speed)."""
    if type(a) is not Var:
        return primitive.impl(a, **params)
    tape = a.tape
    value = a.value
    out = primitive.impl(value, **params)
    index = tape.num_vars  # Tape.push, inlined: this is the hot path of eager use
    tape.num_vars = index + 1
    tape.primitives.append(primitive)
    tape.parents.append((a.index,))
    tape.inputs.append((value,))
    tape.outs.append(out)
    tape.params.append(params)
    return Var(out, tape, index)


def bind_binary(primitive: Primitive, a: Any, b: Any, params: dict[str, Any]) -> Any:
    """:func:`bind` for two arguments (the common case, written out for speed)."""
    a_tape = a.tape if type(a) is Var else None
    b_tape = b.tape if type(b) is Var else None
    if a_tape is None or (b_tape is not None and b_tape.level > a_tape.level):
        tape = b_tape
        if tape is None:
            return primitive.impl(a, b, **params)
    else:
        tape = a_tape
    if a_tape is tape:
        a_value, a_parent = a.value, a.index
    else:
        a_value, a_parent = a, -1
    if b_tape is tape:
        b_value, b_parent = b.value, b.index
    else:
        b_value, b_parent = b, -1
    try:
        out = primitive.impl(a_value, b_value, **params)
    except (ValueError, TypeError) as error:
        raise _shape_error(primitive, (a_value, b_value), error) from None
    index = tape.num_vars  # Tape.push, inlined
    tape.num_vars = index + 1
    tape.primitives.append(primitive)
    tape.parents.append((a_parent, b_parent))
    tape.inputs.append((a_value, b_value))
    tape.outs.append(out)
    tape.params.append(params)
    return Var(out, tape, index)


def _call(primitive: Primitive, inputs: tuple[Any, ...], params: dict[str, Any]) -> Any:
    """``primitive.impl(*inputs)``, turning a shape clash into an error that names both."""
    try:
        return primitive.impl(*inputs, **params)
    except (ValueError, TypeError) as error:
        raise _shape_error(primitive, inputs, error) from None


def _shape_error(primitive: Primitive, inputs: tuple[Any, ...], error: Exception) -> Exception:
    if isinstance(error, ShapeError):
        return error
    shapes = " and ".join(str(np.shape(x)) for x in inputs)
    return ShapeError(f"tape primitive {primitive.name!r}: inputs of shapes {shapes} "
                      f"do not combine: {error}")


class ShapeError(ValueError):
    """A primitive was given inputs whose shapes do not fit together."""


# ---------------------------------------------------------------------------------------
# The backward pass


def backward(tape: Tape, out_index: int, seed: Any) -> list[Any]:
    """Cotangents of every variable: ``ct[v] = sum over uses of ct[out] * d out / d v``.

    Walks the equations once in reverse. ``None`` marks a variable the output does not
    depend on.
    """
    cts: list[Any] = [None] * tape.num_vars
    cts[out_index] = seed
    first = tape.num_inputs
    primitives, parents, inputs, outs, params = (
        tape.primitives, tape.parents, tape.inputs, tape.outs, tape.params)
    for i in range(out_index - first, -1, -1):  # equations after the output cannot matter
        ct = cts[first + i]
        if ct is None:
            continue
        input_cts = primitives[i].vjp(ct, outs[i], *inputs[i], **params[i])
        for parent, input_ct in zip(parents[i], input_cts):
            if parent >= 0:
                previous = cts[parent]
                cts[parent] = input_ct if previous is None else previous + input_ct
    return cts


class _Nesting(threading.local):
    depth = 0


_nesting = _Nesting()


class recording:
    """Context manager: open a new tape, one level above any tape already open."""

    def __enter__(self) -> Tape:
        _nesting.depth += 1
        return Tape(level=_nesting.depth)

    def __exit__(self, *exc: object) -> None:
        _nesting.depth -= 1
