"""A computational graph with its numbers: the picture the lecture draws, as data.

The lecture teaches backpropagation on a graph in three steps:

1. forward pass: every node's value (``y_hat = 1``, ``s = -1``, ``L = 1``);
2. local gradients: on every edge ``a -> b`` the partial ``db/da`` of the node's own
   function (``dL/ds = 2s = -2``, ``ds/dy_hat = 1``, ``dy_hat/dw = x = 1``);
3. backward pass: every value's adjoint ``dL/dv``, built by the chain rule from the
   local gradients (``dL/dy_hat = dL/ds * ds/dy_hat = -2``, ``dL/dw = -2``).

:class:`Graph` holds all three. It is built by :func:`jaxbackprop.lecture.linear_regression`
(each node differentiated by ``jax.grad``) and by :func:`jaxbackprop.tape.walkthrough`
(any function recorded on the hand-written tape). The CLI prints it with
:meth:`Graph.table`; :mod:`jaxbackprop.draw` draws it. Nothing here computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Role = Literal["parameter", "data", "intermediate"]
View = Literal["forward", "local", "backward"]
VIEWS: tuple[View, ...] = ("forward", "local", "backward")


@dataclass(frozen=True)
class Value:
    """A node holding a value.

    ``role`` is ``"parameter"`` for an input we differentiate with respect to (``w``),
    ``"data"`` for a fixed input (``x``, ``y``: the lecture's red edges, whose gradients
    we do not need), ``"intermediate"`` for everything computed.
    ``adjoint`` is ``dL/d(this value)`` after the backward pass.
    """

    name: str
    value: Any
    role: Role
    adjoint: Any = None


@dataclass(frozen=True)
class LocalGradient:
    """The partial ``d target / d source`` on one edge: its formula and its value.

    ``value`` is ``None`` where the local derivative is not an elementwise number (a
    sum, a reshape, a matrix product): then ``formula`` says what the rule does.
    """

    source: str
    target: str
    formula: str
    value: Any


@dataclass(frozen=True)
class Operation:
    """One node's function: ``output = primitive(*inputs)``, one local gradient per input."""

    output: str
    primitive: str
    inputs: tuple[str, ...]
    local_gradients: tuple[LocalGradient, ...]


@dataclass(frozen=True)
class Graph:
    """Values (inputs first, then in execution order), operations in execution order."""

    values: tuple[Value, ...]
    operations: tuple[Operation, ...]
    output: str

    def value(self, name: str) -> Value:
        """The value called ``name``; ``KeyError`` listing the names if there is none."""
        for v in self.values:
            if v.name == name:
                return v
        raise KeyError(f"no value named {name!r}; the graph has {[v.name for v in self.values]}")

    def operation(self, output: str) -> Operation:
        """The operation that computes ``output``."""
        for op in self.operations:
            if op.output == output:
                return op
        raise KeyError(f"no operation computes {output!r}")

    def table(self, view: View = "backward") -> str:
        """The graph as aligned text, one block per step of the lecture up to ``view``."""
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
        blocks = [_forward_block(self)]
        if view in ("local", "backward"):
            blocks.append(_local_block(self))
        if view == "backward":
            blocks.append(_backward_block(self))
        return "\n\n".join(blocks)


def format_number(value: Any, digits: int = 4) -> str:
    """A scalar as the lecture prints it (``1``, ``-2``, ``-7.84``); arrays in full."""
    if value is None:
        return "n/a"
    array = np.asarray(value)
    if array.ndim == 0:
        text = f"{float(array):.{digits}f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    return np.array2string(array, precision=digits, separator=", ")


def _aligned(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in rows]


def _forward_block(graph: Graph) -> str:
    rows = []
    for v in graph.values:
        if v.role != "intermediate":
            rows.append((v.name, "=", "(input" + (", fixed data)" if v.role == "data" else ")"), format_number(v.value)))
    for op in graph.operations:
        rows.append((op.output, "=", f"{op.primitive}({', '.join(op.inputs)})", "= " + format_number(graph.value(op.output).value)))
    return "1. Forward pass: compute the loss\n" + "\n".join("   " + line for line in _aligned(rows))


def _local_block(graph: Graph) -> str:
    rows = []
    for op in graph.operations:
        for lg in op.local_gradients:
            shown = "" if lg.value is None else "= " + format_number(lg.value)
            rows.append((f"d{lg.target}/d{lg.source}", "=", lg.formula, shown))
    return "2. Local gradients at each node\n" + "\n".join("   " + line for line in _aligned(rows))


def _backward_block(graph: Graph) -> str:
    uses: dict[str, int] = {}
    for op in graph.operations:
        for lg in op.local_gradients:
            uses[lg.source] = uses.get(lg.source, 0) + 1
    rows = [(f"d{graph.output}/d{graph.output}", "=", "1", "")]
    for op in reversed(graph.operations):
        target = graph.value(op.output)
        for lg in op.local_gradients:
            source = graph.value(lg.source)
            note = "   (not needed: fixed data)" if source.role == "data" else ""
            chain = f"d{graph.output}/d{lg.target} * d{lg.target}/d{lg.source}"
            if uses[lg.source] == 1:  # one path back: this product is the whole adjoint
                rows.append((f"d{graph.output}/d{lg.source}", "=", chain,
                             "= " + format_number(source.adjoint) + note))
            else:  # fan-out: each use adds its share (the chain rule sums over paths)
                share = "" if lg.value is None else "= " + format_number(target.adjoint * lg.value)
                rows.append((f"d{graph.output}/d{lg.source}", "+=", chain, share + note))
    for name, count in uses.items():
        if count > 1:
            rows.append((f"d{graph.output}/d{name}", "=", f"the sum of its {count} shares",
                         "= " + format_number(graph.value(name).adjoint)))
    return "3. Backward pass: the chain rule, from the loss back to the inputs\n" + "\n".join(
        "   " + line for line in _aligned(rows)
    )
