"""The chain rule: ``z = b(a(x))`` and ``dz/dx = dz/dy * dy/dx``, checked by ``jax.grad``.

With ``a(x) = x^2`` and ``b(y) = sin(y)`` (:mod:`jaxbackprop.lecture`), each piece is
differentiated on its own by ``jax.grad``; the product of the two is compared with
``jax.grad`` of the composite, at one ``x`` (drawn as the lecture's chain) and on a grid.

    python experiments/chain_rule.py [--x 1.5] [--quick] [--out DIR]
"""

from __future__ import annotations

import sys

import numpy as np
from _common import Results, parser, run, table

from jaxbackprop import draw, lecture
from jaxbackprop.cli.common import finite_float

NAME = "chain_rule"
COLUMNS = ("x", "y = a(x)", "z = b(y)", "dy/dx", "dz/dy", "dz/dy * dy/dx", "jax.grad",
           "|difference|")


def main(args, results: Results) -> int:
    c = lecture.chain_rule(args.x)
    print(f"z = b(a(x)) at x = {args.x:g}:  y = {float(c.y):.6g},  z = {float(c.z):.6g}")
    print(f"dz/dy * dy/dx = {float(c.dz_dy):.6g} * {float(c.dy_dx):.6g} "
          f"= {float(c.dz_dx_chain):.6g}")
    print(f"jax.grad(b(a(x)))           = {float(c.dz_dx_jax):.6g}\n")
    results.graph("chain", draw.chain_rule_graph(c), views=("backward",))

    grid = np.linspace(-2.0, 2.0, 9 if args.quick else 81)
    rows = []
    for x in grid:
        r = lecture.chain_rule(float(x))
        values = (r.x, r.y, r.z, r.dy_dx, r.dz_dy, r.dz_dx_chain, r.dz_dx_jax)
        rows.append([float(v) for v in values]
                    + [abs(float(r.dz_dx_chain) - float(r.dz_dx_jax))])
    shown = rows if args.quick else rows[::10]
    print(table(COLUMNS, shown))
    worst = max(row[-1] for row in rows)
    print(f"\nlargest |chain rule - jax.grad| over {len(rows)} points: {worst:.3g}")
    results.csv("chain_rule.csv", COLUMNS, rows)
    results.json("summary.json", {
        "x": args.x, "y": float(c.y), "z": float(c.z), "dy_dx": float(c.dy_dx),
        "dz_dy": float(c.dz_dy), "dz_dx_chain": float(c.dz_dx_chain),
        "dz_dx_jax": float(c.dz_dx_jax), "grid_points": len(rows), "max_abs_difference": worst})
    columns = np.array(rows).T
    results.figure("chain_rule.png", draw.curves_figure(
        columns[0], {"z = sin(x^2)": columns[2], "dz/dy * dy/dx": columns[5],
                     "jax.grad(b(a(x)))": columns[6]},
        xlabel="x", ylabel="value", title="the chain rule against jax.grad"))
    return 0


if __name__ == "__main__":
    p = parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--x", type=finite_float, default=1.5, help="the point x (default: %(default)s)")
    sys.exit(run(main, p.parse_args()))
