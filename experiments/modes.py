"""Forward mode against reverse mode: why backpropagation is the right tool for a loss.

The chain rule can be applied from either end of the graph. *Forward mode* pushes one
tangent from the inputs to the outputs (``tape.jvp``, ``jax.jvp``): one pass gives the
derivatives of every output along one input direction, a column of the Jacobian.
*Reverse mode*, backpropagation, pulls one cotangent from the outputs back to the inputs
(``tape.vjp``, ``jax.vjp``): one pass gives one output's derivatives in every input, a
row. So the Jacobian of ``f: R^n -> R^m`` takes ``n`` forward passes or ``m`` backward
ones, and a loss has ``m = 1``: one backward pass gives every weight's gradient.

This script measures both, on the hand-written tape (eager, NumPy arrays) and in JAX
(compiled):

* the gradient of the lecture's loss with ``n`` weights, ``L(w) = (sum(w * x) - y)^2``,
  for ``n`` from 1 to 10^4: the primitive evaluations (the operations of the traced
  program, counted the same way for both engines) and the time;
* the Jacobian of ``f(x) = tanh(A x)`` for shapes from wide (``n >> m``) to tall
  (``m >> n``) by ``jacfwd`` and ``jacrev`` built on the tape, beside ``jax.jacfwd`` and
  ``jax.jacrev``: the same numbers, and where each wins.

    python experiments/modes.py [--max-n 10000] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from _common import Results, at_most, best_time, parser, run, table

import jaxbackprop.numpy as jbnp
from jaxbackprop import tape
from jaxbackprop.cli.common import positive_int

NAME = "modes"
TOLERANCE = 1e-5  # float32: tape against JAX, relative to the largest entry
SHAPES = ((1000, 1), (1000, 10), (300, 300), (10, 1000), (1, 1000))  # (n inputs, m outputs)
QUICK_SHAPES = ((40, 1), (20, 20), (1, 40))


# ---------------------------------------------------------------------------------------
# The two modes on the tape, one pass at a time


def basis(size: int, i: int, dtype: Any = np.float32) -> np.ndarray:
    """The ``i``-th unit vector of length ``size``."""
    e = np.zeros(size, dtype)
    e[i] = 1
    return e


def grad_forward(f: Callable[[Any], Any], w: np.ndarray) -> np.ndarray:
    """The gradient of a scalar ``f`` by forward mode: one ``tape.jvp`` per input,
    ``dL/dw_i = J e_i``."""
    return np.array([tape.jvp(f, (w,), (basis(w.size, i, w.dtype),))[1] for i in range(w.size)])


def grad_reverse(f: Callable[[Any], Any], w: np.ndarray) -> np.ndarray:
    """The gradient of a scalar ``f`` by reverse mode: one ``tape.vjp``, one backward pass
    seeded with ``dL/dL = 1``."""
    value, pullback = tape.vjp(f, w)
    return np.asarray(pullback(np.ones_like(value))[0])


def jacfwd(f: Callable[[Any], Any], x: np.ndarray) -> np.ndarray:
    """The Jacobian ``J[i, j] = d f_i / d x_j`` column by column: ``n`` forward passes."""
    return np.stack([tape.jvp(f, (x,), (basis(x.size, j, x.dtype),))[1]
                     for j in range(x.size)], axis=-1)


def jacrev(f: Callable[[Any], Any], x: np.ndarray) -> np.ndarray:
    """The Jacobian row by row: one recorded forward pass, then ``m`` backward passes."""
    value, pullback = tape.vjp(f, x)
    return np.stack([pullback(basis(value.size, i, value.dtype))[0] for i in range(value.size)])


# ---------------------------------------------------------------------------------------
# The same in JAX, compiled once per shape


def jax_grad_forward(f: Callable[[Any], Any], w: np.ndarray) -> Callable[[], np.ndarray]:
    """Forward mode in JAX, one compiled ``jax.jvp`` call per input (as on the tape)."""
    n = w.size
    column = jax.jit(lambda w, i: jax.jvp(f, (w,), (jax.nn.one_hot(i, n, dtype=w.dtype),))[1])
    w = jnp.asarray(w)
    jax.block_until_ready(column(w, 0))  # compiled here, not while timed
    return lambda: np.array([column(w, i) for i in range(n)])


def jax_grad_reverse(f: Callable[[Any], Any], w: np.ndarray) -> Callable[[], np.ndarray]:
    """Reverse mode in JAX: one compiled ``jax.vjp`` and its pullback."""

    def gradient(w: Any) -> Any:
        value, pullback = jax.vjp(f, w)
        return pullback(jnp.ones_like(value))[0]

    compiled, w = jax.jit(gradient), jnp.asarray(w)
    jax.block_until_ready(compiled(w))  # compiled here, not while timed
    return lambda: np.asarray(compiled(w))


def count_operations(fn: Callable[..., Any], *args: Any) -> int:
    """The operations ``fn(*args)`` executes: the equations of its traced program (JAX's
    jaxpr), nested programs included. The tape's passes trace like any Python code, so
    both engines' work is counted in the same unit."""

    def count(jaxpr: Any) -> int:
        total = 0
        for eqn in jaxpr.eqns:
            inner = [p for p in eqn.params.values() if hasattr(p, "jaxpr") or hasattr(p, "eqns")]
            if inner:
                total += sum(count(getattr(p, "jaxpr", p)) for p in inner)
            else:
                total += 1
        return total

    return count(jax.make_jaxpr(fn)(*args).jaxpr)


def relative_gap(a: Any, b: Any) -> float:
    """``max|a - b| / max|b|``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


# ---------------------------------------------------------------------------------------
# The experiment


def lecture_loss(n: int, seed: int) -> tuple[Callable[[Any], Any], np.ndarray]:
    """The lecture's loss with ``n`` weights, ``L(w) = (sum(w * x) - y)^2``, and a ``w``."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, n).astype(np.float32)
    w = rng.uniform(-1.0, 1.0, n).astype(np.float32)
    y = np.float32(1.0)

    def loss(w: Any) -> Any:
        return (jbnp.sum(w * x) - y) ** 2

    return loss, w


def gradients(sizes: list[int], seed: int, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        f, w = lecture_loss(n, seed)
        e = basis(n, 0)
        reference = np.asarray(jax.grad(f)(jnp.asarray(w)))
        forward, reverse = grad_forward(f, w), grad_reverse(f, w)
        jax_forward, jax_reverse = jax_grad_forward(f, w), jax_grad_reverse(f, w)
        once = 1 if n >= 1000 else repeats  # n passes take long enough to time once

        def tape_jvp(w: Any, e: Any, f: Callable[[Any], Any] = f) -> Any:
            return tape.jvp(f, (w,), (e,))[1]

        def jax_jvp(w: Any, e: Any, f: Callable[[Any], Any] = f) -> Any:
            return jax.jvp(f, (w,), (e,))[1]

        row = {
            "n": n,
            # operations: one forward-mode pass, times n passes; one reverse-mode gradient
            "tape forward ops": n * count_operations(tape_jvp, w, e),
            "tape reverse ops": count_operations(tape.grad(f), w),
            "jax forward ops": n * count_operations(jax_jvp, w, e),
            "jax reverse ops": count_operations(jax.grad(f), w),
            "tape forward s": best_time(lambda f=f, w=w: grad_forward(f, w), once, warm_up=False),
            "tape reverse s": best_time(lambda f=f, w=w: grad_reverse(f, w), repeats,
                                        warm_up=False),
            "jax forward s": best_time(jax_forward, once, warm_up=False),
            "jax reverse s": best_time(jax_reverse, repeats, warm_up=False),
            "gap": max(relative_gap(g, reference)
                       for g in (forward, reverse, jax_forward(), jax_reverse())),
        }
        rows.append(row)
    return rows


def jacobians(shapes: tuple[tuple[int, int], ...], seed: int,
              repeats: int) -> list[dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(seed)
    for n, m in shapes:
        a = (rng.standard_normal((m, n)) / np.sqrt(n)).astype(np.float32)
        x = rng.standard_normal(n).astype(np.float32)

        def f(x: Any, a: np.ndarray = a) -> Any:
            return jbnp.tanh(jbnp.matmul(a, x))

        jax_fwd, jax_rev = jax.jit(jax.jacfwd(f)), jax.jit(jax.jacrev(f))
        xj = jnp.asarray(x)
        forward, reverse = jacfwd(f, x), jacrev(f, x)
        reference_fwd, reference_rev = np.asarray(jax_fwd(xj)), np.asarray(jax_rev(xj))
        rows.append({
            "n": n, "m": m,
            "tape jacfwd s": best_time(lambda f=f, x=x: jacfwd(f, x), repeats, warm_up=False),
            "tape jacrev s": best_time(lambda f=f, x=x: jacrev(f, x), repeats, warm_up=False),
            "jax.jacfwd s": best_time(lambda g=jax_fwd, x=xj: g(x), repeats, warm_up=False),
            "jax.jacrev s": best_time(lambda g=jax_rev, x=xj: g(x), repeats, warm_up=False),
            "jacfwd vs jax.jacfwd": relative_gap(forward, reference_fwd),
            "jacrev vs jax.jacrev": relative_gap(reverse, reference_rev),
            "jax.jacfwd vs jax.jacrev": relative_gap(reference_fwd, reference_rev),
        })
    return rows


def figure(grads: list[dict[str, Any]], jacs: list[dict[str, Any]]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax_ops, ax_time, ax_jac = fig.subplots(1, 3)
    n = [r["n"] for r in grads]
    styles = {"tape forward": ("#d94801", "o", "-"), "tape reverse": ("#2171b5", "o", "-"),
              "jax forward": ("#d94801", "s", ":"), "jax reverse": ("#2171b5", "s", ":")}
    names = {"tape forward": "tape.jvp, n passes", "tape reverse": "tape.vjp, one pass",
             "jax forward": "jax.jvp, n passes", "jax reverse": "jax.vjp, one pass"}
    for key, (colour, marker, line) in styles.items():
        ax_ops.loglog(n, [r[f"{key} ops"] for r in grads], marker=marker, ls=line, color=colour,
                      label=names[key])
        ax_time.loglog(n, [r[f"{key} s"] for r in grads], marker=marker, ls=line, color=colour,
                       label=names[key])
    ax_ops.set_title("the gradient of a loss of n weights:\n"
                     "forward mode, n passes; reverse mode, one backward pass", fontsize=10)
    ax_ops.set_ylabel("operations executed (traced program)")
    ax_time.set_title("the same gradient, timed\n(tape: eager NumPy; jax: compiled)", fontsize=10)
    ax_time.set_ylabel("seconds")
    for ax in (ax_ops, ax_time):
        ax.set_xlabel("n (weights)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")

    labels = [f"n={r['n']}\nm={r['m']}" for r in jacs]
    keys = ("tape jacfwd s", "tape jacrev s", "jax.jacfwd s", "jax.jacrev s")
    colours = ("#fd8d3c", "#6baed6", "#a63603", "#08519c")
    width = 0.2
    for k, (key, colour) in enumerate(zip(keys, colours, strict=True)):
        ax_jac.bar(np.arange(len(jacs)) + (k - 1.5) * width, [r[key] for r in jacs], width,
                   color=colour, label=key[:-2])
    ax_jac.set_yscale("log")
    ax_jac.set_xticks(np.arange(len(jacs)), labels, fontsize=8)
    ax_jac.set_ylabel("seconds per Jacobian")
    ax_jac.set_title("Jacobian of f: R^n -> R^m, wide to tall:\n"
                     "reverse wins when n > m, forward when n < m", fontsize=10)
    low, high = ax_jac.get_ylim()
    ax_jac.set_ylim(low, high * 40)  # room for the legend above the bars
    ax_jac.legend(fontsize=8, ncol=2, loc="upper center")
    ax_jac.grid(alpha=0.3, axis="y")
    return fig


def main(args: argparse.Namespace, results: Results) -> int:
    max_n = 100 if args.quick else args.max_n
    sizes = [n for n in (1, 10, 100, 1000, 10_000, 100_000) if n <= max_n]
    repeats = 1 if args.quick else args.repeats
    grads = gradients(sizes, args.seed, repeats)
    print("the gradient of L(w) = (sum(w * x) - y)^2, n weights: forward mode (one pass per "
          "weight) against reverse mode (one backward pass)")
    print(table(("n", "tape.jvp ops", "tape.vjp ops", "jax.jvp ops", "jax.vjp ops",
                 "tape fwd ms", "tape rev ms", "jax fwd ms", "jax rev ms", "largest gap"),
                [[r["n"], r["tape forward ops"], r["tape reverse ops"], r["jax forward ops"],
                  r["jax reverse ops"], *(f"{1e3 * r[k]:.3g}" for k in
                                          ("tape forward s", "tape reverse s", "jax forward s",
                                           "jax reverse s")), f"{r['gap']:.2g}"]
                 for r in grads]))
    last = grads[-1]
    print(f"\nn = {last['n']}: forward mode makes {last['n']} passes and "
          f"{last['tape forward ops']} operations on the tape ({last['tape forward s']:.3g} s); "
          f"reverse mode makes one backward pass, {last['tape reverse ops']} operations "
          f"({1e3 * last['tape reverse s']:.3g} ms): a loss has one output, so one backward "
          "pass gives every weight's gradient.")

    jacs = jacobians(QUICK_SHAPES if args.quick else SHAPES, args.seed, repeats)
    print("\nthe Jacobian of f(x) = tanh(A x), A of shape (m, n): jacfwd (n forward passes) "
          "against jacrev (m backward passes)")
    print(table(("n", "m", "tape jacfwd ms", "tape jacrev ms", "jax.jacfwd ms", "jax.jacrev ms",
                 "tape faster", "vs jax (fwd, rev)"),
                [[r["n"], r["m"], *(f"{1e3 * r[k]:.3g}" for k in
                                    ("tape jacfwd s", "tape jacrev s", "jax.jacfwd s",
                                     "jax.jacrev s")),
                  "jacfwd" if r["tape jacfwd s"] < r["tape jacrev s"] else "jacrev",
                  f"{r['jacfwd vs jax.jacfwd']:.2g}, {r['jacrev vs jax.jacrev']:.2g}"]
                 for r in jacs]))
    worst = max([r["gap"] for r in grads] + [r[k] for r in jacs for k in
                 ("jacfwd vs jax.jacfwd", "jacrev vs jax.jacrev")])
    agree = worst <= TOLERANCE
    print(f"\nforward and reverse mode, tape and JAX: largest difference {worst:.2g} of the "
          "largest entry; " + ("they agree (float32, tolerance 1e-5)" if agree
                               else "DISAGREEMENT (tolerance 1e-5)"))

    results.figure("modes.png", figure(grads, jacs))
    results.csv("gradient.csv", tuple(grads[0]), [list(r.values()) for r in grads])
    results.csv("jacobian.csv", tuple(jacs[0]), [list(r.values()) for r in jacs])
    results.json("summary.json", {"gradient": grads, "jacobian": jacs, "largest_gap": worst,
                                  "tolerance": TOLERANCE, "agree": agree})
    return 0 if agree else 1


if __name__ == "__main__":
    p = parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--max-n", type=at_most(100_000), default=10_000,
                   help="the largest number of weights, a power of 10 up to 100,000; 100 "
                        "with --quick (default: %(default)s)")
    p.add_argument("--repeats", type=positive_int, default=3,
                   help="timed calls per measurement, 1 with --quick (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    sys.exit(run(main, p.parse_args()))
