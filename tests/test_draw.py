"""The pictures: the graph's DOT parsed back for the lecture's numbers, rendering, loss curves.

Expected numbers come from the lecture's text (x=1, y=2, w=1: y_hat=1, s=-1, L=1, the
adjoints -2, the local partials 2s=-2, 1, x=1) or from ``jax.grad``.
"""

from __future__ import annotations

import ast
import base64
import html
import re
import struct
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxbackprop import draw, lecture, tape
from jaxbackprop.cli.main import main
from jaxbackprop.graph import format_number
from jaxbackprop.model import loss

_NODE = re.compile(r'^\s*(\w+) \[label=(?:"((?:[^"\\]|\\.)*)"|([^\s\]]+))(.*)\]$')
_EDGE = re.compile(r'^\s*(\w+) -> (\w+)(?: \[(.*)\])?$')


def parse_dot(dot: str) -> tuple[dict[str, list[str]], list[tuple[str, str, str]]]:
    """Node labels (one entry per label line) by id, and edges ``(source, target, attrs)``."""
    nodes: dict[str, list[str]] = {}
    edges: list[tuple[str, str, str]] = []
    for line in dot.splitlines():
        if match := _NODE.match(line):
            nodes[match[1]] = (match[2] if match[2] is not None else match[3]).split("\\n")
        elif match := _EDGE.match(line):
            edges.append((match[1], match[2], match[3] or ""))
    return nodes, edges


def edge_label(attrs: str) -> str | None:
    match = re.search(r'label=(?:"([^"]*)"|([^\s\]]+))', attrs)
    return (match[1] if match[1] is not None else match[2]) if match else None


def node_named(nodes: dict[str, list[str]], name: str) -> str:
    """The id of the value node whose first label line is ``name = ...``."""
    found = [i for i, lines in nodes.items() if lines[0].startswith(f"{name} = ")]
    assert len(found) == 1, (name, nodes)
    return found[0]


def path_label(nodes: dict[str, list[str]], edges: list[tuple[str, str, str]],
               source: str, target: str) -> str | None:
    """The label on the edge from value ``source`` into the operation that makes ``target``."""
    src, dst = node_named(nodes, source), node_named(nodes, target)
    ops = {b for a, b, _ in edges if a == src} & {a for a, b, _ in edges if b == dst}
    assert len(ops) == 1, (source, target)
    (op,) = ops
    return next(edge_label(attrs) for a, b, attrs in edges if a == src and b == op)


def lines(label: str | None) -> list[str]:
    """An edge label's lines (DOT writes them joined by ``\n``)."""
    return [] if label is None else label.split("\\n")


@pytest.mark.parametrize("make", [lecture.linear_regression,
                                  lambda x, y, w: tape.walkthrough(loss, w, x, y)],
                         ids=["jax.grad per node", "tape walkthrough"])
def test_backward_view_shows_the_lecture_numbers(make) -> None:
    nodes, edges = parse_dot(draw.graph_dot(make(1.0, 2.0, 1.0), "backward"))
    assert nodes[node_named(nodes, "y_hat")] == ["y_hat = 1", "dL/dy_hat = -2"]
    assert nodes[node_named(nodes, "s")] == ["s = -1", "dL/ds = -2"]
    assert nodes[node_named(nodes, "L")] == ["L = 1", "dL/dL = 1"]
    assert nodes[node_named(nodes, "w")] == ["w = 1", "(input)", "dL/dw = -2"]
    # each edge: the chain rule's product, written out with the lecture's numbers
    assert lines(path_label(nodes, edges, "s", "L")) == ["dL/ds = dL/dL * dL/ds", "= 1 * -2 = -2"]
    assert lines(path_label(nodes, edges, "y_hat", "s")) == [
        "dL/dy_hat = dL/ds * ds/dy_hat", "= -2 * 1 = -2"]
    assert lines(path_label(nodes, edges, "w", "y_hat")) == [
        "dL/dw = dL/dy_hat * dy_hat/dw", "= -2 * 1 = -2"]


def test_backward_edges_point_back_from_the_output() -> None:
    _, edges = parse_dot(draw.graph_dot(lecture.linear_regression(), "backward"))
    needed = [attrs for _, _, attrs in edges if "dashed" not in attrs]
    assert len(needed) == 6 and all("dir=back" in attrs for attrs in needed)
    for view in ("forward", "local"):
        assert "dir=back" not in draw.graph_dot(lecture.linear_regression(), view)


def test_fixed_data_are_the_lectures_red_lines_with_greyed_partials() -> None:
    nodes, edges = parse_dot(draw.graph_dot(lecture.linear_regression(1.0, 2.0, 1.0), "local"))
    partials = {"x": "dy_hat/dx = w = 1", "y": "ds/dy = -1"}  # the table's numbers
    for name in ("x", "y"):
        node = node_named(nodes, name)
        assert nodes[node] == [f"{name} = {1 if name == 'x' else 2}", "(input, fixed data)"]
        (attrs,) = [attrs for a, _, attrs in edges if a == node]
        assert "style=dashed" in attrs and "#c0392b" in attrs
        assert f"fontcolor=\"{draw.GREY}\"" in attrs
        assert lines(edge_label(attrs)) == [partials[name], "(not needed)"]


@pytest.mark.parametrize("view, expected", [
    ("forward", ["blue box", "red dashes"]),
    ("local", ["blue box", "red dashes", "the local gradient d out / d in (greyed: not needed)"]),
    ("backward", ["blue box", "red dashes", "blue arrows point back from L"])])
def test_each_view_has_a_legend(view, expected) -> None:
    dot = draw.graph_dot(lecture.linear_regression(), view)
    label = re.search(r"label=<(.*)> labeljust", dot)[1]
    for text in expected:
        assert text in label
    assert "blue box" not in draw.graph_dot(lecture.linear_regression(), view, legend=False)


def test_views_grow_step_by_step() -> None:
    g = lecture.linear_regression(1.0, 2.0, 1.0)
    forward, local, backward = (parse_dot(draw.graph_dot(g, v)) for v in draw.VIEWS)
    labels = lambda parsed: {edge_label(a) for _, _, a in parsed[1]} - {None}  # noqa: E731
    assert labels(forward) == set()
    assert labels(local) == {"dL/ds = 2s = -2", "ds/dy_hat = 1", "dy_hat/dw = x = 1",
                             "dy_hat/dx = w = 1\\n(not needed)", "ds/dy = -1\\n(not needed)"}
    assert "dL/dw = dL/dy_hat * dy_hat/dw\\n= -2 * 1 = -2" in labels(backward)
    every_line = lambda parsed: [l for lines in parsed[0].values() for l in lines]  # noqa: E731,E741
    assert not any(l.startswith("dL/") for l in every_line(forward) + every_line(local))  # noqa: E741
    assert "dL/dw = -2" in every_line(backward)
    assert "rankdir=LR" in draw.graph_dot(g)


@pytest.mark.parametrize("w, x, y", [(0.5, 3.0, -1.0), (-1.25, 0.5, 2.0)])
def test_any_inputs_are_drawn_with_jax_grads_numbers(w: float, x: float, y: float) -> None:
    g = tape.walkthrough(loss, w, x, y)
    nodes, edges = parse_dot(draw.graph_dot(g, "backward"))
    dw = jax.grad(loss)(w, x, y)
    s = w * x - y
    assert f"dL/dw = {format_number(dw)}" in nodes[node_named(nodes, "w")]
    assert lines(path_label(nodes, edges, "s", "L"))[1] == f"= 1 * {format_number(2 * s)} = " \
                                                           f"{format_number(2 * s)}"
    assert lines(path_label(nodes, edges, "w", "y_hat"))[1].endswith(f"= {format_number(dw)}")
    nodes, edges = parse_dot(draw.graph_dot(g, "local"))
    assert path_label(nodes, edges, "w", "y_hat") == f"dy_hat/dw = x = {format_number(x)}"


def test_multiply_node_and_chain_rule_graphs() -> None:
    nodes, edges = parse_dot(draw.graph_dot(lecture.multiply_node(2.0, 3.0), "local"))
    assert path_label(nodes, edges, "x", "z") == "dz/dx = y = 3"
    assert path_label(nodes, edges, "y", "z") == "dz/dy = x = 2"
    assert nodes[node_named(nodes, "x")] == ["x = 2", "(input)"]  # as the text says
    c = lecture.chain_rule(1.5)
    nodes, edges = parse_dot(draw.graph_dot(draw.chain_rule_graph(c), "backward"))
    dz_dx = jax.grad(lambda t: lecture.outer(lecture.inner(t)))(1.5)
    assert f"dz/dx = {format_number(dz_dx)}" in nodes[node_named(nodes, "x")]
    assert "(input)" in nodes[node_named(nodes, "x")]
    assert lines(path_label(nodes, edges, "x", "y")) == [
        "dz/dx = dz/dy * dy/dx",
        f"= {format_number(c.dz_dy)} * {format_number(2 * 1.5)} = {format_number(dz_dx)}"]
    nodes, edges = parse_dot(draw.graph_dot(draw.chain_rule_graph(c), "local"))
    assert path_label(nodes, edges, "x", "y") == f"dy/dx = a'(x) = {format_number(2 * 1.5)}"


def test_constants_and_arrays_get_their_own_labels() -> None:
    def f(w):
        return (w * 2.0).sum()

    nodes, _ = parse_dot(draw.graph_dot(tape.walkthrough(f, np.arange(10.0)), "backward"))
    assert ["2"] in nodes.values()  # the constant fed to mul
    assert nodes[node_named(nodes, "w")][0] == "w = array(10,)"


def test_bad_view_is_named() -> None:
    with pytest.raises(ValueError, match="view must be one of"):
        draw.graph_dot(lecture.linear_regression(), "sideways")  # type: ignore[arg-type]


def svg_texts(svg: str) -> list[str]:
    """The text elements of an SVG, unescaped (Graphviz writes ``-`` as ``&#45;``)."""
    return [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_svg_and_png_are_rendered_left_to_right(tmp_path) -> None:
    g = lecture.linear_regression(1.0, 2.0, 1.0)
    texts = svg_texts(draw.write_graph(g, tmp_path / "g.svg").read_text())
    for text in ("y_hat = 1", "s = -1", "dL/dw = -2", "dL/dy_hat = dL/ds * ds/dy_hat",
                 "= -2 * 1 = -2", "blue box: an input we differentiate with respect to"):
        assert text in texts
    width, height = _png_size(draw.write_graph(g, tmp_path / "g.png").read_bytes())
    assert width > 2 * height  # flows left to right
    assert draw.write_graph(g, tmp_path / "g.dot").read_text() == draw.graph_dot(g)
    with pytest.raises(ValueError, match=r"must end in one of \.dot, \.svg, \.png, \.html"):
        draw.write_graph(g, tmp_path / "g.jpg")


def test_missing_renderer_names_the_package_and_dot_still_works(tmp_path, monkeypatch,
                                                                capsys) -> None:
    monkeypatch.setattr(draw, "RENDERERS", ("no-such-renderer-for-jaxbackprop",))
    g = lecture.linear_regression()
    with pytest.raises(draw.RendererNotFoundError, match="pip install graphviz-pure"):
        draw.render(draw.graph_dot(g), "svg")
    assert draw.write_graph(g, tmp_path / "g.dot").read_text().startswith("digraph")
    assert not (tmp_path / "g.png").exists()
    assert main(["graph", "--out", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install graphviz-pure" in err and "Traceback" not in err
    assert main(["graph", "--out", str(tmp_path / "cli.dot")]) == 0
    assert "dL/dw = -2" in (tmp_path / "cli.dot").read_text()


def test_cli_graph_for_any_inputs(tmp_path, capsys) -> None:
    assert main(["graph", "--example", "linear", "--x", "2", "--y", "4", "--w", "1",
                 "--view", "backward"]) == 0
    nodes, _ = parse_dot(capsys.readouterr().out)
    assert "dL/dw = -8" in nodes[node_named(nodes, "w")]  # the second note's 2sx = -8
    assert main(["graph", "--example", "xy", "--x", "2", "--y", "5", "--view", "local",
                 "--out", str(tmp_path / "xy.svg")]) == 0
    assert "dz/dx = y = 5" in svg_texts((tmp_path / "xy.svg").read_text())
    capsys.readouterr()
    assert main(["graph", "--out", str(tmp_path / "g.pdf")]) == 2
    assert main(["graph", "--example", "xy", "--w", "3"]) == 2
    assert "--w and --jaxpr apply to --example linear only" in capsys.readouterr().err


def test_cli_graph_prints_the_jaxpr_beside_the_tape(capsys) -> None:
    assert main(["graph", "--jaxpr"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digraph")
    line = next(line for line in out.splitlines() if line.startswith("y_hat = mul(w, x) = 1"))
    assert line.split()[-5:] == ["d:f32[]", "=", "mul", "a", "b"]


def test_training_figure_plots_the_given_numbers(tmp_path) -> None:
    losses = np.array([[4.0, 3.0, 2.0], [1.5, 1.0, 0.5]])
    fig = draw.training_figure(losses, losses[:, -1], [1.0, 1.5, 1.8])
    per_step, per_epoch, weight = (ax.lines[0] for ax in fig.axes)
    np.testing.assert_array_equal(per_step.get_ydata(), losses.reshape(-1))
    np.testing.assert_array_equal(per_epoch.get_ydata(), [2.0, 0.5])
    np.testing.assert_array_equal(weight.get_ydata(), [1.0, 1.5, 1.8])
    width, height = _png_size(draw.write_figure(fig, tmp_path / "curve.png").read_bytes())
    assert width > height > 100
    assert draw.write_figure(fig, tmp_path / "curve.svg").read_text().count("<svg") == 1
    with pytest.raises(ValueError, match=r"losses must have shape \(epochs, samples\)"):
        draw.training_figure(np.ones(3), np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="epoch_loss must have shape"):
        draw.training_figure(losses, np.ones(5), np.ones(3))
    with pytest.raises(ValueError, match="figure's file name must end in"):
        draw.write_figure(fig, tmp_path / "curve.gif")


def test_sweep_figure_one_line_per_run() -> None:
    rates = [0.001, 0.01, 0.1]
    finals = np.array([[3.0, 2.0], [0.5, 0.25], [np.inf, 1e-3]])
    fig = draw.sweep_figure(rates, finals)
    (ax,) = fig.axes
    assert len(ax.lines) == 2 and ax.get_xscale() == "log"
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), rates)
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [2.0, 0.25, 1e-3])
    assert np.isnan(ax.lines[0].get_ydata()[2])  # a diverged run is not drawn as a number
    with pytest.raises(ValueError, match="one row per learning rate"):
        draw.sweep_figure(rates, np.ones(4))


def test_lecture_figures(tmp_path) -> None:
    from jaxbackprop.cli import figures

    written = {p.name for p in figures.write_lecture_figures(tmp_path)}
    assert {"lecture_graph.html", "lecture_training.html"} <= written
    for stem in ("lecture_chain_rule", "lecture_xy_node", "lecture_graph_forward",
                 "lecture_graph_local", "lecture_graph_backward"):
        assert {f"{stem}.dot", f"{stem}.svg", f"{stem}.png"} <= written
    nodes, edges = parse_dot((tmp_path / "lecture_graph_backward.dot").read_text())
    assert "dL/dw = -2" in nodes[node_named(nodes, "w")]
    assert lines(path_label(nodes, edges, "s", "L"))[1] == "= 1 * -2 = -2"
    assert "h:f32[] = mul g b" in (tmp_path / "lecture_jaxpr.txt").read_text()
    width, height = _png_size((tmp_path / "lecture_training.png").read_bytes())
    assert width > height


def test_lecture_figures_without_a_renderer_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(draw, "RENDERERS", ("no-such-renderer-for-jaxbackprop",))
    assert main(["lecture", "--figures", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install graphviz-pure" in err
    assert "dL/dw = -2" in (tmp_path / "lecture_graph_backward.dot").read_text()
    assert not (tmp_path / "lecture_graph_backward.png").exists()


def test_an_input_used_twice_labels_each_edge_with_its_own_partial() -> None:
    from jaxbackprop import tape

    dot = draw.graph_dot(tape.walkthrough(lambda x: x / x, 2.0), "local")
    labels = sorted(line.split('label="')[1].split('"')[0] for line in dot.splitlines()
                    if "-> op0" in line)
    assert labels == ["dv1/dx = -v1/x = -0.5", "dv1/dx = 1/x = 0.5"]


def test_figures_and_graphs_show_inline_in_a_fresh_kernel() -> None:
    """A fresh Jupyter kernel (no %matplotlib inline, no pyplot) shows what draw returns."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    cells = ["from jaxbackprop import draw, lecture\n"
             "draw.training_figure([[4.0, 2.0], [1.0, 0.5]], [2.0, 0.5], [1.0, 1.5, 1.8])",
             "lecture.linear_regression()"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(notebook, timeout=240, kernel_name="python3").execute()
    (figure,), (graph,) = (cell.outputs for cell in notebook.cells)
    assert figure.output_type == "execute_result"
    assert base64.b64decode(figure.data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert graph.data["text/html"].startswith("<iframe srcdoc=")
    assert "dL/dw = -2" in svg_texts(graph.data["image/svg+xml"])
    assert graph.data["text/plain"].startswith("Graph(6 values: w, x, y, y_hat, s, L;")


def imported_modules(path: Path) -> set[str]:
    """The jaxbackprop modules a file imports at run time (``if TYPE_CHECKING:`` left out),
    anywhere in it (also inside functions)."""
    tree = ast.parse(path.read_text())
    skipped = {id(node) for guard in ast.walk(tree) if isinstance(guard, ast.If)
               and ast.unparse(guard.test) == "TYPE_CHECKING" for node in ast.walk(guard)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
    return {name for name in found if name.startswith("jaxbackprop")}


def test_draw_takes_results_it_imports_no_training_no_model_and_no_circle() -> None:
    """draw draws what it is given: it imports neither the trainers, the lecture, the
    model nor jaxpr; and jaxpr does not import draw (the draw <-> jaxpr circle is gone)."""
    package = Path(draw.__file__).parent
    drawing = imported_modules(package / "draw.py") | imported_modules(package / "html.py")
    for module in ("train", "lecture", "model", "jaxpr", "cli"):
        assert not any(name.startswith(f"jaxbackprop.{module}") for name in drawing), drawing
    assert not any("draw" in name for name in imported_modules(package / "jaxpr.py"))
    assert "jaxbackprop.draw" in imported_modules(package / "cli" / "figures.py")
