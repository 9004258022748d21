"""The four measurements, each a function ``Settings -> section`` (plain data).

1. :func:`lecture_training`: the lecture's 30 steps, every way of running them.
2. :func:`per_sample_sgd`: per-sample SGD over N synthetic samples, steps per second.
3. :func:`sweeps`: many independent trainings of the lecture at once.
4. :func:`tape_chains`: reverse mode's cost per node on chains of K nodes.

Every result is checked against an independent reference (the float64 hand-derived
SGD, or the closed form ``d chain/dx = a**(K/2)``) before its time is reported.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxbackprop import parallel, tape, train
from jaxbackprop.benchmark import peers
from jaxbackprop.benchmark.harness import Case, Engine, Row, Run, Settings, run_cases
from jaxbackprop.lecture import EPOCHS, LEARNING_RATE, W0, X_DATA, Y_DATA
from jaxbackprop.model import loss

Section = dict[str, Any]
Progress = Callable[[str], None] | None

CHAIN_A, CHAIN_B = 1.0001, 0.0001  # each chain step is x -> x * a + b

# Engine names that :mod:`jaxbackprop.benchmark.summary` looks up.
FUSED = "fused (train_scan)"
SWEEP = "sweep (vmap of train_scan)"
AFFINE_FLOOR = "JAX: lax.scan of the affine map (floor)"
PARALLEL = "parallel scan (train_scan method='parallel')"
PARALLEL_FINAL = "parallel scan, record='final'"
TAPE_EAGER = "tape eager (Python floats)"
TAPE_JIT = "tape under jax.jit (unrolled)"
JAX_JIT = "jax.jit(jax.grad) (unrolled)"
MICROGRAD = "micrograd"
PYTORCH_LECTURE = "PyTorch eager (the lecture's code)"
NUMPY_LOOP = "NumPy loop, hand-derived gradient"
PLAIN_SCAN = "JAX: plain lax.scan of the step"


def _label(prefix: str, n: int) -> str:
    """``N=1e6`` for powers of ten and their small multiples, ``N=30`` below 100."""
    if n < 100:
        return f"{prefix}={n}"
    return f"{prefix}={n:.0e}".replace("e+0", "e").replace("e+", "e")


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _peer(name: str, module: str, make: Callable[[Any, int], Run], **kwargs: Any) -> Engine:
    """A peer's engine, ``make(module, size)``; "not installed" when ``module`` is missing."""
    found = peers.optional_import(module)
    return Engine(name, "peer", None if found is None else partial(make, found),
                  install=peers.INSTALL[module.split(".")[0]], **kwargs)


def _section(key: str, title: str, unit: str, rows: list[Row]) -> Section:
    return {"key": key, "title": title, "unit": unit, "rows": rows}


def _blocked(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Run:
    """A call of ``f`` that waits for JAX's asynchronous dispatch to finish."""
    return lambda: jax.block_until_ready(f(*args, **kwargs))


# ---------------------------------------------------------------------------------------
# Checking results


def ulp_distance(a: Any, b: Any) -> int:
    """How many float32 values lie between ``a`` and ``b`` (0: bitwise equal)."""
    ia, ib = (int(np.asarray(v, np.float32).reshape(()).view(np.int32)) for v in (a, b))
    return abs(ia - ib)


def _close(reference: Any, rtol: float) -> Callable[[Any], tuple[bool, str]]:
    """A check: every element of ``result`` within ``rtol * max(|reference|, 1)`` of
    ``reference`` (relative for large values, absolute for those below 1)."""
    def check(result: Any) -> tuple[bool, str]:
        ref = np.asarray(reference, np.float64)
        scaled = np.abs(np.asarray(result, np.float64) - ref) / np.maximum(np.abs(ref), 1.0)
        error = float(np.max(scaled))
        return error <= rtol, "" if error <= rtol else f"off by {error:.2g} (relative)"
    return check


def _training_check(reference: float, eager: Any,
                    eager_fma: Any) -> Callable[[Any], tuple[bool, str]]:
    """Close to the float64 reference; how many ulp from eager float32 arithmetic, and
    from the same with ``w x - y`` as a fused multiply-add."""
    close = _close(reference, 1e-5)

    def check(result: Any) -> tuple[bool, str]:
        agrees, note = close(result)
        return agrees, note or (f"{ulp_distance(result, eager)} ulp from eager float32 "
                                f"({ulp_distance(result, eager_fma)} with an FMA)")
    return check


# ---------------------------------------------------------------------------------------
# 1. The lecture's 30 steps


def _eager_loop(gradient: Callable[..., Any], w: Any) -> Any:
    """The lecture's loop around ``gradient(w, x, y)``, eager: ``w <- w - lr * dL/dw``."""
    for _epoch in range(EPOCHS):
        for x, y in zip(X_DATA, Y_DATA):
            w = w - LEARNING_RATE * gradient(w, x, y)
    return w


def _trainer(fn: Callable[..., Any], engine: str, xs: Any = X_DATA, ys: Any = Y_DATA,
             epochs: int = EPOCHS) -> Run:
    """One call of a jaxbackprop trainer with the lecture's SGD; returns the final weight."""
    optimizer = optax.sgd(LEARNING_RATE)
    return lambda: fn(loss, W0, xs, ys, optimizer=optimizer, epochs=epochs, engine=engine)[0]


def lecture_training(settings: Settings, progress: Progress = None) -> Section:
    """The lecture's training (3 samples x 10 epochs = 30 steps), timed per step.

    The trainers get the lecture's constants as they are (tuples of Python floats)."""
    xs, ys = np.asarray(X_DATA, np.float32), np.asarray(Y_DATA, np.float32)
    steps = EPOCHS * len(X_DATA)
    w0 = jnp.float32(W0)
    engines = [
        _peer(PYTORCH_LECTURE, "torch", lambda torch, _: partial(
            peers.pytorch_lecture_training, torch, X_DATA, Y_DATA, W0, LEARNING_RATE, EPOCHS),
            pytorch=True),
        Engine(NUMPY_LOOP, "peer", lambda _: partial(
            peers.numpy_training, W0, xs, ys, LEARNING_RATE, EPOCHS)),
        Engine("jax.grad eager", "JAX", lambda _: _blocked(_eager_loop, jax.grad(loss), w0)),
        Engine("jitted step loop (train_per_sample)", "jaxbackprop",
               lambda _: _trainer(train.train_per_sample, "jax"), compiled=True),
        Engine(FUSED, "jaxbackprop", lambda _: _trainer(train.train_scan, "jax"), compiled=True),
        Engine(TAPE_EAGER, "jaxbackprop", lambda _: partial(_eager_loop, tape.grad(loss), W0)),
        Engine("tape, jitted step loop", "jaxbackprop",
               lambda _: _trainer(train.train_per_sample, "tape"), compiled=True),
        Engine("tape, fused (train_scan)", "jaxbackprop",
               lambda _: _trainer(train.train_scan, "tape"), compiled=True),
    ]
    check = _training_check(peers.reference_training(W0, X_DATA, Y_DATA, LEARNING_RATE, EPOCHS),
                            peers.numpy_training(W0, xs, ys, LEARNING_RATE, EPOCHS),
                            peers.numpy_training_fma(W0, xs, ys, LEARNING_RATE, EPOCHS))
    cases = [Case(steps, f"{steps} steps", steps, check)]
    return _section("lecture", "The lecture's training: 3 samples x 10 epochs = 30 steps",
                    "step", run_cases(engines, cases, settings, progress))


# ---------------------------------------------------------------------------------------
# 2. Per-sample SGD over N samples


def synthetic_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` float32 samples of ``y = 2 x + noise``, ``x`` uniform in [0, 1)."""
    rng = np.random.default_rng(seed)
    xs = rng.uniform(0.0, 1.0, n)
    ys = 2.0 * xs + rng.normal(0.0, 0.1, n)
    return xs.astype(np.float32), ys.astype(np.float32)


@jax.jit
def scan_sgd(w: jax.Array, xs: jax.Array, ys: jax.Array, lr: jax.Array) -> jax.Array:
    """JAX with nothing around it: ``lax.scan`` of ``w <- w - lr * 2 (w x - y) x``."""
    def step(w: jax.Array, xy: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
        x, y = xy
        return w - lr * (2 * (w * x - y) * x), None
    return jax.lax.scan(step, w, (xs, ys))[0]


@jax.jit
def scan_affine(w: jax.Array, xs: jax.Array, ys: jax.Array, lr: jax.Array) -> jax.Array:
    """The same SGD as ``w <- a_i w + b_i`` (``a_i = 1 - 2 lr x_i^2``, ``b_i = 2 lr x_i y_i``):
    one fused multiply-add per step, the latency floor of a per-sample step."""
    a, b = 1 - 2 * lr * xs * xs, 2 * lr * xs * ys
    return jax.lax.scan(lambda w, ab: (ab[0] * w + ab[1], None), w, (a, b), unroll=8)[0]


@jax.jit
def vmapped_scan_sgd(w0s: jax.Array, xs: jax.Array, ys: jax.Array, lrs: jax.Array) -> jax.Array:
    """:func:`scan_sgd` for many ``(w0, lr)`` pairs at once, by ``jax.vmap``."""
    return jax.vmap(scan_sgd, in_axes=(0, None, None, 0))(w0s, xs, ys, lrs)


def per_sample_sgd(settings: Settings, progress: Progress = None) -> Section:
    """One epoch of per-sample SGD over N synthetic samples, timed per step."""
    data = {n: synthetic_data(n) for n in settings.sgd_sizes}
    lr, w0 = jnp.float32(LEARNING_RATE), jnp.float32(W0)

    def torch_run(torch: Any, n: int) -> Run:
        xs, ys = (v.tolist() for v in data[n])
        return partial(peers.pytorch_lecture_training, torch, xs, ys, W0, LEARNING_RATE, 1)

    engines = [
        _peer("PyTorch eager (the lecture's loop)", "torch", torch_run, pytorch=True),
        Engine(NUMPY_LOOP, "peer",
               lambda n: partial(peers.numpy_training, W0, *data[n], LEARNING_RATE, 1)),
        Engine("jitted step loop (train_per_sample)", "jaxbackprop",
               lambda n: _trainer(train.train_per_sample, "jax", *data[n], 1), compiled=True),
        Engine(FUSED, "jaxbackprop",
               lambda n: _trainer(train.train_scan, "jax", *data[n], 1), compiled=True),
        Engine(PLAIN_SCAN, "JAX",
               lambda n: _blocked(scan_sgd, w0, *data[n], lr), compiled=True),
        Engine(AFFINE_FLOOR, "JAX",
               lambda n: _blocked(scan_affine, w0, *data[n], lr), compiled=True),
        Engine(PARALLEL, "jaxbackprop", lambda n: _trainer(
            partial(train.train_scan, method="parallel"), "jax", *data[n], 1), compiled=True),
        Engine(PARALLEL_FINAL, "jaxbackprop", lambda n: _trainer(
            partial(train.train_scan, method="parallel", record="final"), "jax", *data[n], 1),
               compiled=True),
    ]
    cases = [Case(n, _label("N", n), n, _close(peers.reference_training(
        W0, data[n][0].tolist(), data[n][1].tolist(), LEARNING_RATE, 1), 1e-4))
        for n in settings.sgd_sizes]
    return _section("sgd", "Per-sample SGD, one epoch over N synthetic samples", "step",
                    run_cases(engines, cases, settings, progress))


# ---------------------------------------------------------------------------------------
# 3. Many trainings at once


# The sweeps' optimizer: optax.sgd with its learning rate kept as data (set per run).
SWEEP_SGD = optax.inject_hyperparams(optax.sgd)(learning_rate=LEARNING_RATE)


def sweep_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (learning rate, initial weight) pairs around the lecture's, float32."""
    lrs = LEARNING_RATE * np.linspace(0.1, 2.0, n)
    w0s = W0 + np.linspace(-2.0, 2.0, n)
    return lrs.astype(np.float32), w0s.astype(np.float32)


def _loop_of_trainings(lrs: np.ndarray, w0s: np.ndarray) -> np.ndarray:
    """One :func:`train_scan` call per training, in a Python loop."""
    return np.array([train.train_scan(loss, w0, X_DATA, Y_DATA, optimizer=SWEEP_SGD,
                                      learning_rate=lr)[0] for lr, w0 in zip(lrs, w0s)])


def sweeps(settings: Settings, progress: Progress = None) -> Section:
    """n independent trainings of the lecture (30 steps each), timed per step."""
    grids = {n: sweep_grid(n) for n in settings.sweep_sizes}
    xs, ys = np.asarray(X_DATA, np.float32), np.asarray(Y_DATA, np.float32)
    engines = [
        _peer("PyTorch eager, vectorised lecture loop", "torch", lambda torch, n: partial(
            peers.pytorch_sweep, torch, *grids[n], X_DATA, Y_DATA, EPOCHS), pytorch=True),
        Engine("NumPy, vectorised hand-derived loop", "peer",
               lambda n: partial(peers.numpy_sweep, *grids[n], xs, ys, EPOCHS)),
        Engine("JAX: jit(vmap) of the plain lax.scan", "JAX", lambda n: _blocked(
            vmapped_scan_sgd, grids[n][1], np.tile(xs, EPOCHS), np.tile(ys, EPOCHS),
            grids[n][0]), compiled=True),
        Engine("Python loop of single trainings (train_scan)", "jaxbackprop",
               lambda n: partial(_loop_of_trainings, *grids[n])),
        Engine(SWEEP, "jaxbackprop", lambda n: lambda: train.sweep(
            loss, grids[n][1], X_DATA, Y_DATA, optimizer=SWEEP_SGD,
            learning_rate=grids[n][0])[0], compiled=True),
        *(Engine(f"sweep, record={record!r}", "jaxbackprop",
                 lambda n, record=record: lambda: train.sweep(
                     loss, grids[n][1], X_DATA, Y_DATA, optimizer=SWEEP_SGD,
                     learning_rate=grids[n][0], record=record)[0], compiled=True)
          for record in ("epochs", "final")),
        Engine(f"sharded sweep over {_plural(jax.device_count(), 'device')}", "jaxbackprop",
               lambda n: _blocked(lambda: parallel.sharded_sweep(
                   loss, grids[n][1], X_DATA, Y_DATA, optimizer=SWEEP_SGD,
                   learning_rate=grids[n][0])[0]),
               compiled=True),
    ]
    steps = EPOCHS * len(X_DATA)
    cases = [Case(n, _label("trainings", n), n * steps, _close(peers.numpy_sweep(
        *(g.astype(np.float64) for g in grids[n]), np.asarray(X_DATA), np.asarray(Y_DATA),
        EPOCHS), 1e-5)) for n in settings.sweep_sizes]
    return _section("sweep", f"Many trainings of the lecture ({steps} steps each)", "step",
                    run_cases(engines, cases, settings, progress))


# ---------------------------------------------------------------------------------------
# 4. The tape's cost per node


def _chain_check(steps: int) -> Callable[[Any], tuple[bool, str]]:
    """``d chain/dx = a**steps``, with ``a`` rounded to the result's precision; tolerance
    ``2 K eps``, a bound on the rounding of K products."""
    def check(result: Any) -> tuple[bool, str]:
        dtype = np.asarray(result).dtype
        a = float(np.asarray(CHAIN_A, dtype))
        return _close(a**steps, 4 * steps * float(np.finfo(dtype).eps))(result)
    return check


def _chain_of(steps: int) -> Callable[[Any], Any]:
    return partial(peers.chain, steps=steps, a=CHAIN_A, b=CHAIN_B)


def _fori_chain_of(steps: int) -> Callable[[Any], Any]:
    body = partial(peers.chain, steps=1, a=CHAIN_A, b=CHAIN_B)
    return lambda x: jax.lax.fori_loop(0, steps, lambda _, x: body(x), x)


def tape_chains(settings: Settings, progress: Progress = None) -> Section:
    """Gradient of a K-node chain (K/2 steps of ``x * a + b``) at x = 1, timed per node."""
    one = np.float32(1.0)
    engines = [
        _peer("PyTorch eager", "torch", lambda torch, k: partial(
            peers.pytorch_chain_grad, torch, k // 2, CHAIN_A, CHAIN_B), pytorch=True),
        _peer(MICROGRAD, "micrograd.engine", lambda engine, k: partial(
            peers.micrograd_chain_grad, engine, k // 2, CHAIN_A, CHAIN_B)),
        _peer("HIPS autograd", "autograd", lambda autograd, k: partial(
            peers.autograd_chain_grad, autograd, k // 2, CHAIN_A, CHAIN_B)),
        Engine(TAPE_EAGER, "jaxbackprop",
               lambda k: partial(tape.grad(_chain_of(k // 2)), 1.0)),
        Engine(TAPE_JIT, "jaxbackprop",
               lambda k: _blocked(jax.jit(tape.grad(_chain_of(k // 2))), one),
               compiled=True, unrolled=True),
        Engine("jax.grad eager", "JAX", lambda k: _blocked(jax.grad(_chain_of(k // 2)), one)),
        Engine(JAX_JIT, "JAX",
               lambda k: _blocked(jax.jit(jax.grad(_chain_of(k // 2))), one),
               compiled=True, unrolled=True),
        Engine("jax.jit(jax.grad) of lax.fori_loop", "JAX",
               lambda k: _blocked(jax.jit(jax.grad(_fori_chain_of(k // 2))), one),
               compiled=True),
    ]
    cases = [Case(k, _label("K", k), k, _chain_check(k // 2)) for k in settings.chain_lengths]
    return _section("chain", "Reverse mode on a chain of K nodes (K/2 steps of x*a + b)",
                    "node", run_cases(engines, cases, settings, progress))


SECTIONS: dict[str, Callable[[Settings, Progress], Section]] = {
    "lecture": lecture_training,
    "sgd": per_sample_sgd,
    "sweep": sweeps,
    "chain": tape_chains,
}
