"""Pictures: the lecture's graphs drawn from the computation, and loss curves.

A :class:`~jaxbackprop.graph.Graph` (from :func:`jaxbackprop.lecture.linear_regression`,
:func:`jaxbackprop.lecture.multiply_node` or :func:`jaxbackprop.tape.walkthrough`) is
drawn as DOT text, flowing left to right like the lecture's figures, in one of three
views that follow the lecture's three steps:

* ``"forward"``: a node per value with its number (``y_hat = 1``), a node per primitive;
* ``"local"``: each edge ``a -> op`` also carries the local partial
  ``d out / d a`` as formula and number (``dy_hat/dw = x = 1``);
* ``"backward"``: each value also carries its adjoint ``dL/dv`` (``dL/dw = -2``).

Edges from fixed data (role ``"data"``: the lecture's ``x`` and ``y``) are the lecture's
red lines: dashed, red, no partial drawn, because training never needs them.

:func:`graph_dot` always works (it needs only the ``graphviz`` Python package, which
writes DOT). :func:`render` turns DOT into SVG or PNG with the ``graphviz-pure``
renderer (``pip install graphviz-pure``) or a system Graphviz ``dot``; without either it
raises :class:`RendererNotFoundError` saying what to install.

Loss curves are matplotlib figures made with the object API on the Agg canvas (no
``pyplot``, no global state): :func:`training_figure` and :func:`sweep_figure`;
:func:`write_figure` and :func:`write_graph` save atomically, the format from the suffix.
Nothing here prints.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

import numpy as np

from jaxbackprop.graph import VIEWS, Graph, LocalGradient, Operation, Value, View, format_number
from jaxbackprop.io import write_bytes_atomic, write_text_atomic
from jaxbackprop.lecture import ChainRule

if TYPE_CHECKING:
    import graphviz
    from matplotlib.figure import Figure

ImageFormat = Literal["svg", "png"]
GRAPH_SUFFIXES: tuple[str, ...] = (".dot", ".svg", ".png")
FIGURE_SUFFIXES: tuple[str, ...] = (".png", ".svg", ".pdf")

# Renderers tried in order: the pip-installable one first, then a system Graphviz.
RENDERERS: tuple[str, ...] = ("graphviz-pure", "dot")
INSTALL_HINT = "pip install graphviz-pure"
ZERO_DRAWN_AT = 1e-15  # where a log-scale loss plot puts an exact 0

# How the lecture writes its operations inside the graph's round nodes.
# (lecture.py's graph has "square"; the tape's walkthrough writes ``integer_pow[n=2]``.)
_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "neg": "-x", "square": "^2"}
_POWER = "integer_pow[n="
_LARGEST_SHOWN = 6  # arrays with more elements are drawn as their shape
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


def format_value(value: Any) -> str:
    """A value for a label: scalars as the lecture prints them, arrays of more than six
    elements by their shape (``array(3, 4)``)."""
    array = np.asarray(value) if value is not None else None
    if array is not None and array.size > _LARGEST_SHOWN:
        return f"array{array.shape}"
    return format_number(value)


def _adjoint_name(graph: Graph, value_name: str) -> str:
    return f"d{graph.output}/d{value_name}"


def partial_label(edge: LocalGradient) -> str:
    """The local partial on an edge, as the lecture writes it: ``dy_hat/dw = x = 1``."""
    text = f"d{edge.target}/d{edge.source} = {edge.formula}"
    if edge.value is not None and format_value(edge.value) != edge.formula:
        text += f" = {format_value(edge.value)}"
    return text


def _value_label(graph: Graph, value: Value, view: View) -> str:
    lines = [f"{value.name} = {format_value(value.value)}"]
    if value.role != "intermediate":
        lines.append("(fixed data)" if value.role == "data" else "(parameter)")
    if view == "backward" and value.role != "data":
        lines.append(f"{_adjoint_name(graph, value.name)} = {format_value(value.adjoint)}")
    return "\\n".join(lines)


def _value_style(graph: Graph, value: Value) -> dict[str, str]:
    if value.role == "parameter":
        return {"style": "filled,rounded", "fillcolor": "#dbe9f6"}
    if value.role == "data":
        return {"style": "filled,rounded", "fillcolor": "#f3f3f3", "color": "#c0392b",
                "fontcolor": "#555555"}
    if value.name == graph.output:
        return {"penwidth": "2"}
    return {}


def graph_dot(graph: Graph, view: View = "backward", *, title: str | None = None) -> str:
    """The DOT text of ``graph`` in one of the lecture's three views (see the module doc).

    Node ids are ``v<i>`` (values, in ``graph.values`` order), ``op<i>`` (operations) and
    ``c<i>_<j>`` (constants fed to an operation); labels use ``\\n`` between lines.
    ``title`` defaults to the view's step of the lecture.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    dot = _require("graphviz").Digraph("backprop")
    if title is None:
        title = _VIEW_TITLES[view].format(output=graph.output)
    dot.attr(rankdir="LR", nodesep="0.5", ranksep="0.6", fontname="Helvetica", label=title,
             labelloc="t", fontsize="16")
    dot.attr("node", fontname="Helvetica", fontsize="12", shape="box", style="rounded")
    dot.attr("edge", fontname="Helvetica", fontsize="11")
    ids = {v.name: f"v{i}" for i, v in enumerate(graph.values)}
    for value in graph.values:
        dot.node(ids[value.name], _value_label(graph, value, view), **_value_style(graph, value))
    for i, op in enumerate(graph.operations):
        _draw_operation(dot, graph, op, f"op{i}", ids, view)
    return dot.source


def _draw_operation(dot: graphviz.Digraph, graph: Graph, op: Operation, op_id: str,
                    ids: dict[str, str], view: View) -> None:
    symbol = (f"^{op.primitive[len(_POWER):-1]}" if op.primitive.startswith(_POWER)
              else _SYMBOLS.get(op.primitive, op.primitive))
    dot.node(op_id, symbol, shape="circle" if len(symbol) <= 2 else "ellipse", style="",
             fontsize="14", margin="0.04")
    # Local gradients come one per variable input, in input order (constants have none):
    # pair them by position, so that an input used twice (x * x) labels both its edges.
    partials = iter(op.local_gradients)
    for j, source in enumerate(op.inputs):
        if source not in ids:  # a constant such as the 2 in ``x * 2``
            const_id = f"c{op_id[2:]}_{j}"
            dot.node(const_id, source, shape="plaintext", style="")
            dot.edge(const_id, op_id, color="#888888")
            continue
        partial = next(partials, None)
        if graph.value(source).role == "data":  # the lecture's red lines
            dot.edge(ids[source], op_id, color="#c0392b", style="dashed")
            continue
        labelled = view != "forward" and partial is not None
        dot.edge(ids[source], op_id, color="#1f4e79" if view == "backward" else "black",
                 **({"label": partial_label(partial)} if labelled else {}))
    dot.edge(op_id, ids[op.output])


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
    """Save ``graph`` in ``view`` to ``path`` atomically: ``.dot`` (DOT text, no renderer
    needed), ``.svg`` or ``.png`` (rendered by :func:`render`)."""
    path = Path(path)
    suffix = _suffix(path, GRAPH_SUFFIXES, "the graph's file name")
    dot = graph_dot(graph, view, title=title)
    if suffix == ".dot":
        return write_text_atomic(path, dot)
    return write_bytes_atomic(path, render(dot, suffix[1:]))  # type: ignore[arg-type]


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
    """A figure on the Agg canvas (no pyplot, no global backend state)."""
    _require("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def training_figure(losses: Any, epoch_loss: Any, params: Any, *,
                    title: str = "per-sample SGD on the lecture's data") -> Figure:
    """Three panels of one training run.

    ``losses`` has shape ``(epochs, samples)``: the loss of each step, drawn against the
    step number ``epoch * samples + i``; ``epoch_loss`` has shape ``(epochs,)``: the
    loss the lecture prints after each epoch (``progress: epoch loss``); ``params`` is
    the trajectory of the scalar weight ``w`` (``w0`` first, then one per epoch or step).
    """
    losses = np.asarray(losses, dtype=float)
    epoch_loss = np.asarray(epoch_loss, dtype=float)
    params = np.asarray(params, dtype=float).reshape(-1)
    if losses.ndim != 2:
        raise ValueError(f"losses must have shape (epochs, samples), got {losses.shape}")
    if epoch_loss.shape != (losses.shape[0],):
        raise ValueError(f"epoch_loss must have shape ({losses.shape[0]},) to match losses "
                         f"{losses.shape}, got {epoch_loss.shape}")
    fig, (ax_step, ax_epoch, ax_w) = _new_figure(3, 11.0)
    ax_step.plot(np.arange(losses.size), losses.reshape(-1), marker=".", lw=1)
    ax_step.set(xlabel="step (one sample)", ylabel="loss (w x - y)^2", title="per step", yscale="log")
    ax_epoch.plot(np.arange(epoch_loss.size), epoch_loss, marker="o", lw=1.5)
    ax_epoch.set(xlabel="epoch", ylabel="loss of the epoch's last sample", title="per epoch",
                 yscale="log")
    ax_w.plot(np.arange(params.size), params, marker="o", lw=1.5, color="tab:green")
    ax_w.set(xlabel="update" if params.size > epoch_loss.size + 1 else "epoch (0 = w0)",
             ylabel="w", title="the weight w")
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
# The lecture's figures, all at once


def write_lecture_figures(folder: str | os.PathLike[str]) -> list[Path]:
    """Write the lecture's figures into ``folder`` and return their paths.

    ``lecture_chain_rule_*``, ``lecture_xy_node_*`` and ``lecture_graph_{forward,local,
    backward}`` (the linear regression at the first note's ``x=1, y=2, w=1``), each as
    ``.dot``, ``.svg`` and ``.png``; ``lecture_jaxpr.txt`` (the tape beside
    ``jax.make_jaxpr(jax.grad(loss))``); ``lecture_training.png`` (the second note's
    training: loss per step, per epoch, and ``w``). Everything that needs no renderer is
    written first; without one, :class:`RendererNotFoundError` is raised at the end.
    """
    from jaxbackprop import jaxpr, lecture, train  # the figures' sources, imported on use
    from jaxbackprop.model import loss

    folder = Path(folder)
    x, y, w = lecture.EXAMPLE_FIRST_NOTE
    linear = lecture.linear_regression(x, y, w)  # one graph, drawn in each of its three views
    graphs: list[tuple[str, Graph, View]] = [
        ("lecture_chain_rule", chain_rule_graph(lecture.chain_rule()), "backward"),
        ("lecture_xy_node", lecture.multiply_node(), "local"),
    ] + [(f"lecture_graph_{view}", linear, view) for view in VIEWS]
    written = [write_graph(graph, folder / f"{stem}.dot", view) for stem, graph, view in graphs]
    written.append(write_text_atomic(folder / "lecture_jaxpr.txt", jaxpr.side_by_side(loss, w, x, y) + "\n"))
    _, history = train.train_per_sample(loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
                                        learning_rate=lecture.LEARNING_RATE, epochs=lecture.EPOCHS)
    path = np.concatenate([[lecture.W0], np.asarray(history.params).reshape(-1)])
    written.append(write_figure(training_figure(history.losses, history.epoch_loss, path),
                                folder / "lecture_training.png"))
    for stem, graph, view in graphs:
        written += [write_graph(graph, folder / f"{stem}{suffix}", view) for suffix in (".svg", ".png")]
    return written
