"""The three steps with numbers: forward pass, local gradients, backward pass.

The lecture's linear regression ``y_hat = w * x``, ``s = y_hat - y``, ``L = s^2`` at
``x=1, y=2, w=1`` (or any inputs): every node's value, every edge's local gradient
(``jax.grad`` of the node's own function), every adjoint by the chain rule; the graph
drawn in the three views; and ``jax.make_jaxpr(jax.grad(loss))`` beside the tape.

    python experiments/three_steps.py [--x 1 --y 2 --w 1] [--quick] [--out DIR]
"""

from __future__ import annotations

import sys

import jax
from _common import Results, parser, run

from jaxbackprop import jaxpr, lecture, tape
from jaxbackprop.cli.common import finite_float
from jaxbackprop.model import loss

NAME = "three_steps"


def main(args, results: Results) -> int:
    g = lecture.linear_regression(args.x, args.y, args.w)
    steps = g.table("backward")
    side = jaxpr.side_by_side(loss, args.w, args.x, args.y)
    dw_jax = float(jax.grad(loss)(args.w, args.x, args.y))
    dw_tape = float(tape.grad(loss)(args.w, args.x, args.y))
    print(f"x={args.x:g}, y={args.y:g}, w={args.w:g}\n\n{steps}\n")
    print(f"jax.grad(loss)  = {dw_jax:g}\ntape.grad(loss) = {dw_tape:g}\n\n{side}")
    results.text("three_steps.txt", steps)
    results.text("jaxpr_beside_tape.txt", side)
    results.graph("graph", g)
    results.json("numbers.json", {
        "inputs": {"x": args.x, "y": args.y, "w": args.w},
        "forward": {op.output: float(g.value(op.output).value) for op in g.operations},
        "local_gradients": {f"d{e.target}/d{e.source}": {"formula": e.formula,
                                                        "value": float(e.value)}
                            for op in g.operations for e in op.local_gradients},
        "adjoints": {f"dL/d{v.name}": float(v.adjoint) for v in g.values if v.role != "data"},
        "dL_dw": {"jax.grad": dw_jax, "tape.grad": dw_tape},
    })
    return 0


if __name__ == "__main__":
    x, y, w = lecture.EXAMPLE_FIRST_NOTE
    p = parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--x", type=finite_float, default=x, help="input x (default: %(default)s)")
    p.add_argument("--y", type=finite_float, default=y, help="target y (default: %(default)s)")
    p.add_argument("--w", type=finite_float, default=w, help="weight w (default: %(default)s)")
    sys.exit(run(main, p.parse_args()))
