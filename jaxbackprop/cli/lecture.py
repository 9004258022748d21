"""``jaxbackprop lecture``: the lecture notes, section by section, every number from JAX."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import jax

from jaxbackprop import lecture, tape
from jaxbackprop.cli.common import (add_backend_option, add_x64_option, enable_x64, on_backend,
                                    writing)
from jaxbackprop.cli.train import trace
from jaxbackprop.graph import format_number as num
from jaxbackprop.model import loss, loss_grad, predict


def _heading(title: str) -> str:
    return f"{title}\n{'=' * len(title)}"


def chain_rule_section() -> str:
    c = lecture.chain_rule()
    return "\n".join([
        _heading("Chain rule"),
        "y = a(x) = x^2,  z = b(y) = sin(y);  dz/dx = dz/dy * dy/dx",
        f"   x             = {num(c.x)}",
        f"   y = x^2       = {num(c.y)}",
        f"   z = sin(y)    = {num(c.z)}",
        f"   dy/dx = 2x    = {num(c.dy_dx)}      (jax.grad of a)",
        f"   dz/dy = cos(y) = {num(c.dz_dy)}   (jax.grad of b)",
        f"   dz/dx = dz/dy * dy/dx = {num(c.dz_dx_chain)}",
        f"   jax.grad(b(a(x)))     = {num(c.dz_dx_jax)}   (the same)",
    ])


def multiply_node_section() -> str:
    g = lecture.multiply_node()
    return "\n".join([
        _heading("Computational graph: the node z = x * y"),
        "Local gradients: dz/dx = y, dz/dy = x (jax.grad of the node's own function).",
        g.table("local"),
        "With dL/dz known from later in the graph, the chain rule gives "
        "dL/dx = dL/dz * dz/dx and dL/dy = dL/dz * dz/dy.",
    ])


def three_steps_section() -> str:
    x, y, w = lecture.EXAMPLE_FIRST_NOTE
    g = lecture.linear_regression(x, y, w)
    dw_jax = jax.grad(loss)(w, x, y)
    dw_tape = tape.grad(loss)(w, x, y)
    return "\n".join([
        _heading(f"Linear regression, three steps, with numbers: x={num(x)}, y={num(y)}, w={num(w)}"),
        "y_hat = w * x,  s = y_hat - y,  L = s^2",
        g.table("backward"),
        "",
        f"jax.grad(loss)(w, x, y)  = {num(dw_jax)}",
        f"tape.grad(loss)(w, x, y) = {num(dw_tape)}   (the hand-written tape)",
    ])


def second_note_section() -> str:
    x, y, w = lecture.EXAMPLE_SECOND_NOTE
    s = predict(w, x) - y
    return "\n".join([
        _heading("The derivation of the second note"),
        "dloss/ds = 2s,  ds/dy_hat = 1,  dy_hat/dw = x,  so  dloss/dw = 2s * 1 * x = 2sx",
        f"x={num(x)}, y={num(y)}, w={num(w)}:  s = w*x - y = {num(s)}",
        f"   2sx (closed form)        = {num(loss_grad(w, x, y))}",
        f"   jax.grad(loss)(w, x, y)  = {num(jax.grad(loss)(w, x, y))}",
        f"   tape.grad(loss)(w, x, y) = {num(tape.grad(loss)(w, x, y))}",
    ])


def training_section() -> str:
    """The second note's training loop and its trace, through :func:`jaxbackprop.cli.train.trace`."""
    lines = [_heading("Training: per-sample SGD with optax, the notes' loop"),
             f"for each epoch, for each sample: g = dL/dw (jax.grad), "
             f"w = w - {num(lecture.LEARNING_RATE)} * g (optax.sgd)"]
    trace(lines.append)
    return "\n".join(lines)


SECTIONS: tuple[Callable[[], str], ...] = (
    chain_rule_section,
    multiply_node_section,
    three_steps_section,
    second_note_section,
    training_section,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lecture", help="the whole lecture, step by step",
        description="Print the lecture in order: the chain rule, the x*y node, the three "
                    "steps of backpropagation with numbers, the second note's derivation.")
    add_backend_option(parser)
    add_x64_option(parser)
    parser.add_argument("--figures", type=Path, default=None, metavar="DIR",
                        help="also write the lecture's figures (graphs as .dot/.svg/.png, the "
                             "jaxpr beside the tape, the training curves) into DIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    enable_x64(args.x64)
    with on_backend(args.backend):
        print(f"jaxbackprop lecture, on {jax.default_backend()} "
              f"({'float64' if args.x64 else 'float32'})\n")
        for section in SECTIONS:
            print(section(), end="\n\n")
        if args.figures is not None:
            _write_figures(args.figures)
    return 0


def _write_figures(folder: Path) -> None:
    """``--figures DIR``: the lecture's pictures; one-line errors for a missing renderer."""
    from jaxbackprop.cli import figures

    with writing(f"the figures into {str(folder)!r}"):
        written = figures.write_lecture_figures(folder)
    print(f"wrote {len(written)} figures into {folder}/")
