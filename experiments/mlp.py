"""A complicated network: a 2-16-16-1 tanh MLP on two moons, its gradients from both engines.

"How do we compute the gradient in a complicated network? Better way = computational graph
+ chain rule." This trains :mod:`jaxbackprop.mlp` (full batch, optax) with the gradients of
the hand-written tape (``jax.jit(tape.value_and_grad)``) and, at every step, computes
``jax.grad``'s gradient at the same parameters: the script prints the largest difference
between them, relative to the gradient's size. They must agree to 1e-5 in float32; a step
that misses it (float32 rounding near convergence, where the gradient is a sum of nearly
cancelling terms) is compared again in float64, where they must agree to 1e-10. Exit code
1 if not. Then it times one gradient of the loss on the whole data set, four ways:
the eager tape, ``jax.jit(tape.grad)``, ``jax.jit(jax.grad)``, and micrograd's own ``MLP``
(where micrograd is installed). It draws the decision boundary and the training curves.

    python experiments/mlp.py [--data moons|spirals] [--hidden 16,16] [--steps 500]
                              [--optimizer adam|sgd] [--lr 0.01] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax
from _common import Results, best_time, parser, run, table

from jaxbackprop import mlp, tape
from jaxbackprop.cli.common import finite_float, positive_float, positive_int
from jaxbackprop.train import DivergenceError, TrainHistory

NAME = "mlp"
TOLERANCE = 1e-5  # largest |tape - jax.grad| / largest |jax.grad|, over all parameters
TOLERANCE_64 = 1e-10  # the same in float64, where a float32 step exceeds TOLERANCE
DATA = {"moons": mlp.two_moons, "spirals": mlp.spirals}
OPTIMIZERS = {"adam": optax.adam, "sgd": optax.sgd}
ENGINES = {"tape": tape.value_and_grad, "jax": jax.value_and_grad}


def layer_sizes(text: str) -> tuple[int, ...]:
    """An argparse type: hidden layer sizes such as ``16,16`` (``""`` for none)."""
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes such as 16,16, got {text!r}") from None
    if any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError(f"expected sizes >= 1, got {text!r}")
    return sizes


class StepDivergence(DivergenceError):
    """The trainers' :class:`DivergenceError` for full-batch training: ``epoch`` is the
    step (one step is one pass over the data), ``sample`` 0 (the one batch)."""

    def __init__(self, step: int, loss: float, learning_rate: float,
                 history: TrainHistory) -> None:
        super().__init__(step, 0, loss, history=history, learning_rate=learning_rate)
        self.args = (f"training diverged: the loss became {loss} at step {step} (full batch) "
                     f"with learning_rate={learning_rate:g}; try a smaller learning rate",)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # pickles with its own arguments
        return type(self), (self.epoch, self.loss, self.learning_rate, self.history)


def gradient_gap(a: Any, b: Any) -> float:
    """``max|a - b| / max|b|`` over all parameters: the difference relative to the size of
    the gradient ``b``. (Per array it would be ill-conditioned: a bias's gradient is a sum
    that nearly cancels, so its few last bits are a large fraction of it.)"""
    a, b = jax.tree.leaves(jax.device_get(a)), jax.tree.leaves(jax.device_get(b))
    diff = max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))
    size = max(float(np.max(np.abs(y))) for y in b)
    return diff / max(size, 1e-30)


def float64_gap(params: mlp.Params, x: np.ndarray, y: np.ndarray) -> float:
    """:func:`gradient_gap` of the tape (eager, NumPy float64) against ``jax.grad`` (JAX's
    x64 mode) at the same parameters, all in float64."""
    params, x, y = jax.tree.map(lambda a: np.asarray(a, np.float64), (params, x, y))
    with jax.enable_x64(True):
        return gradient_gap(tape.grad(mlp.loss)(params, x, y), jax.grad(mlp.loss)(params, x, y))


def train(params: mlp.Params, x: np.ndarray, y: np.ndarray, *, optimizer: str,
          learning_rate: float, steps: int, engine: str) -> tuple[mlp.Params, dict[str, list]]:
    """Full-batch training, one optimizer step per epoch, with ``engine``'s gradients.

    At every step the other engine's gradient at the same parameters is computed by a
    separate compiled function and compared. Where the two differ by more than
    ``TOLERANCE`` (float32 rounding, near convergence: the gradient is then a sum of terms
    that nearly cancel, so the same rounding errors are a larger share of it), they are
    compared again in float64 at those parameters (``history["gap64"]``: step -> gap).
    A non-finite loss raises the trainers' :class:`DivergenceError`
    (:class:`StepDivergence`), naming the step.
    """
    other = "jax" if engine == "tape" else "tape"
    value_and_grad = jax.jit(ENGINES[engine](mlp.loss))
    reference = jax.jit(ENGINES[other](mlp.loss))
    transformation = OPTIMIZERS[optimizer](learning_rate)

    @jax.jit
    def update(params: mlp.Params, state: Any, grads: Any) -> tuple[mlp.Params, Any, jax.Array]:
        updates, state = transformation.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        return params, state, mlp.accuracy(params, x, y)

    state = transformation.init(params)
    history: dict[str, Any] = {"loss": [], "accuracy": [], "gap": [], "gap64": {}}
    for step in range(steps):
        value, grads = value_and_grad(params, x, y)
        history["loss"].append(float(value))
        if not np.isfinite(history["loss"][-1]):
            losses = np.asarray(history["loss"], np.float32)[:, None]
            raise StepDivergence(step, history["loss"][-1], learning_rate,
                                 TrainHistory(losses, None, losses[:, -1], None))
        _, other_grads = reference(params, x, y)
        tape_grads, jax_grads = (grads, other_grads) if engine == "tape" else (other_grads, grads)
        history["gap"].append(gradient_gap(tape_grads, jax_grads))
        if history["gap"][-1] > TOLERANCE:
            history["gap64"][step] = float64_gap(params, x, y)
        params, state, acc = update(params, state, grads)
        history["accuracy"].append(float(acc))
    return params, history


def micrograd_gradient(x: np.ndarray, y: np.ndarray, sizes: tuple[int, ...],
                       seed: int) -> Callable[[], Any]:
    """One gradient of micrograd's demo loss (mean hinge on +-1 labels) for its own ``MLP``.

    micrograd's neurons are ReLU (it has no tanh layer); the sizes and the data are ours.
    """
    from micrograd.nn import MLP

    random.seed(seed)
    model = MLP(sizes[0], list(sizes[1:]))
    inputs = x.tolist()
    labels = (2.0 * y - 1.0).tolist()

    def gradient() -> None:
        model.zero_grad()
        scores = [model(point) for point in inputs]
        losses = [(1 - label * score).relu() for label, score in zip(labels, scores, strict=True)]
        total = sum(losses) * (1.0 / len(losses))
        total.backward()

    return gradient


def timings(params: mlp.Params, x: np.ndarray, y: np.ndarray, sizes: tuple[int, ...],
            repeats: int, seed: int) -> list[list[Any]]:
    """Seconds per gradient of the loss on the whole data set, engine by engine."""
    host = jax.tree.map(np.asarray, params)  # the eager tape computes with NumPy on NumPy arrays
    tape_jit, jax_jit = jax.jit(tape.grad(mlp.loss)), jax.jit(jax.grad(mlp.loss))
    ways = {
        "eager tape (NumPy arrays)": lambda: tape.grad(mlp.loss)(host, x, y),
        "jax.jit(tape.grad)": lambda: tape_jit(params, x, y),
        "jax.jit(jax.grad)": lambda: jax_jit(params, x, y),
    }
    rows = [[way, best_time(fn, repeats)] for way, fn in ways.items()]
    if importlib.util.find_spec("micrograd") is None:
        print("micrograd: skipped, it is not installed (pip install micrograd)")
    else:
        fn = micrograd_gradient(x, y, sizes, seed)
        try:
            seconds = best_time(fn, max(1, repeats // 10), warm_up=False)
            rows.append(["micrograd MLP (ReLU, hinge loss)", seconds])
        except RecursionError:
            print(f"micrograd: failed on {len(x)} points (its recursive topological sort "
                  "exceeds Python's recursion limit)")
    fastest = min(seconds for _, seconds in rows)
    return [[way, seconds * 1e3, seconds / fastest] for way, seconds in rows]


def figures(params: mlp.Params, x: np.ndarray, y: np.ndarray, history: dict[str, list],
            title: str, grid: int) -> tuple[Any, Any]:
    """The decision boundary (data and the classifier's regions); loss, accuracy, gap curves."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    low, high = x.min(0) - 0.5, x.max(0) + 0.5
    g0, g1 = np.meshgrid(np.linspace(low[0], high[0], grid), np.linspace(low[1], high[1], grid))
    points = np.stack([g0.ravel(), g1.ravel()], 1).astype(np.float32)
    p = np.asarray(jax.nn.sigmoid(mlp.apply(params, points))).reshape(g0.shape)
    boundary = Figure(figsize=(5.6, 4.6), layout="constrained")
    FigureCanvasAgg(boundary)
    ax = boundary.add_subplot()
    colours = ListedColormap(["#c6dbef", "#fdd0a2"])
    ax.contourf(g0, g1, p, levels=[0.0, 0.5, 1.0], cmap=colours)
    ax.contour(g0, g1, p, levels=[0.5], colors="k", linewidths=1.2)
    for label, colour, marker in ((0, "#2171b5", "o"), (1, "#d94801", "s")):
        pick = y == label
        ax.scatter(x[pick, 0], x[pick, 1], s=16, c=colour, marker=marker, edgecolors="white",
                   linewidths=0.4, label=f"class {label}")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)

    curves = Figure(figsize=(12, 3.4), layout="constrained")
    FigureCanvasAgg(curves)
    axes = curves.subplots(1, 3)
    steps = np.arange(len(history["loss"]))
    axes[0].plot(steps, history["loss"], color="#2171b5")
    axes[0].set_yscale("log")
    axes[0].set_title("logistic loss (before each step)")
    axes[1].plot(steps + 1, np.asarray(history["accuracy"]) * 100, color="#238b45")
    axes[1].set_ylim(min(40.0, 100 * min(history["accuracy"])), 101)
    axes[1].set_title("training accuracy (%, after each step)")
    axes[2].semilogy(steps, np.maximum(history["gap"], 1e-12), ".", ms=2.5, color="#6a51a3")
    axes[2].axhline(TOLERANCE, color="#cb181d", ls="--", lw=1, label="tolerance 1e-5")
    if history["gap64"]:
        axes[2].semilogy(list(history["gap64"]), np.maximum(list(history["gap64"].values()),
                                                            1e-16),
                         "x", ms=4, color="#cb181d", label="the same step in float64")
    axes[2].set_title("tape vs jax.grad: max|diff| / max|grad|")
    axes[2].legend(fontsize=8)
    for a in axes:
        a.set_xlabel("step")
        a.grid(alpha=0.3)
    return boundary, curves


def main(args: argparse.Namespace, results: Results) -> int:
    if args.quick:
        args.samples, args.steps, args.repeats, args.grid = 64, 40, 3, 60
    x, y = DATA[args.data](args.samples, noise=args.noise, seed=args.seed)
    sizes = (x.shape[1], *args.hidden, 1)
    params = mlp.init(jax.random.key(args.seed), sizes)
    print(f"{args.data}: {len(x)} points; MLP {'-'.join(map(str, sizes))} (tanh), "
          f"{sum(a.size for a in jax.tree.leaves(params))} parameters; {args.optimizer}"
          f"(learning_rate={args.lr:g}), {args.steps} full-batch steps on "
          + ("the tape's gradients" if args.engine == "tape" else "jax.grad's gradients"))

    params, history = train(params, x, y, optimizer=args.optimizer, learning_rate=args.lr,
                            steps=args.steps, engine=args.engine)
    worst = int(np.argmax(history["gap"]))
    rechecked = history["gap64"]
    worst64 = max(rechecked.values(), default=0.0)
    agree = worst64 <= TOLERANCE_64  # every step within TOLERANCE, or rechecked in float64
    print(f"loss {history['loss'][0]:.4f} -> {history['loss'][-1]:.4f}, training accuracy "
          f"{100 * history['accuracy'][-1]:.1f}%")
    print(f"tape vs jax.grad at every one of {args.steps} steps: largest difference "
          f"{history['gap'][worst]:.3g} of the gradient's size (step {worst})")
    if rechecked:
        print(f"{len(rechecked)} steps above {TOLERANCE:g} in float32 (near convergence the "
              "gradient is a sum of nearly cancelling terms, so rounding is a larger share "
              f"of it), compared again in float64: largest difference {worst64:.3g}")
    print("they agree" if agree else "DISAGREEMENT", f"(float32 tolerance {TOLERANCE:g}"
          + (f", float64 tolerance {TOLERANCE_64:g})" if rechecked else ")"))

    rows = timings(params, x, y, sizes, args.repeats, args.seed)
    print(f"\none gradient of the loss on all {len(x)} points:")
    print(table(("engine", "ms per gradient", "x fastest"),
                [[w, f"{ms:.3g}", f"{r:.3g}"] for w, ms, r in rows]))

    boundary, curves = figures(params, x, y, history,
                               f"{'-'.join(map(str, sizes))} tanh MLP on {args.data}, "
                               f"{args.steps} {args.optimizer} steps: "
                               f"{100 * history['accuracy'][-1]:.1f}% correct", args.grid)
    results.figure("decision_boundary.png", boundary)
    results.figure("training.png", curves)
    results.csv("steps.csv", ("step", "loss", "accuracy", "tape_vs_jax_gap"),
                [[i, loss, acc, gap] for i, (loss, acc, gap)
                 in enumerate(zip(history["loss"], history["accuracy"], history["gap"],
                                  strict=True))])
    results.csv("timing.csv", ("engine", "ms_per_gradient", "times_fastest"), rows)
    results.json("summary.json", {
        "data": args.data, "samples": len(x), "sizes": sizes, "optimizer": args.optimizer,
        "learning_rate": args.lr, "steps": args.steps, "engine": args.engine,
        "final_loss": history["loss"][-1], "final_accuracy": history["accuracy"][-1],
        "max_gap": history["gap"][worst], "max_gap_step": worst, "tolerance": TOLERANCE,
        "float64_rechecks": {str(k): v for k, v in rechecked.items()},
        "tolerance_float64": TOLERANCE_64,
        "agree": agree, "ms_per_gradient": {w: ms for w, ms, _ in rows}})
    return 0 if agree else 1


if __name__ == "__main__":
    p = parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--data", choices=tuple(DATA), default="moons",
                   help="the data set, generated in code (default: %(default)s)")
    p.add_argument("--samples", type=positive_int, default=200,
                   help="points, 64 with --quick (default: %(default)s)")
    p.add_argument("--noise", type=finite_float, default=0.1,
                   help="the data's noise (default: %(default)s)")
    p.add_argument("--hidden", type=layer_sizes, default=(16, 16), metavar="SIZES",
                   help="hidden layer sizes, comma-separated (default: 16,16)")
    p.add_argument("--steps", type=positive_int, default=500,
                   help="full-batch optimizer steps, 40 with --quick (default: %(default)s)")
    p.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="adam",
                   help="the optax optimizer (default: %(default)s)")
    p.add_argument("--lr", type=positive_float, default=0.01,
                   help="its learning rate (default: %(default)s)")
    p.add_argument("--engine", choices=tuple(ENGINES), default="tape",
                   help="whose gradients train; the other's are compared at every step "
                        "(default: %(default)s)")
    p.add_argument("--repeats", type=positive_int, default=20,
                   help="timed calls per engine, 3 with --quick (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.set_defaults(grid=200)
    sys.exit(run(main, p.parse_args()))
