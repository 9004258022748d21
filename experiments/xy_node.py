"""The node ``z = x * y``: its local gradients ``dz/dx = y`` and ``dz/dy = x``.

Each node's local gradients come from ``jax.grad`` of the node's own function
(:func:`jaxbackprop.lecture.multiply_node`); they are compared with the closed form and
with the hand-written tape, at the lecture's point and at random points. With ``dL/dz``
known from later in the graph, the chain rule gives ``dL/dx = dL/dz * y``.

    python experiments/xy_node.py [--x 2 --y 3] [--quick] [--out DIR]
"""

from __future__ import annotations

import sys

import numpy as np
from _common import Results, parser, run, table

from jaxbackprop import lecture, tape
from jaxbackprop.cli.common import finite_float

NAME = "xy_node"
COLUMNS = ("x", "y", "z", "dz/dx (jax.grad)", "dz/dy (jax.grad)", "dz/dx (tape)",
           "dz/dy (tape)", "max |vs closed form|")


def product(x, y):
    """The node's function, ``z = x * y``, for the tape."""
    return x * y


def main(args, results: Results) -> int:
    g = lecture.multiply_node(args.x, args.y)
    print(g.table("backward") + "\n")
    results.graph("xy_node", g, views=("local", "backward"))

    rng = np.random.default_rng(0)
    points = [(args.x, args.y)] + [tuple(p) for p in rng.normal(size=(4 if args.quick else 100, 2))]
    rows = []
    for x, y in points:
        node = lecture.multiply_node(float(x), float(y))
        dz_dx, dz_dy = (float(e.value) for e in node.operation("z").local_gradients)
        tape_grads = tape.grad(product, argnums=(0, 1))(float(x), float(y))
        tape_dx, tape_dy = (float(v) for v in tape_grads)
        closed = (float(y), float(x))  # dz/dx = y, dz/dy = x
        found = (dz_dx, dz_dy, tape_dx, tape_dy)
        worst = max(abs(a - b) for a, b in zip(found, closed * 2, strict=True))
        rows.append([float(x), float(y), float(node.value("z").value), dz_dx, dz_dy, tape_dx,
                     tape_dy, worst])
    print(table(COLUMNS, rows[:6]))
    worst = max(row[-1] for row in rows)
    print(f"\nlargest difference from the closed form over {len(rows)} points: {worst:.3g}")
    results.csv("xy_node.csv", COLUMNS, rows)
    results.json("summary.json", {"x": args.x, "y": args.y, "z": rows[0][2], "dz_dx": rows[0][3],
                                  "dz_dy": rows[0][4], "points": len(rows),
                                  "max_abs_difference": worst})
    return 0


if __name__ == "__main__":
    p = parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--x", type=finite_float, default=2.0, help="x (default: %(default)s)")
    p.add_argument("--y", type=finite_float, default=3.0, help="y (default: %(default)s)")
    sys.exit(run(main, p.parse_args()))
