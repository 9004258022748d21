"""``jaxbackprop train``: the lecture's training loop, its trace printed as the notes print it.

    Predict (before training) 4 4.0000
    	grad:  1.0 2.0 -2.0000
    	grad:  2.0 4.0 -7.8400
    	grad:  3.0 6.0 -16.2288
    progress: 0 7.3159
    ...
    predict (after training) 4 7.8049

:func:`trace` makes these lines for this command and for ``jaxbackprop lecture``.
"""

from __future__ import annotations

import argparse
import functools
import math
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np
import optax

from jaxbackprop import io
from jaxbackprop.cli.common import (CommandError, add_backend_option, add_x64_option, enable_x64,
                                    finite_float, on_backend, positive_float, positive_int,
                                    writing)
from jaxbackprop.graph import format_number
from jaxbackprop.lecture import EPOCHS, LEARNING_RATE, W0, X_DATA, X_PREDICT, Y_DATA
from jaxbackprop.model import loss, predict
from jaxbackprop.train import (ENGINES, DivergenceError, Step, TrainHistory, train_per_sample,
                               train_scan)

OUT_FORMATS: tuple[str, ...] = (".json", ".csv", ".html")
# optax.sgd keeping its rate in its state, so that trace(learning_rate=...) is data.
SGD = optax.inject_hyperparams(optax.sgd)(learning_rate=LEARNING_RATE)


def prediction_line(label: str, w: Any) -> str:
    """``<label> 4 <w * 4>``: the model's prediction for the lecture's ``x = 4``."""
    return f"{label} {format_number(X_PREDICT)} {float(predict(w, X_PREDICT)):.4f}"


def step_line(step: Step, samples: int) -> str:
    """The lecture's line for one step; after an epoch's last sample, also its progress line."""
    line = f"\tgrad:  {float(step.x)} {float(step.y)} {float(step.grad):.4f}"
    if step.sample == samples - 1:
        line += f"\nprogress: {step.epoch} {float(step.loss):.4f}"
    return line


def trace(emit: Callable[[str], Any], *, w0: float = W0, learning_rate: float = LEARNING_RATE,
          epochs: int = EPOCHS, engine: str = "jax", fused: bool = False,
          record: str = "steps") -> tuple[Any, TrainHistory]:
    """Train the lecture's model on its data, passing each line of its trace to ``emit``.

    Per-sample SGD with ``optax.sgd`` (:func:`~jaxbackprop.train.train_per_sample`, or
    :func:`~jaxbackprop.train.train_scan` with ``fused``): the prediction for ``x = 4``
    before, each step's gradient, each epoch's last loss, the prediction after.
    Returns ``(params, history)``; a diverging run raises after the lines it reached.
    ``record`` is what the history keeps (the per-sample loop prints every step anyway;
    the fused one replays its steps, so it keeps them all).
    """
    trainer = train_scan if fused else train_per_sample
    emit(prediction_line("Predict (before training)", w0))
    params, history = trainer(loss, w0, X_DATA, Y_DATA, optimizer=SGD, learning_rate=learning_rate,
                              epochs=epochs, engine=engine, record="steps" if fused else record,
                              on_step=lambda step: emit(step_line(step, len(X_DATA))))
    emit(prediction_line("predict (after training)", params))
    return params, history


# ---------------------------------------------------------------------------------------
# Writing the history


def _shortest(value: np.ndarray) -> Any:
    """Nested lists of the shortest decimals that round-trip in the array's dtype
    (``-7.84``, not ``-7.840000152587891``); NaN and inf become ``None`` (JSON has neither)."""
    if value.ndim:
        return [_shortest(v) for v in value]
    number = value[()]
    return float(str(number)) if math.isfinite(number) else None


def _record(history: TrainHistory, args: argparse.Namespace, error: DivergenceError | None) -> dict[str, Any]:
    return {
        "model": "y_hat = w * x", "loss": "(w * x - y) ** 2",
        "optimizer": "optax.sgd", "learning_rate": args.lr, "epochs": args.epochs, "w0": args.w0,
        "engine": args.engine, "trainer": "train_scan" if args.fused else "train_per_sample",
        "dtype": str(history.losses.dtype), "x": list(X_DATA), "y": list(Y_DATA),
        **{field: _shortest(np.asarray(value)) for field, value in history._asdict().items()},
        "diverged": None if error is None else {"epoch": error.epoch, "sample": error.sample,
                                                "message": str(error)},
    }


def _rows(history: TrainHistory, error: DivergenceError | None) -> list[list[Any]]:
    """One CSV row per step taken: epoch, sample, x, y, loss, grad, w after the epoch."""
    epochs, samples = history.losses.shape
    taken = epochs * samples if error is None else error.epoch * samples + error.sample + 1
    rows = []
    for index in range(taken):
        epoch, i = divmod(index, samples)
        rows.append([epoch, i, X_DATA[i], Y_DATA[i], str(history.losses[epoch, i]),
                     str(history.grads[epoch, i]), str(history.params[epoch])])
    return rows


def write_history(path: Path, history: TrainHistory, args: argparse.Namespace,
                  error: DivergenceError | None = None) -> Path:
    """Write the history atomically, as JSON, CSV or the stepping page by the file's suffix."""
    if path.suffix.lower() == ".html":  # the page of cli/figures.py: the steps taken, one by one
        from jaxbackprop.cli import figures

        return figures.write_training_page(path, history, w0=args.w0, learning_rate=args.lr,
                                           steps=len(_rows(history, error)))
    if path.suffix.lower() == ".json":
        return io.write_json_atomic(path, _record(history, args, error))
    header = ["epoch", "sample", "x", "y", "loss", "grad", "w_after_epoch"]
    return io.write_csv_atomic(path, header, _rows(history, error))


# ---------------------------------------------------------------------------------------
# The command


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="the lecture's training loop (per-sample SGD with optax)",
        description="Train w in y_hat = w * x on the lecture's data by per-sample SGD "
                    "(optax.sgd) and print the lecture's trace.")
    parser.add_argument("--lr", type=positive_float, default=LEARNING_RATE,
                        help="learning rate (default: %(default)s)")
    parser.add_argument("--epochs", type=positive_int, default=EPOCHS,
                        help="passes over the data (default: %(default)s)")
    parser.add_argument("--w0", type=finite_float, default=W0,
                        help="initial weight (default: %(default)s)")
    parser.add_argument("--engine", choices=tuple(ENGINES), default="jax",
                        help="gradients from jax.grad or the hand-written tape (default: %(default)s)")
    parser.add_argument("--fused", action="store_true",
                        help="run the whole training as one compiled program (lax.scan)")
    add_backend_option(parser)
    add_x64_option(parser)
    parser.add_argument("--out", metavar="FILE", type=Path, default=None,
                        help="also write the history to FILE (.json, .csv, or .html: a page "
                             "that steps through the updates)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.out is not None and args.out.suffix.lower() not in OUT_FORMATS:
        raise CommandError(f"--out must end in {' or '.join(OUT_FORMATS)}, got {str(args.out)!r}")
    enable_x64(args.x64)
    with on_backend(args.backend):
        print(f"jaxbackprop train: per-sample SGD, optax.sgd(learning_rate={args.lr:g}), "
              f"{args.epochs} epochs, gradients from {'jax.grad' if args.engine == 'jax' else 'the tape'}, "
              f"{'one compiled program' if args.fused else 'one jitted step per sample'}, "
              f"on {jax.default_backend()} ({'float64' if args.x64 else 'float32'})")
        emit = functools.partial(print, flush=True)
        try:
            _, history = trace(emit, w0=args.w0, learning_rate=args.lr, epochs=args.epochs,
                               engine=args.engine, fused=args.fused,
                               record="final" if args.out is None else "steps")
        except DivergenceError as error:
            kept = ""
            if args.out is not None:
                try:
                    kept = f"; the history up to it is in {write_history(args.out, error.history, args, error)}"
                except OSError as write_error:  # report both, the divergence first
                    kept = f"; its history could not be written to {str(args.out)!r}: {write_error}"
            raise CommandError(f"{error}{kept}", code=1) from None
        except ValueError as error:  # e.g. a --lr that is 0 in the training dtype
            raise CommandError(str(error)) from None
        if args.out is not None:
            with writing(str(args.out)):
                print(f"wrote {write_history(args.out, history, args)}")
    return 0
