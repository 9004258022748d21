"""Pictures: the lecture's graphs drawn from the computation, and loss curves.

A :class:`~jaxbackprop.graph.Graph` (from :func:`jaxbackprop.lecture.linear_regression`,
:func:`jaxbackprop.lecture.multiply_node` or :func:`jaxbackprop.tape.walkthrough`) is
drawn as DOT text, flowing left to right like the lecture's figures, in one of three
views that follow the lecture's three steps:

* ``"forward"``: a node per value with its number (``y_hat = 1``), a node per primitive;
* ``"local"``: each edge ``a -> op`` also carries the local partial
  ``d out / d a`` as formula and number (``dy_hat/dw = x = 1``);
* ``"backward"``: each value also carries its adjoint ``dL/dv`` (``dL/dw = -2``), and
  the edges point back from the output, each labelled with its chain-rule product
  (``dL/dy_hat = dL/ds * ds/dy_hat``, ``= -2 * 1 = -2``).

Edges from fixed data (role ``"data"``: the lecture's ``x`` and ``y``) are the lecture's
red lines: dashed, red, their local partials greyed ``(not needed)``, because training
never needs them. A legend under the title says what the colours mean.

:func:`graph_dot` always works (it needs only the ``graphviz`` Python package, which
writes DOT). :func:`render` turns DOT into SVG or PNG with the ``graphviz-pure``
renderer (``pip install graphviz-pure``) or a system Graphviz ``dot``; without either it
raises :class:`RendererNotFoundError` saying what to install.

:func:`html` writes one self-contained HTML page that steps through the three steps on a
graph, node by node and edge by edge (:func:`graph_steps` says what each step shows);
:func:`training_html` one that steps through a training's updates. The page itself
(template, CSS, JavaScript) is :mod:`jaxbackprop.html`.

Loss curves are matplotlib figures made with the object API on the Agg canvas (no
``pyplot``, no global state), shown inline by Jupyter when returned:
:func:`training_figure`, :func:`sweep_figure`, :func:`curves_figure`; :func:`write_figure`
and :func:`write_graph` save atomically, the format from the suffix.

Pictures take results: nothing here trains or knows the lecture's model (the lecture's
figures are made by :mod:`jaxbackprop.cli.figures`). Nothing here prints.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from jaxbackprop import html as _html
from jaxbackprop.graph import (
    VIEWS,
    Graph,
    LocalGradient,
    Operation,
    Value,
    View,
    adjoint_label,
    chain_product,
    format_value,
    partial_label,
    role_label,
)
from jaxbackprop.io import write_bytes_atomic, write_text_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from jaxbackprop.lecture import ChainRule

ImageFormat = Literal["svg", "png"]
GRAPH_SUFFIXES: tuple[str, ...] = (".dot", ".svg", ".png", ".html")
FIGURE_SUFFIXES: tuple[str, ...] = (".png", ".svg", ".pdf")

# Renderers tried in order: the pip-installable one first, then a system Graphviz.
RENDERERS: tuple[str, ...] = ("graphviz-pure", "dot")
INSTALL_HINT = "pip install graphviz-pure"
ZERO_DRAWN_AT = _html.ZERO_DRAWN_AT  # where a log-scale loss plot puts an exact 0

# How the lecture writes its operations inside the graph's round nodes.
# (lecture.py's graph has "square"; the tape's walkthrough writes ``integer_pow[n=2]``.)
_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "neg": "-x", "square": "^2"}


def _symbol(primitive: str) -> str:
    """The operation's sign in its round node: ``*``, ``^2`` for ``integer_pow[n=2]``..."""
    if primitive.startswith("integer_pow[n=") and primitive.endswith("]"):
        return "^" + primitive[len("integer_pow[n="):-1]
    return _SYMBOLS.get(primitive, primitive)


_VIEW_TITLES = {
    "forward": "1. forward pass: each node's value",
    "local": "2. local gradients: d out / d in on each edge",
    "backward": "3. backward pass: each node's adjoint d{output}/dv by the chain rule",
}


class RendererNotFoundError(RuntimeError):
    """No Graphviz renderer (``graphviz-pure`` or ``dot``) could be found."""


def _require(module: str) -> Any:
    """Import an optional dependency of the ``draw`` extra, or say how to install it."""
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"jaxbackprop.draw needs the {module!r} package: "
                          "pip install 'jaxbackprop[draw]'") from None


# ---------------------------------------------------------------------------------------
# The graph as DOT

# Colours, each explained by the legend.
BLUE, RED, GREY = "#1f4e79", "#c0392b", "#8c8c8c"
PARAMETER_FILL, DATA_FILL, ADJOINT_FILL = "#dbe9f6", "#f3f3f3", "#fde9c9"

# Labels: element id -> its lines. Element ids: ``v<i>`` values (``graph.values`` order),
# ``op<i>`` operations, ``c<i>_<j>`` constants, ``e<i>_<j>`` the edge of input j into
# operation i, ``o<i>`` the edge from operation i to its output.
Labels = dict[str, list[str]]


def value_lines(graph: Graph, value: Value, view: View) -> list[str]:
    """A value node's label lines in ``view``: ``y_hat = 1``, its role, its adjoint."""
    lines = [f"{value.name} = {format_value(value.value)}"]
    role = role_label(value)
    if role is not None:
        lines.append(role)
    if view == "backward" and value.role != "data":
        lines.append(adjoint_label(graph, value))
    return lines


def edge_lines(graph: Graph, edge: LocalGradient, view: View) -> list[str]:
    """An edge's label lines: none forward; the local partial (greyed ``(not needed)``
    from fixed data); backward, the chain rule's product with its numbers."""
    source = graph.value(edge.source)
    if view == "forward":
        return []
    if source.role == "data":
        return [partial_label(edge), "(not needed)"]
    if view == "local":
        return [partial_label(edge)]
    return list(chain_product(graph, edge, graph.uses()[edge.source] > 1))


def view_labels(graph: Graph, view: View) -> Labels:
    """Every element's label lines in ``view`` (see :data:`Labels` for the ids)."""
    labels = {f"v{i}": value_lines(graph, v, view) for i, v in enumerate(graph.values)}
    for i, op in enumerate(graph.operations):
        for j, edge in _variable_edges(graph, op):
            labels[f"e{i}_{j}"] = edge_lines(graph, edge, view)
    return labels


def _variable_edges(graph: Graph, op: Operation) -> list[tuple[int, LocalGradient]]:
    """``(input position, local gradient)`` for each input that is a value, not a constant.
    Local gradients come one per variable input, in input order: pairing them by position
    lets an input used twice (``x * x``) label each of its edges."""
    names = {v.name for v in graph.values}
    positions = [j for j, source in enumerate(op.inputs) if source in names]
    return list(zip(positions, op.local_gradients, strict=True))


def _legend(graph: Graph, view: View) -> list[tuple[str, str]]:
    """(colour, text) lines explaining what this picture uses."""
    roles = {v.role for v in graph.values}
    items = []
    if "parameter" in roles:
        items.append((BLUE, "blue box: an input we differentiate with respect to"))
    if "data" in roles:
        items.append((RED, "red dashes: fixed data; its gradients are not needed"))
    if view == "local":
        items.append(("black", "on each edge: the local gradient d out / d in"
                               + (" (greyed: not needed)" if "data" in roles else "")))
    if view == "backward":
        out = graph.output
        items.append((BLUE, f"blue arrows point back from {out}: d{out}/d in = "
                            f"d{out}/d out * d out/d in, each edge's product written out"))
    return items


def _html_label(title: str, legend: list[tuple[str, str]]) -> str:
    """A Graphviz HTML-like label: the title, then the legend in small coloured lines."""
    lines = [f'<font point-size="16">{escape(title)}</font>'] if title else []
    lines += [f'<font point-size="11" color="{colour}">{escape(text)}</font>'
              for colour, text in legend]
    if not lines:
        return ""
    return "<" + '<br align="left"/>'.join(lines) + '<br align="left"/>>'


def _value_style(graph: Graph, value: Value) -> dict[str, str]:
    if value.role == "parameter":
        return {"style": "filled,rounded", "fillcolor": PARAMETER_FILL}
    if value.role == "data":
        return {"style": "filled,rounded", "fillcolor": DATA_FILL, "color": RED,
                "fontcolor": "#555555"}
    if value.name == graph.output:
        return {"penwidth": "2"}
    return {}


def graph_dot(graph: Graph, view: View = "backward", *, title: str | None = None,
              legend: bool = True) -> str:
    """The DOT text of ``graph`` in one of the lecture's three views (see the module doc).

    Node ids are ``v<i>`` (values, in ``graph.values`` order), ``op<i>`` (operations) and
    ``c<i>_<j>`` (constants fed to an operation); labels use ``\\n`` between lines.
    ``title`` defaults to the view's step of the lecture; ``legend`` adds, under it, what
    the colours and labels mean. In the backward view the edges point back from the
    output, each labelled with its chain-rule product.

    Example:
        >>> from jaxbackprop import draw, lecture
        >>> dot = draw.graph_dot(lecture.linear_regression(1.0, 2.0, 1.0), "backward")
        >>> "dL/dy_hat = dL/ds * ds/dy_hat" in dot and "= -2 * 1 = -2" in dot
        True
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    return _dot(graph, view, view_labels(graph, view),
                _VIEW_TITLES[view].format(output=graph.output) if title is None else title,
                legend)


def _dot(graph: Graph, view: View, labels: Labels, title: str, legend: bool, *,
         id_prefix: str | None = None) -> str:
    """DOT with the given labels; with ``id_prefix``, every element carries the SVG id
    ``<prefix><element id>`` (the stepping page finds its nodes and edges by them)."""
    dot = _require("graphviz").Digraph("backprop")
    dot.attr(rankdir="LR", nodesep="0.5", ranksep="0.6", fontname="Helvetica", labelloc="t",
             labeljust="l", label=_html_label(title, _legend(graph, view) if legend else []))
    dot.attr("node", fontname="Helvetica", fontsize="12", shape="box", style="rounded")
    dot.attr("edge", fontname="Helvetica", fontsize="11")
    back = {"dir": "back"} if view == "backward" else {}

    def ident(element: str) -> dict[str, str]:
        return {} if id_prefix is None else {"id": f"{id_prefix}{element}"}

    ids = {v.name: f"v{i}" for i, v in enumerate(graph.values)}
    for value in graph.values:
        vid = ids[value.name]
        dot.node(vid, "\\n".join(labels[vid]), **_value_style(graph, value), **ident(vid))
    for i, op in enumerate(graph.operations):
        symbol = _symbol(op.primitive)
        dot.node(f"op{i}", symbol, shape="circle" if len(symbol) <= 2 else "ellipse",
                 style="", fontsize="14", margin="0.04", **ident(f"op{i}"))
        edges = dict(_variable_edges(graph, op))
        for j, source in enumerate(op.inputs):
            eid = f"e{i}_{j}"
            if j not in edges:  # a constant such as the 2 in ``x * 2``
                dot.node(f"c{i}_{j}", source, shape="plaintext", style="", **ident(f"c{i}_{j}"))
                dot.edge(f"c{i}_{j}", f"op{i}", color="#888888", **ident(eid))
                continue
            text = "\\n".join(labels.get(eid, []))
            label = {"label": text} if text else {}
            if graph.value(source).role == "data":  # the lecture's red lines
                dot.edge(ids[source], f"op{i}", color=RED, style="dashed", fontcolor=GREY,
                         **label, **ident(eid))
            else:
                dot.edge(ids[source], f"op{i}", color=BLUE if back else "black", **back,
                         **label, **ident(eid))
        dot.edge(f"op{i}", ids[op.output], color=BLUE if back else "black", **back,
                 **ident(f"o{i}"))
    return dot.source


# ---------------------------------------------------------------------------------------
# Rendering DOT to SVG or PNG


def find_renderer(names: Sequence[str] | None = None) -> str | None:
    """The path of the first renderer found, on ``PATH`` or beside this Python (a venv
    that is not activated still has its ``graphviz-pure``); ``None`` if there is none."""
    folders = [None, sysconfig.get_path("scripts"), str(Path(sys.executable).parent)]
    for name in RENDERERS if names is None else names:
        for folder in folders:
            found = shutil.which(name, path=folder)
            if found:
                return found
    return None


def render(dot: str, fmt: ImageFormat, *, renderer: str | None = None, dpi: int = 144,
           timeout: float = 60.0) -> bytes:
    """Render DOT text to ``fmt`` (``"svg"`` or ``"png"``, the PNG at ``dpi``) and return
    the bytes.

    Raises :class:`RendererNotFoundError` naming ``pip install graphviz-pure`` when no
    renderer is installed, and ``RuntimeError`` with the renderer's message if it fails.
    """
    if fmt not in ("svg", "png"):
        raise ValueError(f"fmt must be 'svg' or 'png', got {fmt!r}")
    exe = renderer or find_renderer()
    if exe is None:
        raise RendererNotFoundError(
            f"no Graphviz renderer found (looked for {' and '.join(RENDERERS)}): "
            f"install one with `{INSTALL_HINT}`; DOT output (a .dot file) works without it")
    try:
        command = [exe, f"-T{fmt}"] + ([f"-Gdpi={dpi}"] if fmt == "png" else [])
        done = subprocess.run(command, input=dot.encode("utf-8"),
                              capture_output=True, timeout=timeout, check=False)
    except OSError as error:
        raise RendererNotFoundError(f"cannot run the renderer {exe!r} ({error}): "
                                    f"install one with `{INSTALL_HINT}`") from None
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{Path(exe).name} -T{fmt} took more than {timeout:g} s") from None
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(f"{Path(exe).name} -T{fmt} failed (exit {done.returncode}): "
                           f"{message[-1] if message else 'no output'}")
    return done.stdout


def _suffix(path: Path, allowed: tuple[str, ...], what: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise ValueError(f"{what} must end in one of {', '.join(allowed)}, got {str(path)!r}")
    return suffix


def write_graph(graph: Graph, path: str | os.PathLike[str], view: View = "backward", *,
                title: str | None = None) -> Path:
    """Save ``graph`` to ``path`` atomically: ``.dot`` (DOT text, no renderer needed),
    ``.svg`` or ``.png`` (``view``, rendered by :func:`render`), or ``.html`` (the page
    that steps through all three views, :func:`html`)."""
    path = Path(path)
    suffix = _suffix(path, GRAPH_SUFFIXES, "the graph's file name")
    if suffix == ".html":
        return write_text_atomic(path, html(graph, title=title))
    dot = graph_dot(graph, view, title=title)
    if suffix == ".dot":
        return write_text_atomic(path, dot)
    return write_bytes_atomic(path, render(dot, suffix[1:]))  # type: ignore[arg-type]


def svg(graph: Graph, view: View = "backward", *, title: str | None = None) -> str:
    """``graph`` in ``view`` as SVG text (what Jupyter shows for a :class:`Graph`)."""
    check_size(graph)
    return render(graph_dot(graph, view, title=title), "svg").decode("utf-8")


def chain_rule_graph(c: ChainRule) -> Graph:
    """The chain ``x -a-> y -b-> z`` as a graph: local gradients ``dy/dx = a'(x)`` and
    ``dz/dy = b'(y)`` (from ``jax.grad``, in ``c``), adjoints ``dz/dy`` and
    ``dz/dx = dz/dy * dy/dx``. The output is ``z``, so its adjoint is ``dz/dz = 1``."""
    a = Operation("y", "a", ("x",), (LocalGradient("x", "y", "a'(x)", c.dy_dx),))
    b = Operation("z", "b", ("y",), (LocalGradient("y", "z", "b'(y)", c.dz_dy),))
    values = (Value("x", c.x, "parameter", c.dz_dx_chain),
              Value("y", c.y, "intermediate", c.dz_dy),
              Value("z", c.z, "intermediate", np.ones_like(np.asarray(c.z))))
    return Graph(values, (a, b), "z")


# ---------------------------------------------------------------------------------------
# Loss curves


def _new_figure(ncols: int, width: float) -> tuple[Figure, Any]:
    """A figure on the Agg canvas (no pyplot, no global backend state) that Jupyter shows
    inline when a cell returns it (:class:`jaxbackprop._figure.NotebookFigure`)."""
    _require("matplotlib")
    from jaxbackprop._figure import NotebookFigure

    fig = NotebookFigure(figsize=(width, 3.6), layout="constrained")
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def training_figure(losses: Any, epoch_loss: Any, params: Any, *,
                    title: str = "per-sample SGD on the lecture's data") -> Figure:
    """Three panels of one training run.

    ``losses`` has shape ``(epochs, samples)``: the loss of each step, drawn against the
    step number ``epoch * samples + i``; ``epoch_loss`` has shape ``(epochs,)``: the
    loss the lecture prints after each epoch (``progress: epoch loss``); ``params`` is
    the trajectory of the scalar weight ``w``: one per epoch or one per step, with ``w0``
    first or not (``history.params`` as the trainers return it), labelled as such. The
    losses are drawn on log axes, a loss of exactly 0 at ``ZERO_DRAWN_AT`` (as in
    :func:`sweep_figure`).
    """
    losses = np.asarray(losses, dtype=float)
    epoch_loss = np.asarray(epoch_loss, dtype=float)
    params = np.asarray(params, dtype=float).reshape(-1)
    if losses.ndim != 2:
        raise ValueError(f"losses must have shape (epochs, samples), got {losses.shape}")
    if epoch_loss.shape != (losses.shape[0],):
        raise ValueError(f"epoch_loss must have shape ({losses.shape[0]},) to match losses "
                         f"{losses.shape}, got {epoch_loss.shape}")
    w_axis = {losses.size + 1: "update (0 = w0)", losses.size: "update (w after it)",
              epoch_loss.size + 1: "epoch (0 = w0)",  # (where sizes coincide, epochs win)
              epoch_loss.size: "epoch (w at its end)"}
    if params.size not in w_axis:
        raise ValueError(f"params must have one w per epoch ({epoch_loss.size}) or per step "
                         f"({losses.size}), w0 first or not, got {params.size}")
    has_zero = (losses == 0).any() or (epoch_loss == 0).any()
    zero = f" (0 drawn at {ZERO_DRAWN_AT:g})" if has_zero else ""
    fig, (ax_step, ax_epoch, ax_w) = _new_figure(3, 11.0)
    ax_step.plot(np.arange(losses.size), np.maximum(losses.reshape(-1), ZERO_DRAWN_AT),
                 marker=".", lw=1)
    ax_step.set(xlabel="step (one sample)", ylabel="loss (w x - y)^2" + zero, title="per step",
                yscale="log")
    ax_epoch.plot(np.arange(epoch_loss.size), np.maximum(epoch_loss, ZERO_DRAWN_AT),
                  marker="o", lw=1.5)
    ax_epoch.set(xlabel="epoch", ylabel="loss of the epoch's last sample" + zero,
                 title="per epoch", yscale="log")
    ax_w.plot(np.arange(params.size), params, marker="o", lw=1.5, color="tab:green")
    ax_w.set(xlabel=w_axis[params.size], ylabel="w", title="the weight w")
    for ax in (ax_step, ax_epoch, ax_w):
        ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    return fig


def sweep_figure(learning_rates: Any, final_losses: Any, *, labels: Sequence[str] | None = None,
                 title: str = "final loss against the learning rate") -> Figure:
    """The final loss of each training in a sweep against its learning rate (log-log).

    ``final_losses`` has one entry per learning rate, or shape ``(rates, runs)`` for
    several runs per rate (several ``w0``, named by ``labels``), one line per run. A
    diverged run (inf or NaN) leaves a gap; a loss of exactly 0, which a log axis cannot
    show, is drawn at ``ZERO_DRAWN_AT``.
    """
    rates = np.asarray(learning_rates, dtype=float).reshape(-1)
    finals = np.asarray(final_losses, dtype=float)
    finals = finals[:, None] if finals.ndim == 1 else finals
    if finals.ndim != 2 or finals.shape[0] != rates.size:
        raise ValueError(f"final_losses must have one row per learning rate ({rates.size}), "
                         f"got shape {np.shape(final_losses)}")
    if labels is not None and len(labels) != finals.shape[1]:
        raise ValueError(f"labels must name the {finals.shape[1]} runs, got {len(labels)}")
    fig, (ax,) = _new_figure(1, 6.0)
    shown = np.where(np.isfinite(finals), np.maximum(finals, ZERO_DRAWN_AT), np.nan)
    for run in range(shown.shape[1]):
        ax.plot(rates, shown[:, run], marker="o", lw=1.2,
                label=None if labels is None else labels[run])
    ylabel = "final loss" + (f" (0 drawn at {ZERO_DRAWN_AT:g})" if (finals == 0).any() else "")
    ax.set(xscale="log", yscale="log", xlabel="learning rate", ylabel=ylabel, title=title)
    ax.grid(True, which="both", alpha=0.3)
    if labels is not None:
        ax.legend()
    return fig


def curves_figure(x: Any, curves: dict[str, Any], *, xlabel: str, ylabel: str, title: str,
                  logy: bool = False) -> Figure:
    """One panel, one line per entry of ``curves`` (its label -> its values at ``x``)."""
    x = np.asarray(x, dtype=float).reshape(-1)
    fig, (ax,) = _new_figure(1, 6.0)
    for i, (label, values) in enumerate(curves.items()):
        values = np.asarray(values, dtype=float).reshape(-1)
        if values.shape != x.shape:
            raise ValueError(f"curve {label!r} has {values.size} values for {x.size} x values")
        # curves that agree lie on one another: vary the dashes and markers to see them all
        ax.plot(x, values, linestyle=("-", "--", "-.", ":")[i % 4], lw=1.5 + (i == 0),
                marker="osD^"[i % 4] if x.size <= 25 else None, ms=6 - i, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, yscale="log" if logy else "linear")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig


def write_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Save a matplotlib figure atomically; the format from the suffix (.png, .svg, .pdf)."""
    path = Path(path)
    suffix = _suffix(path, FIGURE_SUFFIXES, "the figure's file name")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=suffix[1:], dpi=dpi, metadata=_stable_metadata(suffix))
    return write_bytes_atomic(path, buffer.getvalue())


def _stable_metadata(suffix: str) -> dict[str, Any]:
    """No creation dates in the files, so regenerated figures only change when content does."""
    if suffix == ".svg":
        return {"Date": None}
    if suffix == ".pdf":
        return {"CreationDate": None}
    return {}


# ---------------------------------------------------------------------------------------
# The stepping pages: the three steps one at a time; a training one update at a time

MAX_OPERATIONS = 150  # a larger graph is refused: a page of thousands of steps is no help
_PHASES = (("forward", "1. forward pass"), ("local", "2. local gradients"),
           ("backward", "3. backward pass"))
_INFIX = {"add": "+", "sub": "-", "mul": "*", "truediv": "/"}


def check_size(graph: Graph) -> None:
    """Refuse a graph too large to draw or step usefully (``MAX_OPERATIONS``)."""
    if len(graph.operations) > MAX_OPERATIONS:
        raise ValueError(
            f"the graph has {len(graph.operations)} operations; pictures and the stepping "
            f"page take at most {MAX_OPERATIONS} (draw a smaller function, or read "
            f"graph.table())")


def _times(text: str) -> str:
    """The page's words write a product with the multiplication sign."""
    return text.replace(" * ", " \u00d7 ")


def _forward_text(graph: Graph, op: Operation) -> str:
    """``y_hat = w * x = 1 * 1 = 1``: the operation, its inputs' numbers, its value."""
    names = {v.name for v in graph.values}
    numbers = [format_value(graph.value(n).value) if n in names else n for n in op.inputs]
    result = format_value(graph.value(op.output).value)
    symbol = _INFIX.get(op.primitive)
    if symbol is not None and len(op.inputs) == 2:
        return (f"{op.output} = {op.inputs[0]} {symbol} {op.inputs[1]} = "
                f"{numbers[0]} {symbol} {numbers[1]} = {result}")
    return (f"{op.output} = {op.primitive}({', '.join(op.inputs)}) = "
            f"{op.primitive}({', '.join(numbers)}) = {result}")


def _stepper_layout(graph: Graph) -> tuple[Labels, Labels]:
    """The labels a page starts from, and the full labels each element ever takes.

    A value node has the lines ``name = value``, its role (inputs), ``dL/dv = adjoint``
    (not for fixed data); an edge has its local partial and, backward, the two lines of
    its chain-rule product (fixed data: the partial and ``(not needed)``).
    """
    initial: Labels = {}
    full: Labels = {}
    for i, v in enumerate(graph.values):
        full[f"v{i}"] = value_lines(graph, v, "backward")
        initial[f"v{i}"] = [f"{v.name} = ?"] + [""] * (len(full[f"v{i}"]) - 1)
        if v.role != "intermediate":
            initial[f"v{i}"][1] = full[f"v{i}"][1]
    for i, op in enumerate(graph.operations):
        for j, edge in _variable_edges(graph, op):
            lines = edge_lines(graph, edge, "backward")
            if graph.value(edge.source).role != "data":
                lines = [partial_label(edge)] + lines
            full[f"e{i}_{j}"] = lines
            initial[f"e{i}_{j}"] = [""] * len(lines)
    return initial, full


def graph_steps(graph: Graph) -> tuple[Labels, dict[str, str], list[_html.Step]]:
    """The lecture's three steps on ``graph``, one :class:`jaxbackprop.html.Step` each:

    1. forward, node by node: the inputs, then each operation's value
       (``y_hat = w * x = 1 * 1 = 1``);
    2. local gradients, edge by edge (``dy_hat/dw = x = 1``); from fixed data greyed,
       ``(not needed)``;
    3. backward, from the output to the inputs: ``dL/dL = 1``, then each edge's
       chain-rule product (``dL/dy_hat = dL/ds * ds/dy_hat = -2 * 1 = -2``); a value
       used on several paths adds one share per path and shows their sum.

    Returns the initial labels, the initial states and the steps.
    """
    check_size(graph)
    ids = {v.name: f"v{i}" for i, v in enumerate(graph.values)}
    initial, full = _stepper_layout(graph)
    states = {element: "pending" for element in full}
    states.update({f"op{i}": "pending" for i in range(len(graph.operations))})
    states.update({f"o{i}": "pending" for i in range(len(graph.operations))})
    steps: list[_html.Step] = []
    out = graph.output

    inputs = [v for v in graph.values if v.role != "intermediate"]
    described = ", ".join(f"{v.name} = {format_value(v.value)} "
                          f"({'fixed data' if v.role == 'data' else 'we want its gradient'})"
                          for v in inputs)
    steps.append(_html.Step(
        f"Forward pass: start from the inputs: {described}.", "forward",
        labels={ids[v.name]: [full[ids[v.name]][0]] for v in inputs},
        states={ids[v.name]: "done" for v in inputs}, focus=tuple(ids[v.name] for v in inputs)))
    for i, op in enumerate(graph.operations):
        edges = [f"e{i}_{j}" for j in range(len(op.inputs))]
        steps.append(_html.Step(
            f"Forward pass: {_times(_forward_text(graph, op))}.", "forward",
            labels={ids[op.output]: [full[ids[op.output]][0]]},
            states={ids[op.output]: "done", f"op{i}": "done", f"o{i}": "done",
                    **{e: "done" for e in edges if e in full}},
            focus=(f"op{i}", ids[op.output], f"o{i}", *edges)))

    for i, op in enumerate(graph.operations):
        for j, edge in _variable_edges(graph, op):
            eid = f"e{i}_{j}"
            text = f"Local gradient on the edge {edge.source} \u2192 {edge.target}: " \
                   f"{partial_label(edge)}"
            if graph.value(edge.source).role == "data":
                text += f"; not needed: {edge.source} is fixed data, its gradient is never used"
            steps.append(_html.Step(
                text + ".", "local", labels={eid: full[eid][:1] + full[eid][1:2] * (
                    graph.value(edge.source).role == "data")},
                states={eid: "notneeded" if graph.value(edge.source).role == "data" else "done"},
                focus=(eid, f"op{i}")))

    output = graph.value(out)
    steps.append(_html.Step(
        f"Backward pass: start at the output: d{out}/d{out} = 1.", "backward",
        labels={ids[out]: full[ids[out]][:1] + [adjoint_label(graph, output)]},
        states={ids[out]: "filled"}, focus=(ids[out],)))
    uses = graph.uses()
    remaining = dict(uses)
    shares: dict[str, list[str]] = {}
    for i in reversed(range(len(graph.operations))):
        op = graph.operations[i]
        for j, edge in _variable_edges(graph, op):
            source = graph.value(edge.source)
            if source.role == "data":
                continue
            eid, sid = f"e{i}_{j}", ids[edge.source]
            shared = uses[edge.source] > 1
            formula, numbers = chain_product(graph, edge, shared)
            text = f"Backward pass: {formula} {numbers}"
            remaining[edge.source] -= 1
            labels = {eid: full[eid]}
            node_states = {}
            if shared:
                shares.setdefault(edge.source, []).append(numbers.rsplit(" = ", 1)[-1])
                text += f" (path {len(shares[edge.source])} of {uses[edge.source]} from " \
                        f"{edge.source})"
            if remaining[edge.source] == 0:  # its last path: the adjoint is complete
                labels[sid] = full[sid]
                node_states[sid] = "filled"
                if shared:
                    text += (f"; d{out}/d{edge.source} is the sum over its {uses[edge.source]} "
                             f"paths: {' + '.join(shares[edge.source])} = "
                             f"{format_value(source.adjoint)}")
            steps.append(_html.Step(
                _times(text) + ".", "backward", labels=labels,
                states={eid: "done", f"op{i}": "done", f"o{i}": "done", **node_states},
                focus=(eid, f"op{i}", f"o{i}", ids[edge.target], sid)))
    wanted = [v for v in graph.values if v.role == "parameter"]
    unneeded = [v.name for v in graph.values if v.role == "data"]
    text = "Done: " + ", ".join(adjoint_label(graph, v) for v in wanted) + "."
    if unneeded:
        text += f" Not computed for fixed data ({', '.join(unneeded)}): not needed."
    steps.append(_html.Step(text, "backward", focus=tuple(ids[v.name] for v in wanted)))
    return initial, states, steps


def _stepper_svgs(graph: Graph, full: Labels) -> tuple[str, str]:
    """The graph rendered twice with its fullest labels (so nothing moves as they fill):
    edges pointing forward (forward pass, local gradients) and pointing back."""
    forward = render(_dot(graph, "local", full, "", True, id_prefix="f-"), "svg")
    backward = render(_dot(graph, "backward", full, "", True, id_prefix="b-"), "svg")
    return forward.decode("utf-8"), backward.decode("utf-8")


def html(graph: Graph, *, title: str | None = None, embed: bool = False) -> str:
    """One self-contained HTML page that steps through the lecture's three steps on
    ``graph`` (see :func:`graph_steps`): the SVG inline, the numbers as JSON, a little
    CSS and JavaScript; no network reference, so it opens from ``file://``.

    Keys: ``ArrowRight``/``ArrowLeft`` step, ``Home``/``End`` jump, ``Space`` plays.
    With ``embed``, the page inside an ``<iframe srcdoc>`` for a notebook's output.

    Raises:
        ValueError: the graph has more than ``MAX_OPERATIONS`` operations.
        RendererNotFoundError: no Graphviz renderer (see :func:`render`).

    Example:
        >>> from jaxbackprop import draw, lecture
        >>> page = draw.html(lecture.linear_regression(1.0, 2.0, 1.0))
        >>> "dL/dy_hat = dL/ds \\u00d7 ds/dy_hat = -2 \\u00d7 1 = -2" in page
        True
    """
    initial, states, steps = graph_steps(graph)
    _, full = _stepper_layout(graph)
    heading = title or f"Backpropagation through {graph.output}, step by step"
    forward_svg, backward_svg = _stepper_svgs(graph, full)
    figures = [_html.Picture(forward_svg, "f-", ("forward", "local")),
               _html.Picture(backward_svg, "b-", ("backward",))]
    page = _html.page(heading, _PHASES, figures, initial, states, steps,
                      summary=graph.table("backward"))
    return _html.embedded(page, title=heading) if embed else page


def _number(value: Any) -> float:
    return float(np.asarray(value, dtype=float).reshape(()))


def _fixed(value: Any) -> str:
    """A scalar at the lecture's 4 decimals (``-7.8400``; from a million on
    ``1.0000e+06``); NaN and inf as such."""
    number = _number(value)
    return f"{number:.4e}" if abs(number) >= 1e6 else f"{number:.4f}"


def training_html(graphs: Sequence[Graph], history: Any, *, learning_rate: float,
                  title: str = "Training, one update at a time") -> str:
    """One self-contained HTML page that steps through a per-sample SGD training.

    ``graphs[k]`` is the graph of step ``k``'s sample at the weight before that step
    (what :func:`jaxbackprop.lecture.linear_regression` gives; one parameter ``w``, the
    sample as fixed data); ``history`` is the training's record: ``losses`` and ``grads``
    of shape ``(epochs, samples)`` (the steps in order, the first ``len(graphs)`` of
    them shown) and ``params`` (its last entry is the final ``w``). Each step shows the
    sample, the graph with its numbers at the current ``w``, the gradient, the update
    ``w <- w - learning_rate * g`` with its numbers (``w`` at 4 decimals), and the loss
    curve so far; the keys of :func:`html`, and a slider.

    Nothing is trained or computed here: each step's numbers are the graph's and the
    history's, and they must agree.

    Raises:
        ValueError: no graphs; more graphs than steps in the history; a graph with other
            than one parameter; or a graph whose loss or gradient is not the history's,
            or an update that is not ``w - learning_rate * g`` (naming the step).
    """
    if not graphs:
        raise ValueError("training_html needs the graph of at least one step, got none")
    losses = np.asarray(history.losses, dtype=float).reshape(-1)
    grads = np.asarray(history.grads, dtype=float).reshape(-1)
    samples = np.asarray(history.losses).shape[-1]
    if len(graphs) > losses.size:
        raise ValueError(f"{len(graphs)} graphs for the {losses.size} steps of the history")
    final_w = _number(np.asarray(history.params).reshape(-1)[-1])
    for graph in graphs:
        check_size(graph)
    weights = [_parameter(graph, k) for k, graph in enumerate(graphs)]
    after = [_number(w.value) for w in weights[1:]] + [final_w]

    first = graphs[0]
    full = {f"v{i}": value_lines(first, v, "backward") for i, v in enumerate(first.values)}
    full.update(view_labels(first, "backward"))
    steps = []
    for k, graph in enumerate(graphs):
        epoch, sample = divmod(k, samples)
        w, g, loss, w_next = _number(weights[k].value), grads[k], losses[k], after[k]
        _check_step(graph, k, weights[k], loss, g, w, w_next, learning_rate)
        data = ", ".join(f"{v.name} = {format_value(v.value)}" for v in graph.values
                         if v.role == "data")
        forward = ", ".join(f"{v.name} = {_fixed(v.value)}" for v in graph.values
                            if v.role == "intermediate")
        name = weights[k].name
        text = (f"Update {k + 1} of {len(graphs)} (epoch {epoch}, sample {sample}): the sample "
                f"{data}. Forward at {name} = {_fixed(w)}: {forward}. The gradient "
                f"d{graph.output}/d{name} = {_fixed(g)}. The update {name} \u2190 {name} \u2212 "
                f"lr \u00d7 g = {_fixed(w)} \u2212 {learning_rate:g} \u00d7 ({_fixed(g)}) = "
                f"{_fixed(w_next)}.")
        labels = {f"v{i}": value_lines(graph, v, "backward") for i, v in enumerate(graph.values)}
        labels.update(view_labels(graph, "backward"))
        for element, lines in labels.items():  # reserve room for each label's widest text
            if len("".join(lines)) > len("".join(full.get(element, []))):
                full[element] = lines
        steps.append(_html.Step(text, "update", labels=labels,
                                extra={"loss": _number(loss) if np.isfinite(loss) else None}))
    svg_text = render(_dot(first, "backward", full, "", True, id_prefix="t-"), "svg")
    figure = _html.Picture(svg_text.decode("utf-8"), "t-", ("update",))
    return _html.page(title, (("update", "each update: sample, graph, gradient, new w"),),
                      [figure], {}, {}, steps, chart=True)


def _parameter(graph: Graph, k: int) -> Value:
    found = [v for v in graph.values if v.role == "parameter"]
    if len(found) != 1:
        raise ValueError(f"graph {k} has {len(found)} parameters; a training page shows one")
    return found[0]


def _check_step(graph: Graph, k: int, weight: Value, loss: float, g: float, w: float,
                w_next: float, learning_rate: float) -> None:
    """The graph's numbers are the history's, and the update is SGD's (where finite)."""
    numbers = np.array([loss, g, w, w_next])
    if not np.isfinite(numbers).all():
        return
    checks = [("loss", _number(graph.value(graph.output).value), loss),
              ("gradient", _number(weight.adjoint), g),
              ("update", w - learning_rate * g, w_next)]
    for what, shown, recorded in checks:
        if not np.isclose(shown, recorded, rtol=1e-4, atol=1e-6):
            raise ValueError(f"step {k}: w - learning_rate * g = {shown:g}, but the next "
                             f"w is {recorded:g}" if what == "update" else
                             f"step {k}: the graph's {what} is {shown:g}, the history's "
                             f"{recorded:g}")
