"""``jaxbackprop graph``: the lecture's graphs as DOT, SVG or PNG, for any inputs.

    jaxbackprop graph --example linear --x 1 --y 2 --w 1 --view backward --out g.png
    jaxbackprop graph --example xy --x 2 --y 3 --view local --out xy.svg
    jaxbackprop graph --example linear --jaxpr     # the tape beside jax.grad's jaxpr

Without ``--out`` the DOT text goes to standard output. The format comes from the
suffix of ``--out``: ``.dot`` needs no renderer, ``.svg``, ``.png`` and ``.html`` (a
page that steps through the three steps; ``--view`` does not apply) need
``graphviz-pure`` (``pip install graphviz-pure``) or a system Graphviz ``dot``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaxbackprop.cli.common import (
    CommandError,
    add_backend_option,
    add_x64_option,
    check_float32,
    check_out,
    finite_float,
    on_backend,
    writing,
)

if TYPE_CHECKING:
    from jaxbackprop.graph import Graph, View

EXAMPLES = ("linear", "xy")
VIEWS: tuple[View, ...] = ("forward", "local", "backward")  # jaxbackprop.graph.VIEWS (tested)
GRAPH_SUFFIXES: tuple[str, ...] = (".dot", ".svg", ".png", ".html")  # draw.GRAPH_SUFFIXES (tested)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "graph", help="draw the lecture's graph (DOT, SVG, PNG, or an HTML page that steps "
                      "through it) for any inputs",
        description="Draw the lecture's computational graph with its forward values, local "
                    "gradients and adjoints. linear: y_hat = w*x, s = y_hat - y, L = s^2 "
                    "(x and y are fixed data, drawn as the lecture's red lines); xy: the "
                    "node z = x*y.")
    parser.add_argument("--example", choices=EXAMPLES, default="linear",
                        help="which graph (default: %(default)s)")
    parser.add_argument("--x", type=finite_float, default=None,
                        help="input x (default: the lecture's, 1 for linear, 2 for xy)")
    parser.add_argument("--y", type=finite_float, default=None,
                        help="target y (linear) or second factor y (xy) "
                             "(default: 2 for linear, 3 for xy)")
    parser.add_argument("--w", type=finite_float, default=None,
                        help="weight w, linear only (default: the lecture's w0 = 1)")
    parser.add_argument("--view", choices=VIEWS, default="backward",
                        help="which of the lecture's three steps to show (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="write here (its folder must exist); the suffix picks the format: "
                             f"{', '.join(GRAPH_SUFFIXES)} (default: DOT on standard output)")
    parser.add_argument("--jaxpr", action="store_true",
                        help="also print the tape's steps beside jax.make_jaxpr(jax.grad(loss)) "
                             "(linear only)")
    add_backend_option(parser)
    add_x64_option(parser)
    parser.set_defaults(func=run)


def _build(args: argparse.Namespace) -> Graph:
    from jaxbackprop import lecture

    if args.example == "xy":
        return lecture.multiply_node(*_with_defaults((args.x, args.y), (2.0, 3.0)))
    x, y, w = _with_defaults((args.x, args.y, args.w), lecture.EXAMPLE_FIRST_NOTE)
    return lecture.linear_regression(x, y, w)


def _with_defaults(given: tuple[float | None, ...],
                   defaults: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(d if g is None else g for g, d in zip(given, defaults, strict=True))


def _numbers(graph: Graph) -> dict[str, Any]:
    """Every number the picture shows, by its label."""
    numbers = {}
    for value in graph.values:
        numbers[value.name] = value.value
        numbers[f"dL/d{value.name}"] = value.adjoint
    for operation in graph.operations:
        for edge in operation.local_gradients:
            numbers[f"d{edge.target}/d{edge.source}"] = edge.value
    return numbers


def check_finite(graph: Graph, x64: bool) -> None:
    """Refuse to draw a graph with an inf or NaN in it: the inputs overflow the dtype."""
    import numpy as np

    for label, number in _numbers(graph).items():
        if number is not None and not np.all(np.isfinite(np.asarray(number))):
            raise CommandError(
                f"{label} = {np.asarray(number)} overflows {'float64' if x64 else 'float32'}; "
                f"use smaller --x, --y or --w{'' if x64 else ', or --x64'}")


def check_no_underflow(graph: Graph, args: argparse.Namespace) -> None:
    """Refuse to draw a number that float32 flushes to 0 though it is not 0 (the graph
    built again in float64 says which): the picture would show a gradient of 0."""
    import jax
    import numpy as np

    numbers = sorted(_numbers(graph).items(), key=lambda item: "/" in item[0])  # values first
    zeros = [label for label, number in numbers
             if number is not None and np.all(np.asarray(number) == 0)]
    if args.x64 or not zeros:  # nothing shown as 0: no need to build the graph again
        return
    with jax.enable_x64(True):
        exact = _numbers(_build(args))
    for label in zeros:
        if np.any(np.asarray(exact[label]) != 0):
            raise CommandError(f"{label} = {np.asarray(exact[label]):.4g} underflows float32 to "
                               "0; use larger --x, --y or --w, or --x64")


def run(args: argparse.Namespace) -> int:
    check_out("--out", args.out, GRAPH_SUFFIXES)
    if args.example == "xy" and (args.w is not None or args.jaxpr):
        raise CommandError("--w and --jaxpr apply to --example linear only")
    check_float32(args.x64, x=args.x, y=args.y, w=args.w)
    with on_backend(args.backend, args.x64):
        from jaxbackprop import draw, jaxpr, lecture
        from jaxbackprop.model import loss

        graph = _build(args)
        check_finite(graph, args.x64)
        check_no_underflow(graph, args)
        if args.out is None:
            print(draw.graph_dot(graph, args.view), end="")
        else:
            with writing(repr(str(args.out))):
                path = draw.write_graph(graph, args.out, args.view)
            print(f"wrote {path}")
        if args.jaxpr:
            x, y, w = _with_defaults((args.x, args.y, args.w), lecture.EXAMPLE_FIRST_NOTE)
            print()
            print(jaxpr.side_by_side(loss, w, x, y))
    return 0



