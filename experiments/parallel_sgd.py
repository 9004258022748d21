"""Per-sample SGD as a parallel scan: the lecture's loop is a linear recurrence.

One step of the lecture's SGD, ``w <- w - lr 2 (w x - y) x``, is the affine map
``w <- a w + b`` with ``a = 1 - 2 lr x^2`` and ``b = 2 lr x y``. Two maps compose into
one, ``(a2, b2) after (a1, b1) = (a2 a1, a2 b1 + b2)``, and that composition is
associative: an epoch's N steps can be composed in any bracketing, by a parallel scan
(jaxbackprop.affine_sgd), instead of one after another. This script shows the maps of the
lecture's three samples and their composition, trains the lecture through the scan, and
times it against the sequential trainer and the sequential floor (a lax.scan of
``w = a w + b``, one fused multiply-add per step) as N grows.

``--forms`` also times the scan's forms for the final weight at the largest N: radix-2,
4 (kept in the library) and 8 scans, ``jax.lax.associative_scan``, a pairwise tree
inside chunks of 1024, a ``lax.scan`` inside chunks ``jax.vmap``-ed across chunks, and
the trainer that runs the kept form; it checks that they all agree.
``--features`` times linear regression with ``d`` features, where a composition is a
``d x d`` product. ``--accuracy`` compares float32 with a float64 loop at the largest N:
the final weight and the weight before each step in ulp, and each step's loss against
the sequential trainer's (at N = 1e6: the scan's final weight 1.36 ulp off, its per-step
weights at most 16.6 ulp, a float32 loop's 20.4, the losses within 1.4e-6).

Measured 2026-11-30 on this project's 2-core CPU, nothing else running (``--sizes 3 4 5 6
--forms --features 1 2 3 4 5 8``, medians of 7 rounds of one call each): for the final
weight at N = 1e6, the sequential floor 3.35 ms, the radix-4 scan 1.44 ms (2.33x), radix-2
2.13 ms, radix-8 1.82 ms, the pairwise tree 4.58 ms, the chunked ``lax.scan`` 7.23 ms,
``associative_scan`` 14.7 ms. End to end, one epoch at N = 1e6 from device arrays: every
step kept, the parallel trainer 10.0 ms against the sequential ``train_scan``'s 13.3 ms
(1.33x); the final weight 3.68 ms against the floor's 4.48 ms (1.22x here, where each
call is timed alone after the others; ``jaxbackprop bench``, which times many calls in a
row, gave 1.25-1.54x in eight runs). ``--forms`` also times the whole trainer's call,
``train_parallel(record='final')``, beside the scan it runs (3.11 against 1.74 ms in one
run): its checks and dispatch. Below N = 1e5 the parallel trainer's fixed cost (about 0.7 ms,
against the floor's 0.2 ms) dominates: at N = 1e3 and 1e4 it loses to both. With d
features (N = 1e5) it beats the sequential trainer 3.2-4.0x at d = 2-4, 2.2x at d = 5,
and loses at d = 8 (0.59x, every step kept). Why, and the cost of each row size, are in
jaxbackprop.affine_sgd's docstring.

    python experiments/parallel_sgd.py [--sizes 2 3 4 5 6] [--rounds 7] [--forms]
                                       [--features 1 2 3 4 8] [--accuracy] [--quick]
                                       [--out DIR]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import Results, at_most, parser, run, table
from matplotlib.figure import Figure

from jaxbackprop import affine_sgd, lecture, train
from jaxbackprop.benchmark.cases import affine_scan, synthetic_data
from jaxbackprop.cli.common import positive_int
from jaxbackprop.model import loss

NAME = "parallel_sgd"
ENGINES = ("sequential train_scan", "sequential floor (a w + b)", "parallel, every step",
           "parallel, final weight")


def maps_of_the_lecture(results: Results) -> None:
    lr = lecture.LEARNING_RATE
    xs, ys = np.array(lecture.X_DATA), np.array(lecture.Y_DATA)
    a, b = 1 - 2 * lr * xs**2, 2 * lr * xs * ys
    rows = [[f"{x:g}", f"{y:g}", f"{ai:.4f}", f"{bi:.4f}"]
            for x, y, ai, bi in zip(xs, ys, a, b, strict=True)]
    print(f"One step on sample (x, y) with lr = {lr:g} is w <- a w + b, a = 1 - 2 lr x^2, "
          "b = 2 lr x y:\n")
    print(table(("x", "y", "a", "b"), rows))
    epoch = affine_sgd.composition((jnp.asarray(a), jnp.asarray(b)))
    w1 = float(epoch[0]) * lecture.W0 + float(epoch[1])
    print(f"\nComposed, (a2, b2) after (a1, b1) = (a2 a1, a2 b1 + b2): one epoch is "
          f"w <- {float(epoch[0]):.6f} w + {float(epoch[1]):.6f},")
    print(f"so from w0 = {lecture.W0:g} one epoch ends at w = {w1:.6f}, as the loop's three "
          "steps do.")
    w, history = affine_sgd.train_parallel(loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
                                           optimizer=optax.sgd(lr), epochs=lecture.EPOCHS)
    print("\nThe lecture's training through the scan: progress", " ".join(
        f"{v:.4f}" for v in history.epoch_loss), f"\npredict {lecture.X_PREDICT:g} -> "
        f"{float(w) * lecture.X_PREDICT:.4f}")
    results.csv("lecture_maps.csv", ("x", "y", "a", "b"), rows)


def engines(n: int) -> dict[str, Callable[[], Any]]:
    """One epoch over ``n`` synthetic samples, each engine blocked on its result."""
    xs, ys = (jnp.asarray(v) for v in synthetic_data(n))
    w0, lr, sgd = jnp.float32(lecture.W0), jnp.float32(lecture.LEARNING_RATE), optax.sgd(0.01)
    return {
        ENGINES[0]: lambda: train.train_scan(loss, w0, xs, ys, optimizer=sgd, epochs=1)[0],
        ENGINES[1]: lambda: affine_scan(w0, xs, ys, lr).block_until_ready(),
        ENGINES[2]: lambda: affine_sgd.train_parallel(loss, w0, xs, ys, optimizer=sgd,
                                                      epochs=1)[0],
        ENGINES[3]: lambda: affine_sgd.train_parallel(loss, w0, xs, ys, optimizer=sgd, epochs=1,
                                                      record="final")[0],
    }


def timed(runs: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """The median seconds per call over ``rounds`` interleaved rounds (after a warm-up)."""
    for f in runs.values():
        f()
    seconds: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(rounds):
        for name in list(runs)[r % len(runs):] + list(runs)[:r % len(runs)]:
            start = time.perf_counter()
            runs[name]()
            seconds[name].append(time.perf_counter() - start)
    return {k: float(np.median(v)) for k, v in seconds.items()}


def timing(args: Any, results: Results) -> None:
    sizes = [10**k for k in ((2, 3) if args.quick else args.sizes)]
    rows, per_step = [], {k: [] for k in ENGINES}
    for n in sizes:
        t = timed(engines(n), 2 if args.quick else args.rounds)
        for k in ENGINES:
            per_step[k].append(t[k] / n)
        ratios = t[ENGINES[0]] / t[ENGINES[2]], t[ENGINES[1]] / t[ENGINES[3]]
        rows.append([n, *(f"{t[k] * 1e3:.3f}" for k in ENGINES), *(f"{r:.2f}" for r in ratios)])
    header = ("N", *(f"{k} (ms)" for k in ENGINES), "steps: seq/par", "final: floor/par")
    print(f"\nOne epoch of N samples, median of {2 if args.quick else args.rounds} rounds:\n")
    print(table(header, rows))
    for seq, par in ((ENGINES[0], ENGINES[2]), (ENGINES[1], ENGINES[3])):
        wins = [n for n, s, p in zip(sizes, per_step[seq], per_step[par], strict=True)
                if p < s]
        print(f"{par} beats {seq}: " + (f"from N = {wins[0]:g}" if wins else "at no N measured"))
    results.csv("timing.csv", header, rows)
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    for k in ENGINES:
        ax.plot(sizes, np.array(per_step[k]) * 1e9, marker="o", label=k)
    ax.set(xscale="log", yscale="log", xlabel="N, samples in the epoch", ylabel="ns per step",
           title="per-sample SGD, one epoch: sequential against the parallel scan")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    results.figure("timing.png", fig)


# The other forms, for --forms: the final weight of one epoch (a, b already built)

def _tree_in_chunks(w: Any, a: Any, b: Any, chunk: int = 1024) -> Any:
    """A pairwise tree inside chunks of ``chunk`` maps, then the chunks in order."""
    rows = affine_sgd._rows((a, b), chunk)
    while rows[0].shape[1] > 1:
        pairs = [m.reshape(m.shape[0], -1, 2) for m in rows]
        rows = affine_sgd.compose((pairs[0][..., 0], pairs[1][..., 0]),
                                  (pairs[0][..., 1], pairs[1][..., 1]))
    return jax.lax.scan(lambda w, m: (m[0] * w + m[1], None), w, (rows[0][:, 0], rows[1][:, 0]))[0]


def _scan_in_chunks(w: Any, a: Any, b: Any, chunk: int = 256) -> Any:
    """A lax.scan inside each chunk, ``jax.vmap``-ed across chunks, then the chunks in order."""
    rows = affine_sgd._rows((a, b), chunk)
    fold = jax.vmap(lambda a, b: jax.lax.scan(lambda m, ab: (affine_sgd.compose(m, ab), None),
                                              (jnp.ones((), a.dtype), jnp.zeros((), a.dtype)),
                                              (a, b))[0])
    a, b = fold(*rows)
    return jax.lax.scan(lambda w, m: (m[0] * w + m[1], None), w, (a, b))[0]


def _associative(w: Any, a: Any, b: Any) -> Any:
    """``jax.lax.associative_scan``: every prefix; the last one is the epoch's map."""
    a, b = jax.lax.associative_scan(affine_sgd.compose, (a, b))
    return a[-1] * w + b[-1]


def forms(args: Any, results: Results) -> None:
    n = 10**3 if args.quick else 10 ** max(args.sizes)
    xs, ys = (jnp.asarray(v) for v in synthetic_data(n))
    w0, lr = jnp.float32(lecture.W0), jnp.float32(lecture.LEARNING_RATE)
    sgd = optax.sgd(lecture.LEARNING_RATE)

    def form(f: Callable[..., Any]) -> Callable[[], Any]:
        compiled = jax.jit(lambda w, x, y: f(w, 1 - 2 * lr * x * x, 2 * lr * x * y))
        return lambda: compiled(w0, xs, ys).block_until_ready()

    runs = {"sequential floor": form(lambda w, a, b: jax.lax.scan(
                lambda w, m: (m[0] * w + m[1], None), w, (a, b), unroll=8)[0]),
            **{f"radix-{g} scan" + (" (kept)" if g == affine_sgd.GROUP else ""): form(
                lambda w, a, b, g=g: affine_sgd.final_weight(w, (a, b), g)) for g in (2, 4, 8)},
            "associative_scan": form(_associative),
            "pairwise tree in chunks of 1024": form(_tree_in_chunks),
            "lax.scan in chunks of 256, vmapped": form(_scan_in_chunks),
            # the kept form inside the trainer: its checks, dispatch and read back added
            "train_parallel(record='final')": lambda: affine_sgd.train_parallel(
                loss, w0, xs, ys, optimizer=sgd, epochs=1, record="final")[0]}
    t = timed(runs, 2 if args.quick else args.rounds)
    rows = [[k, f"{s * 1e3:.3f}", f"{t['sequential floor'] / s:.2f}"] for k, s in t.items()]
    print(f"\nThe final weight after N = {n:g} steps, by each form:\n")
    print(table(("form", "ms", "floor / form"), rows))
    finals = {k: float(f()) for k, f in runs.items()}  # the forms must agree to be compared
    floor = finals["sequential floor"]
    worst = max(abs(w - floor) for w in finals.values()) / abs(floor)
    print(f"every form's final weight is within {worst:.1e} (relative) of the floor's {floor:.6f}")
    results.csv("forms.csv", ("form", "ms", "floor / form"), rows)


# Accuracy, for --accuracy: float32 against a float64 reference, in ulp


def ulps(values: Any, reference: np.ndarray) -> np.ndarray:
    """How many float32 spacings (at the reference's magnitude) each value is from it."""
    reference = np.asarray(reference, np.float64)
    return np.abs(np.asarray(values, np.float64) - reference) / np.spacing(
        np.abs(reference).astype(np.float32)).astype(np.float64)


def accuracy(args: Any, results: Results) -> None:
    n = 10**3 if args.quick else 10 ** max(args.sizes)
    x32, y32 = synthetic_data(n)
    lr = lecture.LEARNING_RATE
    before = np.empty(n)  # the float64 reference: the weight before each step, in a loop
    w = float(lecture.W0)
    for i, (x, y) in enumerate(zip(x32.tolist(), y32.tolist(), strict=True)):
        before[i] = w
        w = w - lr * (2 * (w * x - y) * x)
    w0, sgd, xs, ys = np.float32(lecture.W0), optax.sgd(lr), jnp.asarray(x32), jnp.asarray(y32)
    kept = {method: train.train_scan(loss, w0, xs, ys, optimizer=sgd, epochs=1,
                                     method=method) for method in ("sequential", "parallel")}
    a32, b32 = 1 - 2 * np.float32(lr) * x32 * x32, 2 * np.float32(lr) * x32 * y32
    weights = {  # before each step, float32: the scan's, and a loop of the same affine maps
        "parallel": affine_sgd.weights(jnp.float32(w0), (jnp.asarray(a32), jnp.asarray(b32))),
        "sequential": jax.lax.scan(lambda w, m: (m[0] * w + m[1], w), jnp.float32(w0),
                                   (a32, b32))[1]}
    sequential_losses = np.asarray(kept["sequential"][1].losses)
    rows = [[method, f"{float(w_final):.7f}", f"{abs(float(w_final) - w) / abs(w):.2g}",
             f"{float(ulps(w_final, np.array(w))):.2f}",
             f"{float(ulps(weights[method], before).max()):.1f}",
             f"{float(np.abs(np.asarray(h.losses) - sequential_losses).max()):.2g}"]
            for method, (w_final, h) in kept.items()]
    header = ("float32 method", "final w", "relative error", "ulp",
              "per-step w: most ulp (sequential: a lax.scan of the same maps)",
              "per-step loss: most |diff| from sequential")
    print(f"\nAccuracy after N = {n:g} steps against float64 (final w {w:.7f}):\n")
    print(table(header, rows))
    results.csv("accuracy.csv", header, rows)


# Linear regression with d features, for --features: a composition is a d x d product


def linear(w: Any, x: Any, y: Any) -> Any:
    """``(w . x - y)^2``: quadratic in ``w``, so each step is the affine map
    ``w <- (I - 2 lr x x^T) w + 2 lr y x``."""
    return (jnp.dot(w, x) - y) ** 2


def training(xs: Any, ys: Any, method: str, record: train.Record) -> Callable[[], Any]:
    """One epoch of ``train_scan`` on the d-feature data from ``w = 0``, blocked on."""
    w0, sgd = jnp.zeros(xs.shape[1], xs.dtype), optax.sgd(0.01)
    return lambda: jax.block_until_ready(train.train_scan(
        linear, w0, xs, ys, optimizer=sgd, epochs=1, method=method, record=record)[0])


def features(args: Any, results: Results) -> None:
    n = 10**3 if args.quick else 10 ** min(5, max(args.sizes))
    rng = np.random.default_rng(0)
    header = ("d", "sequential, every step (ms)", "parallel, every step (ms)",
              "sequential, final (ms)", "parallel, final (ms)", "steps: seq/par",
              "final: seq/par")
    rows = []
    for d in [2] if args.quick else args.features:
        xs = jnp.asarray(rng.uniform(0.0, 1.0, (n, d)) / np.sqrt(d), jnp.float32)
        ys = jnp.asarray(xs @ np.linspace(1.0, 2.0, d) + rng.normal(0.0, 0.1, n), jnp.float32)
        runs = {f"{method}, {record}": training(xs, ys, method, record)
                for record in ("steps", "final") for method in ("sequential", "parallel")}
        t = list(timed(runs, 2 if args.quick else args.rounds).values())  # in header order
        rows.append([d, *(f"{s * 1e3:.3f}" for s in t), f"{t[0] / t[1]:.2f}",
                     f"{t[2] / t[3]:.2f}"])
    print(f"\nLinear regression with d features, one epoch of N = {n:g} samples, median of "
          f"{2 if args.quick else args.rounds} rounds:\n")
    print(table(header, rows))
    results.csv("features.csv", header, rows)


def main(args: Any, results: Results) -> int:
    maps_of_the_lecture(results)
    timing(args, results)
    if args.forms or args.quick:
        forms(args, results)
    if args.features or args.quick:
        features(args, results)
    if args.accuracy or args.quick:
        accuracy(args, results)
    return 0


if __name__ == "__main__":
    p = parser(NAME, __doc__.splitlines()[0])
    # 10^8 samples: the data and every step's losses and gradients, for each engine, are
    # a few GB; 10^9 would not fit in this project's 24 GiB
    p.add_argument("--sizes", type=at_most(8), nargs="+", default=[2, 3, 4, 5, 6], metavar="K",
                   help="time N = 10^K samples for each K, K from 1 to 8 (default: %(default)s)")
    p.add_argument("--rounds", type=positive_int, default=7,
                   help="interleaved timing rounds; the median is kept (default: %(default)s)")
    p.add_argument("--accuracy", action="store_true",
                   help="also compare float32 against a float64 loop at the largest N, in ulp")
    p.add_argument("--forms", action="store_true",
                   help="also time the scan's forms for the final weight at the largest N")
    # a training keeps a D x D matrix per sample: 1e5 samples of 32 x 32 are 400 MB
    p.add_argument("--features", type=at_most(32), nargs="+", default=[], metavar="D",
                   help="also time linear regression with D features, D from 1 to 32 "
                        "(N = 1e5 at most), sequential against parallel")
    sys.exit(run(main, p.parse_args()))
