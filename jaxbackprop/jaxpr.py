"""``jax.make_jaxpr(jax.grad(f))`` beside the hand-written tape, row by row.

``jax.grad`` is built from a JVP, partially evaluated, then transposed; its jaxpr reads
in the lecture's three steps, and so does the tape's walkthrough
(:func:`jaxbackprop.tape.walkthrough`). :func:`align` pairs them:

1. forward pass: each tape equation beside the jaxpr equation that computes the same
   value (matched by primitive and operands: ``y_hat = mul(w, x)`` beside
   ``d:f32[] = mul a b``);
2. local gradients: each equation's local partials beside the jaxpr's *residuals*, the
   numbers the JVP keeps for the backward pass (``dL/ds = 2s`` beside
   ``f:f32[] = mul 2.0:f32[] e``);
3. backward pass: the chain rule, edge by edge from the loss back, beside the
   transposed equations (``dL/dw = dL/dy_hat * dy_hat/dw`` beside ``h:f32[] = mul g b``).

Every jaxpr equation is attributed to one tape equation, and the attribution keeps
JAX's order, so the jaxpr column is the jaxpr as JAX wrote it, top to bottom, with
blank rows where one side has nothing to match (``ds/dy_hat = 1`` needs no equation
in JAX: a subtraction transposes to the identity). Within one equation, the two columns
share rows only when the tape has one line there; an equation's two partials are listed
before JAX's lines for them, which may come in another order. How a jaxpr equation is
attributed:

* forward: an equation whose primitive and operands match the next tape equation;
* residual: any other equation before the backward part, to the latest matched
  forward equation (the JVP emits residuals right after their primal);
* transposed (``transpose`` in its name stack): to the equation whose residual it
  reads; else, if it reads a forward value, to the equation with the same primitive that
  takes that value (``mul g b`` multiplies by ``x``: ``y_hat = mul(w, x)``), else to the
  equation that made it; else to the equation it transposes (``neg`` for ``sub``, ``div``
  for ``truediv``, ``broadcast_in_dim`` for ``sum``: :data:`TRANSPOSE_OF`); else (an
  ``add_any`` summing cotangents) to the equation at hand. Never to a later equation
  than the previous transposed one: the transpose runs the equations backwards.

The jaxpr is printed one equation a line in JAX's notation (``name:type = prim[params]
operands``, parameters that are ``None`` left out), names assigned as JAX assigns them
(``a, b, ..., z, ba, ...``, ``_`` for an unused output). Nothing here prints;
:func:`side_by_side` returns text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jax
import numpy as np
from jax.extend.core import ClosedJaxpr, DropVar, JaxprEqn
from jax.extend.core import Literal as JaxLiteral

from jaxbackprop._dtypes import promote_integer
from jaxbackprop.graph import Graph, Operation, format_number, format_value, partial_label
from jaxbackprop.tape.walkthrough import walkthrough

Step = Literal["forward", "local", "backward"]
STEP_TITLES: dict[Step, str] = {
    "forward": "1. forward pass",
    "local": "2. local gradients (JAX: residuals kept for the backward pass)",
    "backward": "3. backward pass (JAX: the transposed equations)",
}

# The tape's primitive names where JAX's differ.
JAX_NAMES: dict[str, str] = {
    "truediv": "div", "maximum": "max", "where": "select_n", "sum": "reduce_sum",
    "broadcast_to": "broadcast_in_dim", "matmul": "dot_general",
}


def _jax_name(op: Operation) -> str:
    """JAX's name for the tape operation's primitive, without the parameters the
    walkthrough shows (``integer_pow[n=2]`` is JAX's ``integer_pow[y=2]``)."""
    name = op.primitive.split("[", 1)[0]
    return JAX_NAMES.get(name, name)


@dataclass(frozen=True)
class Row:
    """One line of the side-by-side: the step, the tape's text, the jaxpr's text."""

    step: Step
    tape: str
    jaxpr: str


def _var_name(index: int) -> str:
    """JAX's names for variables: ``a .. z``, then ``ba, bb, ...`` (base 26, digits a-z)."""
    digits = []
    while True:
        index, digit = divmod(index, 26)
        digits.append(chr(ord("a") + digit))
        if index == 0:
            return "".join(reversed(digits))


class _Printer:
    """Names a jaxpr's variables as JAX does and prints its equations with those names.

    Variables get ``a, b, c, ...`` in order of definition; an output nothing reads is
    printed ``_`` and takes no name.
    """

    def __init__(self, closed: ClosedJaxpr) -> None:
        jaxpr = closed.jaxpr
        self.read = {v for eqn in jaxpr.eqns for v in eqn.invars if not isinstance(v, JaxLiteral)}
        self.read.update(v for v in jaxpr.outvars if not isinstance(v, JaxLiteral))
        self.names: dict[Any, str] = {}
        for v in list(jaxpr.constvars) + list(jaxpr.invars):
            self.names[v] = _var_name(len(self.names))
        self.lines = [self._equation(eqn) for eqn in jaxpr.eqns]

    def operand(self, v: Any) -> str:
        if isinstance(v, JaxLiteral):
            value = np.asarray(v.val)
            shown = repr(value.item()) if value.ndim == 0 else np.array2string(value, separator=",")
            return f"{shown}:{_type(v)}"
        return self.names[v]

    def _equation(self, eqn: JaxprEqn) -> str:
        outs = []
        for v in eqn.outvars:
            if isinstance(v, DropVar) or v not in self.read:
                outs.append(f"_:{_type(v)}")
            else:
                self.names[v] = _var_name(len(self.names))
                outs.append(f"{self.names[v]}:{_type(v)}")
        params = " ".join(f"{k}={_param(p)}" for k, p in eqn.params.items() if p is not None)
        prim = eqn.primitive.name + (f"[{params}]" if params else "")
        return f"{' '.join(outs)} = {' '.join([prim] + [self.operand(v) for v in eqn.invars])}"


def _type(v: Any) -> str:
    return v.aval.str_short(short_dtypes=True)


def _param(value: Any) -> str:
    return "{...}" if isinstance(value, ClosedJaxpr) or hasattr(value, "eqns") else str(value)


def _is_transposed(eqn: JaxprEqn) -> bool:
    return "transpose" in str(getattr(eqn.source_info, "name_stack", ""))


def _matches(eqn: JaxprEqn, op: Operation, tape_name: dict[Any, str]) -> bool:
    """Does ``eqn`` compute the tape's ``op``: same primitive, same operands?"""
    if _jax_name(op) != eqn.primitive.name:
        return False
    if len(eqn.invars) != len(op.inputs):
        return False
    for v, name in zip(eqn.invars, op.inputs, strict=True):
        if isinstance(v, JaxLiteral):
            if format_number(v.val) != name:
                return False
        elif tape_name.get(v) != name:
            return False
    return True


# A linear primitive that appears only in the backward pass, and the tape operations
# whose transpose it is (``neg`` is how JAX transposes ``a - b`` with respect to ``b``).
TRANSPOSE_OF: dict[str, tuple[str, ...]] = {
    "neg": ("sub", "neg"), "div": ("truediv",), "broadcast_in_dim": ("sum", "mean"),
    "reduce_sum": ("broadcast_to",), "dot_general": ("matmul",), "transpose": ("transpose",),
    "reshape": ("reshape",), "select_n": ("where", "maximum"),
}


@dataclass
class _Attribution:
    """Which jaxpr equations (by index) belong to each tape operation, in each step."""

    forward: dict[int, list[int]]
    local: dict[int, list[int]]
    backward: dict[int, list[int]]
    tape_name: dict[Any, str]  # jaxpr variable -> the tape's name for the same value


def _attribute(closed: ClosedJaxpr, graph: Graph, n_args: int) -> _Attribution:
    ops = graph.operations
    found = _Attribution({i: [] for i in range(len(ops))}, {i: [] for i in range(len(ops))},
                         {i: [] for i in range(len(ops))},
                         {v: graph.values[i].name
                          for i, v in enumerate(closed.jaxpr.invars[:n_args])})
    residual_of: dict[Any, int] = {}  # a residual -> the operation whose JVP made it
    producer: dict[str, int] = {op.output: i for i, op in enumerate(ops)}
    matched, current = -1, len(ops) - 1
    for k, eqn in enumerate(closed.jaxpr.eqns):
        if _is_transposed(eqn):
            candidate = _transposed_owner(eqn, residual_of, producer, found.tape_name, ops, current)
            current = min(candidate, current)
            found.backward[current].append(k)
        elif matched + 1 < len(ops) and _matches(eqn, ops[matched + 1], found.tape_name):
            matched += 1
            found.forward[matched].append(k)
            found.tape_name.update((v, ops[matched].output) for v in eqn.outvars)
        else:
            found.local[max(matched, 0)].append(k)
            residual_of.update((v, max(matched, 0)) for v in eqn.outvars)
    return found


def _transposed_owner(eqn: JaxprEqn, residual_of: dict[Any, int], producer: dict[str, int],
                      tape_name: dict[Any, str], ops: Sequence[Operation], current: int) -> int:
    """The tape operation a transposed equation belongs to, not after ``current``."""
    reads = [v for v in eqn.invars if not isinstance(v, JaxLiteral)]
    for v in reads:  # a residual: the operation whose JVP kept it
        if v in residual_of:
            return residual_of[v]
    earlier = range(current, -1, -1)
    for v in reads:  # a forward value: the operation that multiplies by it, else made it
        if v in tape_name:
            name = tape_name[v]
            same = [i for i in earlier if name in ops[i].inputs
                    and _jax_name(ops[i]) == eqn.primitive.name]
            if same:
                return same[0]
            if name in producer and producer[name] <= current:
                return producer[name]
            users = [i for i in earlier if name in ops[i].inputs]
            if users:
                return users[0]
    for i in earlier:  # reads only cotangents: the operation it transposes
        if ops[i].primitive in TRANSPOSE_OF.get(eqn.primitive.name, ()):
            return i
    return current  # bookkeeping such as add_any: stays with the operation at hand


@dataclass(frozen=True)
class Alignment:
    """The side-by-side as data: its rows, and the jaxpr's names for the tape's values."""

    rows: tuple[Row, ...]
    names: dict[str, str]  # jaxpr variable name -> tape name (``"a": "w"``, ``"d": "y_hat"``)


def align(f: Callable[..., Any], *args: Any, argnums: int | Sequence[int] = 0) -> Alignment:
    """Pair the tape's walkthrough of ``f(*args)`` with ``jax.make_jaxpr(jax.grad(f))``.

    ``argnums`` picks the parameters, as in ``jax.grad``; each argument is one array.
    """
    args = tuple(promote_integer(a) for a in args)
    graph = walkthrough(f, *args, argnums=argnums)
    closed = jax.make_jaxpr(jax.grad(f, argnums=argnums))(*args)
    found = _attribute(closed, graph, len(args))
    printer = _Printer(closed)
    lines = printer.lines
    ops = graph.operations
    rows: list[Row] = []
    for i, op in enumerate(ops):
        rows += _zip("forward", [_forward_text(graph, op)], [lines[k] for k in found.forward[i]])
    for i, op in enumerate(ops):
        rows += _zip("local", [partial_label(edge) for edge in op.local_gradients],
                     [lines[k] for k in found.local[i]])
    rows.append(Row("backward", f"d{graph.output}/d{graph.output} = 1", ""))
    for i in range(len(ops) - 1, -1, -1):
        rows += _zip("backward", _backward_texts(graph, ops[i]),
                     [lines[k] for k in found.backward[i]])
    outs = " ".join(printer.operand(v) for v in closed.jaxpr.outvars)
    rows.append(Row("backward", "", f"in ({outs})"))
    names = {printer.names[v]: name for v, name in found.tape_name.items() if v in printer.names}
    return Alignment(tuple(rows), names)


def _zip(step: Step, left: list[str], right: list[str]) -> list[Row]:
    """One equation's rows: side by side when the tape has one line there; two or more (an
    equation's inputs) are listed first, then JAX's lines, because JAX may take the inputs
    in another order or in several lines each (pairing them by position would be wrong)."""
    if len(left) > 1 and right:
        return [Row(step, text, "") for text in left] + [Row(step, "", line) for line in right]
    count = max(len(left), len(right))
    left, right = left + [""] * (count - len(left)), right + [""] * (count - len(right))
    return [Row(step, a, b) for a, b in zip(left, right, strict=True)]


def _forward_text(graph: Graph, op: Operation) -> str:
    value = format_value(graph.value(op.output).value)
    return f"{op.output} = {op.primitive}({', '.join(op.inputs)}) = {value}"


def _backward_texts(graph: Graph, op: Operation) -> list[str]:
    """``dL/d in += dL/d out * d out/d in = contribution`` for each input that is not data."""
    out = graph.output
    adjoint = graph.value(op.output).adjoint
    texts = []
    for edge in op.local_gradients:
        if graph.value(edge.source).role == "data":
            continue  # jax.grad with argnums does not compute what training does not need
        shown = "" if edge.value is None else \
            f" = {format_value(np.asarray(adjoint) * np.asarray(edge.value))}"
        texts.append(f"d{out}/d{edge.source} += d{out}/d{edge.target} * "
                     f"d{edge.target}/d{edge.source}{shown}")
    return texts


def side_by_side(f: Callable[..., Any], *args: Any, argnums: int | Sequence[int] = 0) -> str:
    """The tape's three steps (left) beside ``jax.make_jaxpr(jax.grad(f, argnums))(*args)``
    (right), with a legend from the jaxpr's variable names to the tape's."""
    alignment = align(f, *args, argnums=argnums)
    legend = ", ".join(f"{jaxpr_name} = {tape_name}"
                       for jaxpr_name, tape_name in alignment.names.items())
    width = max(len("hand-written tape"), *(len(row.tape) for row in alignment.rows)) + 3
    title = f"jax.make_jaxpr(jax.grad({getattr(f, '__name__', 'f')}))"
    out = [f"{'hand-written tape'.ljust(width)}{title}", f"{'':{width}}jaxpr names: {legend}"]
    step = None
    for row in alignment.rows:
        if row.step != step:
            step = row.step
            out.append(f"-- {STEP_TITLES[step]} ".ljust(width + len(title), "-"))
        out.append((row.tape.ljust(width) + row.jaxpr).rstrip())
    return "\n".join(out)
