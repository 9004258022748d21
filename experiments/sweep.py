"""A learning-rate sweep: the lecture's training for many learning rates and initial weights.

Every run is the second note's per-sample SGD on x=[1,2,3], y=[2,4,6] for 10 epochs; all
runs train at once (``jax.vmap`` of one compiled ``lax.scan`` program). The optimizer is
``optax.sgd`` built by ``optax.inject_hyperparams`` with one learning rate per run. For this data
(``y = 2x``) a step on sample x multiplies the error ``w - 2`` by ``1 - 2 lr x^2``, so an
epoch multiplies it by ``(1 - 2 lr)(1 - 8 lr)(1 - 18 lr)``: the sweep shows the final
loss falling with the rate, then blowing up once that product's size passes 1.

    python experiments/sweep.py [--rates 25] [--quick] [--out DIR]
"""

from __future__ import annotations

import sys

import numpy as np
import optax
from _common import Results, parser, run, table

from jaxbackprop import draw, lecture, train
from jaxbackprop.cli.common import positive_int
from jaxbackprop.model import loss

NAME = "sweep"
W0S = (lecture.W0, -1.0, 4.0)  # the lecture's w0, then one on each side of the solution w=2


def main(args, results: Results) -> int:
    rates = np.logspace(-3, np.log10(0.5), 5 if args.quick else args.rates)
    w0s = np.asarray(W0S[:1] if args.quick else W0S)
    grid_w0, grid_rate = np.meshgrid(w0s, rates)  # (rates, w0s)
    sgd = optax.inject_hyperparams(optax.sgd)(learning_rate=grid_rate)  # one rate per run
    final_w, history = train.sweep(loss, grid_w0, lecture.X_DATA, lecture.Y_DATA, optimizer=sgd,
                                   epochs=lecture.EPOCHS, record="epochs")
    final_loss = np.asarray(history.epoch_loss)[..., -1]
    rows = [[float(r), float(w0), float(w), float(loss_)]
            for r, w0, w, loss_ in zip(grid_rate.ravel(), grid_w0.ravel(), np.ravel(final_w),
                                       final_loss.ravel(), strict=True)]
    header = ("learning rate", "w0", "final w", "final loss")
    print(table(header, [[f"{r:.4g}", w0, f"{w:.6g}", f"{loss_:.3g}"] for r, w0, w, loss_ in rows
                         if w0 == lecture.W0]))
    finite = np.isfinite(final_loss[:, 0])
    best = int(np.nanargmin(np.where(finite, final_loss[:, 0], np.nan)))
    print(f"\n{len(rows)} trainings of {lecture.EPOCHS} epochs; from w0={lecture.W0:g} the "
          f"lowest final loss {final_loss[best, 0]:.3g} is at learning rate {rates[best]:.3g}")
    results.csv("sweep.csv", header, rows)
    finite_loss = np.where(np.isfinite(final_loss), final_loss, None)  # JSON has no inf/NaN
    results.json("summary.json", {"learning_rates": rates.tolist(), "w0": w0s.tolist(),
                                  "final_loss": finite_loss.tolist(),
                                  "best_learning_rate_from_lecture_w0": float(rates[best])})
    fig = draw.sweep_figure(rates, final_loss, labels=[f"w0 = {w:g}" for w in w0s],
                            title=f"per-sample SGD, final loss after {lecture.EPOCHS} epochs")
    results.figure("sweep.png", fig)
    return 0


if __name__ == "__main__":
    p = parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--rates", type=positive_int, default=25,
                   help="learning rates between 1e-3 and 0.5, 5 with --quick "
                        "(default: %(default)s)")
    sys.exit(run(main, p.parse_args()))
