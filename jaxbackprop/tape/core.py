"""The tape itself: recording primitive calls, then running them backwards.

A *tape* is a Wengert list. Every primitive call on a tape value (:class:`Var`)
appends one equation ``(out, primitive, inputs, residuals)`` in execution order:

    index  primitive    parents   inputs (residuals)   out
    3      mul          (0, 1)    (w=1.0, x=1.0)       y_hat=1.0
    4      sub          (3, 2)    (1.0, 2.0)           s=-1.0
    5      integer_pow  (4,)      (-1.0,), n=2         L=1.0

(:class:`Tape` stores these rows column by column; ``Tape.equations`` reads them back.)
Execution order is already a topological order, so the backward pass is a plain loop
over the equations in reverse: no recursion (a million-node chain is fine), no sort, one
deterministic order. For each input that is a variable it applies that input's rule
(the chain rule along one edge); cotangents live in a list indexed by variable and
accumulate out of place (``ct[p] = ct[p] + g``), which handles fan-out. Each rule is
written with operators and :mod:`jaxbackprop.numpy`, so the whole tape traces under
``jax.jit``, ``jax.vmap`` and ``jax.grad``, and records onto an outer tape for higher
order.

Nested tapes (``grad(grad(f))``) are kept apart by *level*: a tape opened inside
another has a higher level, and a primitive records on the highest-level tape among its
arguments, treating values of lower tapes as constants. Those constants are themselves
tape values of the outer tape: :func:`bind` applies the primitive to them again, one
level out, so the outer tape records the same computation.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np


@dataclass(frozen=True, eq=False)
class Primitive:
    """An operation the tape knows, with one reverse-mode rule per input.

    A primitive takes one input or two (``where`` takes its condition as a parameter):
    the tape stores an equation's inputs in two pairs of columns, ``a`` and ``b``.
    ``impl(*inputs, **params)`` computes the output from plain numbers or arrays (never
    tape values: :func:`bind` unwraps them). ``vjps[k](ct, out, *inputs, **params)`` is
    input ``k``'s cotangent, ``ct * d out / d input_k`` summed back to that input's
    shape: the chain rule along one edge of the graph. The backward pass calls it only
    for inputs that are variables, so no work is spent on a constant's cotangent.
    ``derivative`` states the local derivatives. For the walkthrough and the pictures,
    ``partials[k](out, *inputs, **params)`` is the elementwise local derivative
    ``d out / d input_k`` (``None`` for structural primitives: sum, reshape, matmul...,
    whose local derivative is a linear map, not a number) and
    ``formulas(out_name, *input_names, **params)`` gives the partials as text.
    """

    name: str
    impl: Callable[..., Any]
    vjps: tuple[Callable[..., Any], ...]
    derivative: str
    partials: tuple[Callable[..., Any], ...] | None
    formulas: Callable[..., tuple[str, ...]]

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
    ``num_inputs + i``. Every primitive takes one input ``a`` or two, ``a`` and ``b``, so
    an equation's inputs are four flat columns rather than a tuple of parents and a tuple
    of values: a long tape then keeps no container per equation alive, only the numbers
    themselves, which saves half its memory and leaves nothing for Python's garbage
    collector to scan (a tuple is tracked by it until a collection finds it holds only
    numbers). For the same reason the columns hold no object that points back at a tape,
    so recording creates no reference cycles.
    """

    __slots__ = ("level", "num_inputs", "num_vars", "primitives", "a_parents", "a_values",
                 "b_parents", "b_values", "outs", "params", "names")

    def __init__(self, level: int) -> None:
        self.level = level
        self.num_inputs = 0
        self.num_vars = 0
        self.primitives: list[Primitive] = []
        self.a_parents: list[int] = []  # tape index of input a, or -1 for a constant
        self.a_values: list[Any] = []  # input a's value (a residual)
        self.b_parents: list[int] = []  # the same for input b; -1 if the primitive is unary
        self.b_values: list[Any] = []  # None if the primitive is unary
        self.outs: list[Any] = []  # the output's value (a residual too)
        self.params: list[dict[str, Any] | None] = []  # None: the primitive takes none
        self.names: dict[int, str] = {}

    def new_var(self, value: Any) -> Var:
        """A fresh input variable. All inputs are created before the first equation."""
        if self.primitives:
            raise RuntimeError("Tape.new_var: inputs must be created before any equation")
        var = Var(value, self, self.num_vars)
        self.num_vars += 1
        self.num_inputs = self.num_vars
        return var

    def push(self, primitive: Primitive, a_parent: int, a: Any, b_parent: int, b: Any,
             out: Any, params: dict[str, Any] | None) -> Var:
        """Record ``out = primitive(a, b, **params)`` (``b_parent=-1, b=None`` for a unary
        primitive) and return ``out`` as a new variable."""
        index = self.num_vars
        self.num_vars = index + 1
        self.primitives.append(primitive)
        self.a_parents.append(a_parent)
        self.a_values.append(a)
        self.b_parents.append(b_parent)
        self.b_values.append(b)
        self.outs.append(out)
        self.params.append(params)
        return Var(out, self, index)

    @property
    def equations(self) -> list[Equation]:
        """The recorded equations, in execution order, as :class:`Equation` records."""
        first = self.num_inputs
        rows = zip(self.primitives, self.a_parents, self.a_values, self.b_parents,
                   self.b_values, self.outs, self.params)
        equations = []
        for i, (prim, a_parent, a, b_parent, b, out, params) in enumerate(rows):
            unary = len(prim.vjps) == 1  # one rule per input
            parents, inputs = ((a_parent,), (a,)) if unary else ((a_parent, b_parent), (a, b))
            equations.append(Equation(first + i, prim, parents, inputs, out, params or {}))
        return equations


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
    """Apply ``primitive`` to ``args``, recording it on the innermost tape among them.

    Arguments of that tape enter as their values; anything else (numbers, arrays, values
    of outer tapes) enters as a constant. Applying the primitive to those inputs is
    itself a ``bind``, so an outer tape records it too (higher order).
    """
    tape = None
    for a in args:
        if type(a) is Var and (tape is None or a.tape.level > tape.level):
            tape = a.tape
    if tape is None:  # no tape value: just compute
        try:
            return primitive.impl(*args, **params)
        except (ValueError, TypeError) as error:
            raise _shape_error(primitive, args, error) from None
    _check_same_level(primitive, tape, args)
    if len(args) != len(primitive.vjps):
        raise TypeError(f"tape primitive {primitive.name!r} takes {len(primitive.vjps)} "
                        f"input(s), got {len(args)}")
    inputs = [a.value if type(a) is Var and a.tape is tape else a for a in args]
    parents = [a.index if type(a) is Var and a.tape is tape else -1 for a in args]
    out = bind(primitive, *inputs, **params)
    if len(args) == 1:  # a unary primitive: no input b
        parents.append(-1)
        inputs.append(None)
    return tape.push(primitive, parents[0], inputs[0], parents[1], inputs[1], out, params or None)


def unary_op(primitive: Primitive) -> Callable[[Any], Any]:
    """The function ``x -> primitive(x)`` for a primitive without parameters.

    It is :func:`bind` written out for one argument: the hot path of eager use.
    """
    impl = primitive.impl

    def apply(x: Any) -> Any:
        if type(x) is not Var:
            return impl(x)
        value = x.value
        out = apply(value) if type(value) is Var else impl(value)
        return x.tape.push(primitive, x.index, value, -1, None, out, None)

    return apply


def binary_op(primitive: Primitive) -> Callable[[Any, Any], Any]:
    """The function ``(a, b) -> primitive(a, b)`` for a primitive without parameters.

    It is :func:`bind` written out for two arguments of at most one tape: the hot path of
    eager use. Arguments of two different tapes take the general path.
    """
    impl = primitive.impl

    def apply(a: Any, b: Any) -> Any:
        tape = None
        a_parent = b_parent = -1
        a_value, b_value = a, b
        if type(a) is Var:
            tape = a.tape
            if type(b) is not Var:
                a_parent, a_value = a.index, a.value
            elif b.tape is tape:
                a_parent, a_value, b_parent, b_value = a.index, a.value, b.index, b.value
            else:
                return bind(primitive, a, b)  # values of two tapes (higher order)
        elif type(b) is Var:
            tape = b.tape
            b_parent, b_value = b.index, b.value
        if type(a_value) is Var or type(b_value) is Var:  # values of an outer tape
            out = apply(a_value, b_value)  # records there too
        else:
            try:
                out = impl(a_value, b_value)
            except (ValueError, TypeError) as error:
                raise _shape_error(primitive, (a_value, b_value), error) from None
        if tape is None:  # no tape value: just compute
            return out
        return tape.push(primitive, a_parent, a_value, b_parent, b_value, out, None)

    return apply


def _shape_error(primitive: Primitive, inputs: tuple[Any, ...], error: Exception) -> Exception:
    """A :class:`ShapeError` naming the primitive and every input's shape, if ``error``
    is about shapes (NumPy raises ``ValueError``, JAX a ``TypeError`` that says "shape");
    else ``error`` itself (a string among the inputs, say)."""
    about_shapes = isinstance(error, ValueError) or "shape" in str(error)
    if isinstance(error, ShapeError) or not about_shapes:
        return error
    shapes = [np.shape(x) for x in inputs]
    return ShapeError(f"tape primitive {primitive.name!r}: inputs of shapes "
                      f"{' and '.join(map(str, shapes))} do not combine: {error}")


def _check_same_level(primitive: Primitive, tape: Tape, args: tuple[Any, ...]) -> None:
    """Refuse a value of another tape at the same level: it escaped the call that made it."""
    for a in args:
        if type(a) is Var and a.tape is not tape and a.tape.level == tape.level:
            raise RuntimeError(
                f"tape primitive {primitive.name!r}: its inputs come from two different tapes "
                "of the same nesting level. A tape value escaped the function that recorded "
                "it (kept in a global or a closure after its grad/vjp call returned); "
                "pass values in as arguments instead.")


class ShapeError(ValueError):
    """A primitive was given inputs whose shapes do not fit together."""


# ---------------------------------------------------------------------------------------
# The backward pass


def backward(tape: Tape, out_index: int, seed: Any, *,
             keep_intermediate: bool = False) -> list[Any]:
    """Cotangents of the variables: ``ct[v] = sum over uses of ct[out] * d out / d v``.

    Walks the equations once in reverse. ``None`` marks a variable the output does not
    depend on. An equation's cotangent is complete once the loop reaches it (its uses all
    come later), and is dropped as soon as it has been passed on to its inputs, so the
    list never holds every cotangent of a long tape at once; only the inputs' remain,
    unless ``keep_intermediate`` asks for all of them (the walkthrough shows them).
    """
    cts: list[Any] = [None] * tape.num_vars
    cts[out_index] = seed
    first = tape.num_inputs
    primitives, outs, params = tape.primitives, tape.outs, tape.params
    a_parents, a_values, b_parents, b_values = (
        tape.a_parents, tape.a_values, tape.b_parents, tape.b_values)
    # This loop runs once per node, so it calls each rule with its inputs spelled out
    # (a call through ``*args`` costs twice as much) and repeats the step for input b
    # rather than loop over the two inputs.
    for i in range(out_index - first, -1, -1):  # equations after the output cannot matter
        ct = cts[first + i]
        if ct is None:
            continue
        if not keep_intermediate:
            cts[first + i] = None
        rules, out, a, b, p = primitives[i].vjps, outs[i], a_values[i], b_values[i], params[i]
        unary = len(rules) == 1  # one rule per input
        parent = a_parents[i]
        if parent >= 0:  # a variable; a constant needs no cotangent
            if p is None:
                g = rules[0](ct, out, a) if unary else rules[0](ct, out, a, b)
            else:  # parameters (sum's axis, integer_pow's n...)
                g = rules[0](ct, out, a, **p) if unary else rules[0](ct, out, a, b, **p)
            previous = cts[parent]
            cts[parent] = g if previous is None else previous + g
        parent = b_parents[i]
        if parent >= 0:  # (always -1 for a unary primitive)
            g = rules[1](ct, out, a, b) if p is None else rules[1](ct, out, a, b, **p)
            previous = cts[parent]
            cts[parent] = g if previous is None else previous + g
    return cts


class _Nesting(threading.local):
    depth = 0


_nesting = _Nesting()


class recording:
    """Context manager: open a new tape, one level above any tape already open.

    On the way out it turns JAX's refusal of a tape value (a ``jax.numpy`` function
    called on one) into an error that says what to use instead.
    """

    def __enter__(self) -> Tape:
        _nesting.depth += 1
        return Tape(level=_nesting.depth)

    def __exit__(self, kind: type | None, error: BaseException | None, traceback: Any) -> None:
        _nesting.depth -= 1
        if isinstance(error, TypeError) and str(Var) in str(error):
            from jaxbackprop.tape.primitives import unsupported  # (it imports this module)

            jax_said = str(error).splitlines()[0]
            raise unsupported("A jax.numpy or jax.lax function applied to a tape value",
                              "Use jaxbackprop.numpy instead: its functions record on the tape "
                              f"and call jax.numpy otherwise. (JAX said: {jax_said})") from None
