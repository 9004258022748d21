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
:meth:`Graph.table`; :mod:`jaxbackprop.draw` draws it (as DOT, SVG, PNG, or a page that
steps through the three steps), and so does Jupyter: a ``Graph`` shows itself as that page
(``_repr_html_``), as the static SVG (``_repr_svg_``) or, without a renderer, as its table.
Nothing here computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Role = Literal["parameter", "data", "intermediate"]
View = Literal["forward", "local", "backward"]
VIEWS: tuple[View, ...] = ("forward", "local", "backward")
LARGEST_SHOWN = 6  # in pictures, arrays with more elements are shown as their shape


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

    def uses(self) -> dict[str, int]:
        """How many edges leave each value (each a path back: the chain rule sums them)."""
        counts = {v.name: 0 for v in self.values}
        for op in self.operations:
            for edge in op.local_gradients:
                counts[edge.source] += 1
        return counts

    def __repr__(self) -> str:
        names = ", ".join(v.name for v in self.values)
        return (f"Graph({len(self.values)} values: {_shortened(names)}; "
                f"{len(self.operations)} operations; output {self.output!r})")

    # Rich display (Jupyter, IPython): the stepping page, else the static SVG, else the
    # table. The drawing lives in jaxbackprop.draw, imported here on use only: a Graph is
    # data and must not need the draw extra.

    def _repr_html_(self) -> str:
        """The stepping page in an ``<iframe>`` (its keys and ids stay inside it); without
        a renderer or for a graph too large to step, the table as ``<pre>``."""
        import html as html_escape

        try:
            from jaxbackprop import draw

            return draw.html(self, embed=True)
        except Exception as error:  # a display hook shows the table and why, never raises
            return (f"<pre>{html_escape.escape(self.table())}</pre>"
                    f"<p><i>{html_escape.escape(str(error))}</i></p>")

    def _repr_svg_(self) -> str | None:
        """The static backward view as SVG; ``None`` (text is shown) without a renderer."""
        try:
            from jaxbackprop import draw

            return draw.svg(self)
        except Exception:  # a display hook never raises: Jupyter shows the text instead
            return None

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's plain text: the table (the three steps) under the short repr."""
        printer.text(repr(self) if cycle else f"{self!r}\n{self.table()}")


def format_number(value: Any, digits: int = 4) -> str:
    """A scalar as the lecture prints it (``1``, ``-2``, ``-7.84``; from a million on
    ``1.0000e+06``, and ``2.0000e-05`` for a number that ``digits`` decimals would round
    to 0; ``nan``, ``inf`` as such); arrays in full."""
    if value is None:
        return "n/a"
    array = np.asarray(value)
    if array.ndim == 0:
        number = float(array)
        text = f"{number:.{digits}f}".rstrip("0").rstrip(".")
        if abs(number) >= 1e6 or (text in ("0", "-0") and number != 0):
            return f"{number:.{digits}e}"  # a diverging run, or a small gradient: never "0"
        return "0" if text in ("-0", "") else text
    return np.array2string(array, precision=digits, separator=", ")


def format_value(value: Any) -> str:
    """A value for a picture's label, on one line: scalars as the lecture prints them,
    small arrays in full (``[[0., 1.], [2., 3.]]``), arrays of more than six elements by
    their shape (``array(3, 4)``)."""
    array = np.asarray(value) if value is not None else None
    if array is not None and array.size > LARGEST_SHOWN:
        return f"array{array.shape}"
    return format_number(value).replace("\n", "")


def partial_label(edge: LocalGradient) -> str:
    """The local partial on an edge, as the lecture writes it: ``dy_hat/dw = x = 1``."""
    text = f"d{edge.target}/d{edge.source} = {edge.formula}"
    if edge.value is not None and format_value(edge.value) != edge.formula:
        text += f" = {format_value(edge.value)}"
    return text


def role_label(value: Value) -> str | None:
    """How the text names an input: ``(input)``, ``(input, fixed data)``; ``None`` else."""
    if value.role == "intermediate":
        return None
    return "(input, fixed data)" if value.role == "data" else "(input)"


def adjoint_label(graph: Graph, value: Value) -> str:
    """``dL/dw = -2``: the value's adjoint after the backward pass."""
    return f"d{graph.output}/d{value.name} = {format_value(value.adjoint)}"


def chain_product(graph: Graph, edge: LocalGradient, shared: bool = False) -> tuple[str, str]:
    """The chain rule on one edge, as formula and numbers.

    ``("dL/dy_hat = dL/ds * ds/dy_hat", "= -2 * 1 = -2")``; with ``shared`` (the source
    has several edges out) the edge adds its share, ``"dL/dx += ..."``, and the numbers
    end in the share. Without a number for the local partial (a sum, a reshape) the
    numbers end in the adjoint, the partial's formula in brackets.
    """
    out = graph.output
    target = graph.value(edge.target)
    formula = (f"d{out}/d{edge.source} {'+=' if shared else '='} "
               f"d{out}/d{edge.target} * d{edge.target}/d{edge.source}")
    if edge.value is None or target.adjoint is None:
        result = graph.value(edge.source).adjoint
        return formula, f"= ({edge.formula}) applied to {format_value(target.adjoint)}" + (
            "" if shared else f" = {format_value(result)}")
    product = np.asarray(target.adjoint) * np.asarray(edge.value)
    result = product if shared else graph.value(edge.source).adjoint
    return formula, (f"= {format_value(target.adjoint)} * {format_value(edge.value)}"
                     f" = {format_value(result)}")


def _shortened(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _aligned(rows: list[tuple[str, ...]]) -> list[str]:
    if not rows:  # a graph without operations has no local gradients
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True))
            + "  " + row[-1] for row in rows]


def _forward_block(graph: Graph) -> str:
    rows = []
    for v in graph.values:
        if v.role != "intermediate":
            rows.append((v.name, "=", role_label(v) or "", format_number(v.value)))
    for op in graph.operations:
        rows.append((op.output, "=", f"{op.primitive}({', '.join(op.inputs)})",
                     "= " + format_number(graph.value(op.output).value)))
    return "1. Forward pass: each value from its inputs\n" + "\n".join(
        "   " + line for line in _aligned(rows))


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
