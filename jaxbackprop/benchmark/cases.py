"""The benchmark's cases: each a workload with its engines side by side and a float64 check.

- ``chain``: reverse mode on a chain of K nodes (K/2 steps of ``x * a + b``), eager:
  the tape beside micrograd, PyTorch and HIPS autograd; then compiled:
  ``jax.jit(tape.grad)`` beside ``jax.jit(jax.grad)``. Checked by ``d out/dx = a**(K/2)``.
- ``lecture``: the lecture's 30 steps, ``train_per_sample`` and ``train_scan`` beside the
  lecture's own PyTorch loop. Checked against the same SGD in float64.
- ``sgd``: per-sample SGD over N samples, ``train_scan`` (sequential and
  ``method="parallel"``) beside a bare ``lax.scan`` keeping the same outputs and a
  ``lax.scan`` of the affine map ``w = a_i w + b_i`` (one FMA per step, the floor), all
  on the same data already on the device.
- ``sweep``: many trainings of the lecture, ``sweep(record="final")`` and
  ``sharded_sweep`` beside a bare ``jit(vmap)`` of a scan and vectorised NumPy.

The peers are written as their users would write them; none is a dependency.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from functools import partial
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxbackprop import lecture, parallel, tape, train
from jaxbackprop.benchmark import Case, Check, Engine, Run, Settings
from jaxbackprop.model import loss

CHAIN_A, CHAIN_B = 1.0001, 0.0001  # each chain step is x -> x * a + b
TORCH_CPU = "pip install torch --index-url https://download.pytorch.org/whl/cpu"
PYTORCH = "PyTorch eager"


def _peer(name: str, module: str, make: Callable[[ModuleType], Run], install: str) -> Engine:
    """A peer's engine, or one marked not installed (with how to install it)."""
    try:
        found = importlib.import_module(module)
    except ImportError:
        return Engine(name, None, note=install)
    return Engine(name, partial(make, found))


def _blocked(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Run:
    """A call of ``f`` that waits for JAX's asynchronous dispatch to finish."""
    return lambda: jax.block_until_ready(f(*args, **kwargs))


def close_to(reference: Any, rtol: float) -> Check:
    """A check: every element within ``rtol * max(|reference|, 1)`` of ``reference``."""
    def check(result: Any) -> str:
        ref = np.asarray(reference, np.float64)
        error = np.abs(np.asarray(result, np.float64) - ref) / np.maximum(np.abs(ref), 1.0)
        worst = float(np.max(error))
        return "" if worst <= rtol else f"off by {worst:.2g} from the float64 reference"
    return check


def _label(prefix: str, n: int) -> str:
    return f"{prefix} = {n}" if n < 1000 else f"{prefix} = 1e{len(str(n)) - 1}"


# ---------------------------------------------------------------------------------------
# chain: K nodes


def chain(x: Any, steps: int) -> Any:
    """``steps`` times ``x = x * a + b`` (two nodes each); only operators, so it runs on
    every engine. ``d out/dx = a**steps``."""
    for _ in range(steps):
        x = x * CHAIN_A + CHAIN_B
    return x


def _chain_check(steps: int, dtype: Any) -> Check:
    """``a**steps`` with ``a`` rounded to ``dtype``; tolerance ``4 K eps``."""
    a = float(np.asarray(CHAIN_A, dtype))
    return close_to(a**steps, 4 * steps * float(np.finfo(dtype).eps))


def _micrograd(engine: ModuleType, steps: int) -> Run:
    def run() -> float:
        x = engine.Value(1.0)
        chain(x, steps).backward()  # recursive topological sort: RecursionError past ~1e3
        return x.grad
    return run


def _torch_chain(torch: ModuleType, steps: int) -> Run:
    def run() -> float:
        x = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
        chain(x, steps).backward()
        return float(x.grad)
    return run


def chains(settings: Settings) -> list[Case]:
    """Eager reverse mode on Python floats, then the unrolled chain compiled."""
    cases = []
    for k in settings.chains:
        steps = k // 2
        engines = [Engine("tape (Python floats)", lambda s=steps: partial(
            tape.grad(partial(chain, steps=s)), 1.0))]
        if k != settings.chains[-1] or len(settings.chains) == 1:  # the largest: tape only
            engines += [
                _peer("micrograd", "micrograd.engine", partial(_micrograd, steps=steps),
                      'pip install "jaxbackprop[bench]"'),
                _peer(PYTORCH, "torch", partial(_torch_chain, steps=steps), TORCH_CPU),
                _peer("HIPS autograd", "autograd", lambda ag, s=steps: partial(
                    ag.grad(partial(chain, steps=s)), 1.0), 'pip install "jaxbackprop[bench]"'),
            ]
        cases.append(Case("chain", f"eager, {_label('K', k)} nodes", k, "node",
                          tuple(engines), _chain_check(steps, np.float64),
                          "tape (Python floats)"))
    one = np.float32(1.0)
    for k in settings.jit_chains:
        f = partial(chain, steps=k // 2)
        cases.append(Case("chain", f"compiled, {_label('K', k)} nodes (unrolled)", k, "node", (
            Engine("jax.jit(tape.grad(f))", lambda f=f: _blocked(jax.jit(tape.grad(f)), one),
                   compiled=True),
            Engine("jax.jit(jax.grad(f))", lambda f=f: _blocked(jax.jit(jax.grad(f)), one),
                   compiled=True),
        ), _chain_check(k // 2, np.float32), "jax.jit(jax.grad(f))"))
    return cases


# ---------------------------------------------------------------------------------------
# lecture: 3 samples x 10 epochs


def reference_sgd(w0: float, xs: Sequence[float], ys: Sequence[float], lr: float,
                  epochs: int) -> float:
    """Per-sample SGD ``w -= lr * 2 (w x - y) x`` in float64: the reference."""
    w = float(w0)
    for _ in range(epochs):
        for x, y in zip(xs, ys, strict=True):
            w = w - lr * (2 * (w * x - y) * x)
    return w


def _torch_lecture(torch: ModuleType, xs: Sequence[float], ys: Sequence[float],
                   epochs: int) -> Run:
    """The second note's loop as it writes it (its prints left out); the final weight."""
    def run() -> float:
        w = torch.tensor([lecture.W0], requires_grad=True)
        for _ in range(epochs):
            for x_val, y_val in zip(xs, ys, strict=True):
                y_pred = x_val * w
                ((y_pred - y_val) * (y_pred - y_val)).backward()
                w.data = w.data - lecture.LEARNING_RATE * w.grad.data
                w.grad.data.zero_()
        return float(w.data[0])
    return run


def _trainer(fn: Callable[..., Any], xs: Any, ys: Any, epochs: int, **kwargs: Any) -> Run:
    """One call of a jaxbackprop trainer with the lecture's SGD; returns the final params."""
    sgd = optax.sgd(lecture.LEARNING_RATE)  # built once: a new optimizer is a new program
    return lambda: jax.block_until_ready(
        fn(loss, lecture.W0, xs, ys, optimizer=sgd, epochs=epochs, **kwargs)[0])


def lecture_training(settings: Settings) -> list[Case]:
    xs, ys, epochs = lecture.X_DATA, lecture.Y_DATA, lecture.EPOCHS
    check = close_to(reference_sgd(lecture.W0, xs, ys, lecture.LEARNING_RATE, epochs), 1e-5)
    return [Case("lecture", f"{epochs * len(xs)} steps", epochs * len(xs), "step", (
        _peer("PyTorch eager (the lecture's loop)", "torch",
              partial(_torch_lecture, xs=xs, ys=ys, epochs=epochs), TORCH_CPU),
        Engine("train_per_sample (one jitted step per sample)",
               lambda: _trainer(train.train_per_sample, xs, ys, epochs), compiled=True),
        Engine("train_scan (one program)",
               lambda: _trainer(train.train_scan, xs, ys, epochs), compiled=True),
    ), check, "PyTorch eager (the lecture's loop)")]


# ---------------------------------------------------------------------------------------
# sgd: N samples, one epoch


def synthetic_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` float32 samples of ``y = 2 x + noise``, ``x`` uniform in [0, 1)."""
    rng = np.random.default_rng(seed)
    xs = rng.uniform(0.0, 1.0, n)
    return xs.astype(np.float32), (2.0 * xs + rng.normal(0.0, 0.1, n)).astype(np.float32)


@partial(jax.jit, static_argnames="record")
def bare_scan(w: jax.Array, xs: jax.Array, ys: jax.Array, lr: jax.Array,
              record: str) -> Any:
    """``lax.scan`` of ``w <- w - lr * dL/dw`` by ``jax.value_and_grad``, keeping what
    ``train_scan`` keeps: every step's loss and gradient (``"steps"``) or nothing."""
    def step(w: jax.Array, xy: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, Any]:
        value, grad = jax.value_and_grad(loss)(w, *xy)
        return w - lr * grad, (value, grad) if record == "steps" else None
    w, kept = jax.lax.scan(step, w, (xs, ys))
    return w, kept


@jax.jit
def affine_scan(w: jax.Array, xs: jax.Array, ys: jax.Array, lr: jax.Array) -> jax.Array:
    """The same SGD as ``w <- a_i w + b_i`` (``a_i = 1 - 2 lr x_i^2``, ``b_i = 2 lr x_i y_i``):
    one fused multiply-add per step, the latency floor of a sequential step."""
    a, b = 1 - 2 * lr * xs * xs, 2 * lr * xs * ys
    return jax.lax.scan(lambda w, ab: (ab[0] * w + ab[1], None), w, (a, b), unroll=8)[0]


def per_sample_sgd(settings: Settings) -> list[Case]:
    n = settings.sgd_samples
    data = synthetic_data(n)
    check = close_to(reference_sgd(lecture.W0, data[0].tolist(), data[1].tolist(),
                                   lecture.LEARNING_RATE, 1), 1e-4)
    # The data is put on the device once, as a JAX user keeps a dataset trained on again
    # and again; from NumPy every engine's call would first copy it (XLA's CPU client
    # copies a NumPy array that is not 64-byte aligned: about 0.6 ms per 4 MB).
    xs, ys = jax.device_put(data)
    lr, w0 = jnp.float32(lecture.LEARNING_RATE), jnp.float32(lecture.W0)
    cases = []
    for record in ("steps", "final"):
        cases.append(Case("sgd", f"{_label('N', n)}, record={record!r}", n, "step", (
            Engine("train_scan", lambda r=record: _trainer(
                train.train_scan, xs, ys, 1, record=r), compiled=True),
            Engine('train_scan(method="parallel")', lambda r=record: _trainer(
                train.train_scan, xs, ys, 1, record=r, method="parallel"), compiled=True),
            Engine("bare lax.scan, same outputs", lambda r=record: _blocked(
                lambda: bare_scan(w0, xs, ys, lr, r)[0]), compiled=True),
            Engine("lax.scan of the affine map (floor)",
                   lambda: _blocked(affine_scan, w0, xs, ys, lr), compiled=True),
        ), check, "train_scan"))
    return cases


# ---------------------------------------------------------------------------------------
# sweep: many trainings


def initial_weights(n: int) -> np.ndarray:
    """``n`` initial weights around the lecture's, float32."""
    return (lecture.W0 + np.linspace(-2.0, 2.0, n)).astype(np.float32)


def numpy_sweep(w0s: np.ndarray, xs: np.ndarray, ys: np.ndarray, lr: float | np.floating,
                epochs: int) -> np.ndarray:
    """The lecture's SGD on a vector of weights, vectorised NumPy."""
    w = w0s.copy()
    for _ in range(epochs):
        for x, y in zip(xs, ys, strict=True):
            w = w - lr * (2 * (w * x - y) * x)
    return w


@jax.jit
def vmapped_scan(w0s: jax.Array, xs: jax.Array, ys: jax.Array, lr: jax.Array) -> jax.Array:
    """:func:`bare_scan` (final weight only) for many initial weights at once, ``jax.vmap``."""
    return jax.vmap(lambda w: bare_scan(w, xs, ys, lr, "final")[0])(w0s)


def sweeps(settings: Settings) -> list[Case]:
    x32, y32 = (np.asarray(v, np.float32) for v in (lecture.X_DATA, lecture.Y_DATA))
    lr, epochs = lecture.LEARNING_RATE, lecture.EPOCHS
    steps = epochs * len(x32)
    one_device = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("runs",))
    cases = []
    for n in settings.sweeps:
        w0s = initial_weights(n)
        reference = numpy_sweep(w0s.astype(np.float64), np.asarray(lecture.X_DATA),
                                np.asarray(lecture.Y_DATA), lr, epochs)

        def trainer(fn: Callable[..., Any], w0s: np.ndarray = w0s, **kwargs: Any) -> Run:
            sgd = optax.sgd(lr)  # built once: a new optimizer is a new program
            return _blocked(lambda: fn(loss, w0s, lecture.X_DATA, lecture.Y_DATA,
                                       optimizer=sgd, epochs=epochs, record="final",
                                       **kwargs)[0])

        cases.append(Case("sweep", f"{_label('runs', n)} x {steps} steps", n * steps, "step", (
            Engine('sweep(record="final")', partial(trainer, train.sweep), compiled=True),
            Engine("sharded_sweep, one device", partial(
                trainer, parallel.sharded_sweep, mesh=one_device), compiled=True),
            Engine("bare jit(vmap(lax.scan))", lambda w0s=w0s: _blocked(
                vmapped_scan, w0s, np.tile(x32, epochs), np.tile(y32, epochs),
                jnp.float32(lr)), compiled=True),
            Engine("NumPy, vectorised", lambda w0s=w0s: partial(
                numpy_sweep, w0s, x32, y32, np.float32(lr), epochs)),
        ), close_to(reference, 1e-5), 'sweep(record="final")'))
    return cases


SECTIONS: dict[str, Callable[[Settings], list[Case]]] = {
    "chain": chains,
    "lecture": lecture_training,
    "sgd": per_sample_sgd,
    "sweep": sweeps,
}
