"""Four engines, one gradient: closed form, ``jax.grad``, the tape, finite differences.

``dL/dw`` of ``L = (w x - y)^2`` by the closed form ``2 (w x - y) x``, by
``jax.grad``, by the hand-written tape and by central finite differences
``(L(w + h) - L(w - h)) / 2h``, all in float64, at the lecture's points (the two worked
examples, the training samples at ``w0``) and at random points. Exits with code 1 if any
engine disagrees with the closed form beyond its tolerance.

    python experiments/engines_agree.py [--points 200] [--seed 0] [--quick] [--out DIR]
"""

from __future__ import annotations

import sys

import jax
import numpy as np
from _common import Results, at_most, parser, run, table

from jaxbackprop import lecture, tape
from jaxbackprop.model import loss, loss_grad

NAME = "engines_agree"
STEP = 1e-6  # finite-difference step
# |engine - closed form| <= rtol * (1 + |closed form|): exact engines, then the estimate
TOLERANCE = {"jax.grad": 1e-12, "tape.grad": 1e-12, "finite differences": 1e-6}
COLUMNS = ("point", "w", "x", "y", "2sx (closed form)", *TOLERANCE, "worst / tolerance")


def finite_difference(w: float, x: float, y: float) -> float:
    """Central difference of the loss in ``w`` (error of order ``STEP**2``)."""
    return (float(loss(w + STEP, x, y)) - float(loss(w - STEP, x, y))) / (2 * STEP)


def points(count: int, seed: int) -> list[tuple[str, float, float, float]]:
    x1, y1, w1 = lecture.EXAMPLE_FIRST_NOTE
    x2, y2, w2 = lecture.EXAMPLE_SECOND_NOTE
    named = [("first note", w1, x1, y1), ("second note", w2, x2, y2)]
    named += [(f"sample {i}", lecture.W0, x, y)
              for i, (x, y) in enumerate(zip(lecture.X_DATA, lecture.Y_DATA, strict=True))]
    rng = np.random.default_rng(seed)
    return named + [(f"random {i}", *map(float, rng.normal(0.0, 3.0, size=3)))
                    for i in range(count)]


def main(args, results: Results) -> int:
    jax.config.update("jax_enable_x64", True)  # float64, so finite differences are meaningful
    rows = []
    for label, w, x, y in points(5 if args.quick else args.points, args.seed):
        closed = float(loss_grad(w, x, y))
        found = {"jax.grad": float(jax.grad(loss)(w, x, y)),
                 "tape.grad": float(tape.grad(loss)(w, x, y)),
                 "finite differences": finite_difference(w, x, y)}
        worst = max(abs(v - closed) / (TOLERANCE[k] * (1 + abs(closed))) for k, v in found.items())
        rows.append([label, w, x, y, closed, *found.values(), worst])
    print(table(COLUMNS, rows[:10]))
    failures = [row[0] for row in rows if row[-1] > 1]
    worst = {name: max(abs(row[5 + i] - row[4]) for row in rows)
             for i, name in enumerate(TOLERANCE)}
    print(f"\n{len(rows)} points; largest |engine - closed form|: "
          + ", ".join(f"{name} {value:.3g}" for name, value in worst.items()))
    print("all engines agree" if not failures else f"DISAGREEMENT at {', '.join(failures)}")
    results.csv("engines.csv", COLUMNS, rows)
    results.json("summary.json", {"points": len(rows), "dtype": "float64",
                                  "finite_difference_step": STEP, "tolerance": TOLERANCE,
                                  "max_abs_difference": worst, "disagreements": failures})
    return 1 if failures else 0


if __name__ == "__main__":
    p = parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--points", type=at_most(100_000), default=200,
                   help="random points, up to 100,000; 5 with --quick (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    sys.exit(run(main, p.parse_args()))
