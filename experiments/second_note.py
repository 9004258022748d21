"""The second note's derivation: ``dloss/dw = dloss/ds * ds/dy_hat * dy_hat/dw = 2sx``.

At ``x=2, y=4, w=1`` the note finds ``dloss/dw = -8``. The closed form ``2sx``,
``jax.grad`` and the hand-written tape are compared there and along a range of ``w``,
with the loss ``(w x - y)^2`` and its slope drawn against ``w``.

    python experiments/second_note.py [--quick] [--out DIR]
"""

from __future__ import annotations

import sys

import jax
import numpy as np
from _common import Results, parser, run, table

from jaxbackprop import draw, lecture, tape
from jaxbackprop.model import loss, loss_grad

NAME = "second_note"
COLUMNS = ("w", "loss", "2sx (closed form)", "jax.grad", "tape.grad")


def main(args, results: Results) -> int:
    x, y, w = lecture.EXAMPLE_SECOND_NOTE
    s = w * x - y
    print("dloss/ds = 2s, ds/dy_hat = 1, dy_hat/dw = x  =>  dloss/dw = 2s * 1 * x = 2sx")
    print(f"x={x:g}, y={y:g}, w={w:g}: s = {s:g}, 2sx = {2 * s * x:g}")
    at_note = [w, float(loss(w, x, y)), float(loss_grad(w, x, y)), float(jax.grad(loss)(w, x, y)),
               float(tape.grad(loss)(w, x, y))]
    ws = np.linspace(-1.0, 5.0, 7 if args.quick else 25)
    rows = [[float(v), float(loss(v, x, y)), float(loss_grad(v, x, y)),
             float(jax.grad(loss)(float(v), x, y)), float(tape.grad(loss)(float(v), x, y))]
            for v in ws]
    print(table(COLUMNS, [at_note]) + "\n")
    worst = max(abs(r[i] - r[2]) for r in [at_note] + rows for i in (3, 4))
    print(f"largest |engine - 2sx| over {len(rows)} values of w: {worst:.3g}")
    results.csv("second_note.csv", COLUMNS, rows)
    results.json("summary.json", {"x": x, "y": y, "w": w, "s": s, "closed_form_2sx": at_note[2],
                                  "jax_grad": at_note[3], "tape_grad": at_note[4],
                                  "max_abs_difference": worst})
    columns = np.array(rows).T
    results.figure("loss_and_slope.png", draw.curves_figure(
        columns[0], {"loss (w x - y)^2": columns[1], "dloss/dw = 2sx": columns[2],
                     "jax.grad": columns[3], "tape.grad": columns[4]},
        xlabel="w", ylabel="value",
        title=f"x={x:g}, y={y:g}: slope 2sx = {2 * s * x:g} at w={w:g}, 0 at w=y/x={y / x:g}"))
    results.graph("graph", lecture.linear_regression(x, y, w), views=("backward",))
    return 0


if __name__ == "__main__":
    sys.exit(run(main, parser(NAME, __doc__.splitlines()[0]).parse_args()))
