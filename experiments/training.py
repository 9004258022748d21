"""The training loop of the second note: per-sample SGD (optax) on x=[1,2,3], y=[2,4,6].

Prints the lecture's trace (``grad: x y dL/dw`` per sample, ``progress: epoch loss``
per epoch, the prediction at x=4 before and after), replays the same training as one
compiled ``lax.scan`` program to check it follows the same trajectory, and draws the
loss per step, per epoch and the weight's path.

    python experiments/training.py [--engine jax|tape] [--epochs 10] [--quick] [--out DIR]
"""

from __future__ import annotations

import sys

import numpy as np
import optax
from _common import Results, parser, run

from jaxbackprop import draw, lecture, train
from jaxbackprop.cli.common import positive_float, positive_int
from jaxbackprop.cli.train import trace
from jaxbackprop.model import loss, predict

NAME = "training"


def main(args, results: Results) -> int:
    epochs = 2 if args.quick else args.epochs
    # The notes' trace, printed by the same code as `jaxbackprop train`.
    w, history = trace(print, learning_rate=args.lr, epochs=epochs, engine=args.engine)
    rows = [[epoch, i, x, y, float(history.losses[epoch, i]), float(history.grads[epoch, i])]
            for epoch in range(epochs)
            for i, (x, y) in enumerate(zip(lecture.X_DATA, lecture.Y_DATA, strict=True))]
    _, fused = train.train_scan(loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
                                optimizer=optax.sgd(args.lr), epochs=epochs, engine=args.engine)
    gap = float(np.max(np.abs(np.asarray(fused.losses) - np.asarray(history.losses))))
    print(f"\nthe same training as one lax.scan program: largest loss difference {gap:.3g}")

    path = np.concatenate([[lecture.W0], np.asarray(history.params).reshape(-1)])
    results.csv("trace.csv", ("epoch", "sample", "x", "y", "loss", "dL/dw"), rows)
    results.json("history.json", {
        "engine": args.engine, "learning_rate": args.lr, "epochs": epochs,
        "epoch_loss": np.asarray(history.epoch_loss).tolist(), "w": path.tolist(),
        "prediction_before": float(predict(lecture.W0, lecture.X_PREDICT)),
        "prediction_after": float(predict(w, lecture.X_PREDICT)), "scan_max_loss_difference": gap})
    results.figure("training.png", draw.training_figure(history.losses, history.epoch_loss, path))
    return 0


if __name__ == "__main__":
    p = parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--engine", choices=tuple(train.ENGINES), default="jax",
                   help="who computes dL/dw: jax.grad or the hand-written tape "
                        "(default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=lecture.EPOCHS,
                   help="epochs, 2 with --quick (default: %(default)s)")
    p.add_argument("--lr", type=positive_float, default=lecture.LEARNING_RATE,
                   help="SGD learning rate (default: %(default)s)")
    sys.exit(run(main, p.parse_args()))
