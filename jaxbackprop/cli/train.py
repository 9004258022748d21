r"""``jaxbackprop train``: the lecture's training loop, its trace printed as the notes print it.

    Predict (before training) 4 4.0000
    \tgrad:  1.0 2.0 -2.0000
    \tgrad:  2.0 4.0 -7.8400
    \tgrad:  3.0 6.0 -16.2288
    progress: 0 7.3159
    ...
    predict (after training) 4 7.8049

:func:`trace` makes these lines for this command and for ``jaxbackprop lecture``. The
trace is printed as the training goes; without ``--out`` no history is kept, so memory
does not grow with ``--epochs``. With ``--out`` the history's size is checked against the
memory available before the training starts.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import resource
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from jaxbackprop.cli.common import (
    CommandError,
    add_backend_option,
    add_x64_option,
    check_float32,
    check_out,
    check_rate_float32,
    finite_float,
    on_backend,
    positive_float,
    positive_int,
    writing,
)

if TYPE_CHECKING:
    import numpy as np
    import optax

    from jaxbackprop.train import DivergenceError, Step, TrainHistory

OUT_FORMATS: tuple[str, ...] = (".json", ".csv", ".html")
# jaxbackprop.train.ENGINES and len(lecture.X_DATA), here without importing them (tested)
ENGINES: tuple[Literal["jax", "tape"], ...] = ("jax", "tape")
SAMPLES = 3

# Memory one step of history takes: kept by the trainer (a loss and a gradient, on the
# device and on the host), and when written, the Python numbers and text of the JSON or
# CSV made from them (measured, rounded up). For float32; float64 takes twice as much.
BYTES_PER_STEP: dict[str | None, int] = {None: 16, ".json": 200, ".csv": 500}


def prediction_line(label: str, w: Any) -> str:
    """``<label> 4 <w * 4>``: the model's prediction for the lecture's ``x = 4``."""
    from jaxbackprop.graph import format_number
    from jaxbackprop.lecture import X_PREDICT
    from jaxbackprop.model import predict

    return f"{label} {format_number(X_PREDICT)} {float(predict(w, X_PREDICT)):.4f}"


def step_line(step: Step, samples: int) -> str:
    """The lecture's line for one step; after an epoch's last sample, also its progress line."""
    line = f"\tgrad:  {float(step.x)} {float(step.y)} {float(step.grad):.4f}"
    if step.sample == samples - 1:
        line += f"\nprogress: {step.epoch} {float(step.loss):.4f}"
    return line


@functools.cache
def lecture_sgd() -> optax.GradientTransformation:
    """``optax.sgd`` keeping its rate in its state (``inject_hyperparams``), so that the
    trainers take ``learning_rate=`` as data: built once, compiled once."""
    import optax

    from jaxbackprop import lecture

    return optax.inject_hyperparams(optax.sgd)(learning_rate=lecture.LEARNING_RATE)


def trace(emit: Callable[[str], Any], *, w0: float | None = None,
          learning_rate: float | None = None, epochs: int | None = None,
          engine: Literal["jax", "tape"] = "jax", fused: bool = False,
          record: Literal["steps", "epochs", "final"] = "steps") -> tuple[Any, TrainHistory]:
    """Train the lecture's model on its data, passing each line of its trace to ``emit``.

    Per-sample SGD with ``optax.sgd`` (:func:`~jaxbackprop.train.train_per_sample`, or
    :func:`~jaxbackprop.train.train_scan` with ``fused``): the prediction for ``x = 4``
    before, each step's gradient, each epoch's last loss, the prediction after. ``None``
    stands for the lecture's value. ``record`` is what the history keeps: the per-sample
    loop prints every step whatever it keeps; the fused one replays its steps from the
    history, so it keeps them all. Returns ``(params, history)``; a diverging run raises
    after the lines it reached.
    """
    from jaxbackprop import lecture
    from jaxbackprop.model import loss
    from jaxbackprop.train import train_per_sample, train_scan

    w0 = lecture.W0 if w0 is None else w0
    trainer = train_scan if fused else train_per_sample
    emit(prediction_line("Predict (before training)", w0))
    params, history = trainer(
        loss, w0, lecture.X_DATA, lecture.Y_DATA, optimizer=lecture_sgd(),
        learning_rate=lecture.LEARNING_RATE if learning_rate is None else learning_rate,
        epochs=lecture.EPOCHS if epochs is None else epochs, engine=engine,
        record="steps" if fused else record,
        on_step=lambda step: emit(step_line(step, len(lecture.X_DATA))))
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


def _record(history: TrainHistory, args: argparse.Namespace,
            error: DivergenceError | None) -> dict[str, Any]:
    import numpy as np

    from jaxbackprop.lecture import X_DATA, Y_DATA

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
    from jaxbackprop.lecture import X_DATA, Y_DATA

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
    from jaxbackprop import io

    if path.suffix.lower() == ".html":  # the page of cli/figures.py: the steps taken, one by one
        from jaxbackprop.cli import figures

        return figures.write_training_page(path, history, w0=args.w0, learning_rate=args.lr,
                                           steps=len(_rows(history, error)))
    if path.suffix.lower() == ".json":
        return io.write_json_atomic(path, _record(history, args, error))
    header = ["epoch", "sample", "x", "y", "loss", "grad", "w_after_epoch"]
    return io.write_csv_atomic(path, header, _rows(history, error))


# ---------------------------------------------------------------------------------------
# Memory, checked before the training starts


def available_memory() -> int:
    """Bytes this process may still take: the system's available memory, capped by the
    process's address-space limit (``ulimit -v``) less what it already maps."""
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except OSError:
        pass
    limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    if limit != resource.RLIM_INFINITY:
        try:
            with open("/proc/self/statm", encoding="ascii") as statm:
                mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            mapped = 0
        available = min(available, limit - mapped)
    return available


def check_memory(epochs: int | None, out: Path | None, x64: bool, fused: bool) -> None:
    """Refuse, before any work (JAX not even imported), a history that does not fit in
    memory. ``epochs=None`` is the lecture's 10, which always fits. Without ``--out`` the
    per-sample loop keeps no history (``record="final"``); the fused one keeps every step
    to print them."""
    if epochs is None or (out is None and not fused):
        return
    steps = epochs * SAMPLES
    suffix = None if out is None else out.suffix.lower()
    per_step = BYTES_PER_STEP.get(suffix, BYTES_PER_STEP[".csv"])  # other formats: as CSV
    needed = steps * per_step * (2 if x64 else 1)
    available = available_memory()
    if needed > available:
        why = "--fused" if out is None else f"--out {str(out)!r}"
        remedy = ("leave out --fused (the per-sample loop prints without keeping)"
                  if out is None else "leave out --out (the printed trace keeps no history)")
        raise CommandError(
            f"--epochs {epochs} with {why} keeps {steps:,} steps of history, "
            f"about {needed / 2**30:,.1f} GiB, but {max(available, 0) / 2**30:,.1f} GiB of "
            f"memory is available; use fewer --epochs (at most about "
            f"{max(available, 0) // (needed // epochs):,}), or {remedy}")


# ---------------------------------------------------------------------------------------
# The command


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="the lecture's training loop (per-sample SGD with optax)",
        description="Train w in y_hat = w * x on the lecture's data by per-sample SGD "
                    "(optax.sgd) and print the lecture's trace as it goes.")
    parser.add_argument("--lr", type=positive_float, default=None,
                        help="learning rate (default: the lecture's, 0.01)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="passes over the data (default: the lecture's, 10)")
    parser.add_argument("--w0", type=finite_float, default=None,
                        help="initial weight (default: the lecture's, 1)")
    parser.add_argument("--engine", choices=ENGINES, default="jax",
                        help="gradients from jax.grad or the hand-written tape "
                             "(default: %(default)s)")
    parser.add_argument("--fused", action="store_true",
                        help="run the whole training as one compiled program (lax.scan)")
    add_backend_option(parser)
    add_x64_option(parser)
    parser.add_argument("--out", metavar="FILE", type=Path, default=None,
                        help="also write the history to FILE (.json, .csv, or .html: a page "
                             "that steps through the updates; its folder must exist)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_out("--out", args.out, OUT_FORMATS)
    check_float32(args.x64, lr=args.lr, w0=args.w0)
    check_rate_float32(args.x64, "lr", args.lr)
    check_memory(args.epochs, args.out, args.x64, args.fused)
    with on_backend(args.backend, args.x64) as backend:
        from jaxbackprop import lecture
        from jaxbackprop.train import DivergenceError

        args.lr = lecture.LEARNING_RATE if args.lr is None else args.lr
        args.epochs = lecture.EPOCHS if args.epochs is None else args.epochs
        args.w0 = lecture.W0 if args.w0 is None else args.w0
        print(f"jaxbackprop train: per-sample SGD, optax.sgd(learning_rate={args.lr:g}), "
              f"{args.epochs} epochs, gradients from "
              f"{'jax.grad' if args.engine == 'jax' else 'the tape'}, "
              f"{'one compiled program' if args.fused else 'one jitted step per sample'}, "
              f"on {backend} ({'float64' if args.x64 else 'float32'})")
        emit = functools.partial(print, flush=True)
        try:
            engine: Literal["jax", "tape"] = args.engine  # one of ENGINES (argparse checked)
            _, history = trace(emit, w0=args.w0, learning_rate=args.lr, epochs=args.epochs,
                               engine=engine, fused=args.fused,
                               record="final" if args.out is None else "steps")
        except DivergenceError as error:
            kept = ""
            if args.out is not None:
                try:
                    written = write_history(args.out, error.history, args, error)
                    kept = f"; the history up to it is in {written}"
                except OSError as write_error:  # report both, the divergence first
                    kept = (f"; its history could not be written to {str(args.out)!r}: "
                            f"{write_error}")
            raise CommandError(f"{error}{kept}", code=1) from None
        except ValueError as error:  # the library names the argument and what it expected
            raise CommandError(str(error)) from None
        if args.out is not None:
            with writing(str(args.out)):
                print(f"wrote {write_history(args.out, history, args)}")
    return 0
