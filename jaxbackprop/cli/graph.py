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

from jaxbackprop import draw, jaxpr, lecture
from jaxbackprop.cli.common import (CommandError, add_backend_option, add_x64_option, enable_x64,
                                    finite_float, on_backend, writing)
from jaxbackprop.graph import VIEWS, Graph
from jaxbackprop.model import loss

EXAMPLES = ("linear", "xy")


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
                        help="write here; the suffix picks the format: "
                             f"{', '.join(draw.GRAPH_SUFFIXES)} (default: DOT on standard output)")
    parser.add_argument("--jaxpr", action="store_true",
                        help="also print the tape's steps beside jax.make_jaxpr(jax.grad(loss)) "
                             "(linear only)")
    add_backend_option(parser)
    add_x64_option(parser)
    parser.set_defaults(func=run)


def _build(args: argparse.Namespace) -> Graph:
    if args.example == "xy":
        if args.w is not None or args.jaxpr:
            raise CommandError("--w and --jaxpr apply to --example linear only")
        return lecture.multiply_node(*_with_defaults((args.x, args.y), (2.0, 3.0)))
    x, y, w = _with_defaults((args.x, args.y, args.w), lecture.EXAMPLE_FIRST_NOTE)
    return lecture.linear_regression(x, y, w)


def _with_defaults(given: tuple[float | None, ...], defaults: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(d if g is None else g for g, d in zip(given, defaults))


def run(args: argparse.Namespace) -> int:
    enable_x64(args.x64)
    if args.out is not None and args.out.suffix.lower() not in draw.GRAPH_SUFFIXES:
        raise CommandError(f"--out must end in one of {', '.join(draw.GRAPH_SUFFIXES)}, "
                           f"got {str(args.out)!r}")
    with on_backend(args.backend):
        graph = _build(args)
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
