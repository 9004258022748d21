"""The peers, written as their users would write them: PyTorch eager, micrograd, HIPS
autograd, and NumPy with the gradient derived by hand.

None of them is a dependency of jaxbackprop: :func:`optional_import` returns ``None``
for a peer that is not installed, and the benchmark reports it as "not installed".
The hand-derived gradient of the lecture's loss is ``dL/dw = 2 (w x - y) x``; the
NumPy loops apply it in the same order of operations as PyTorch's backward pass, so
that their float32 results can be compared bit for bit.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import Any, Sequence

import numpy as np


# How to install each peer, for the "not installed" rows. PyTorch's plain wheel pulls a
# CUDA build of several GB; the CPU build is enough here.
INSTALL: dict[str, str] = {
    "torch": "pip install torch --index-url https://download.pytorch.org/whl/cpu",
    "micrograd": 'pip install "jaxbackprop[bench]"',
    "autograd": 'pip install "jaxbackprop[bench]"',
}


@functools.cache
def optional_import(name: str) -> ModuleType | None:
    """The module ``name``, or ``None`` if it is not installed (imported on first use)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# ---------------------------------------------------------------------------------------
# Training: the lecture's per-sample SGD


def pytorch_lecture_training(torch: ModuleType, x_data: Sequence[float],
                             y_data: Sequence[float], w0: float, lr: float,
                             epochs: int) -> float:
    """The second note's training loop, as the note writes it (its prints left out).

    ``Variable(torch.Tensor([1.0]), requires_grad=True)`` in the note is today's
    ``torch.tensor([w0], requires_grad=True)``. Returns the final weight.
    """
    w = torch.tensor([w0], requires_grad=True)

    def forward(x: Any) -> Any:
        return x * w

    def loss(x: Any, y: Any) -> Any:
        y_pred = forward(x)
        return (y_pred - y) * (y_pred - y)

    for _epoch in range(epochs):
        for x_val, y_val in zip(x_data, y_data):
            l = loss(x_val, y_val)  # noqa: E741  (the note's name)
            l.backward()
            w.data = w.data - lr * w.grad.data
            w.grad.data.zero_()
    return float(w.data[0])


def pytorch_sweep(torch: ModuleType, lrs: np.ndarray, w0s: np.ndarray,
                  x_data: Sequence[float], y_data: Sequence[float], epochs: int) -> np.ndarray:
    """The lecture's loop on a vector of independent weights, one learning rate each.

    The losses of the trainings do not interact, so ``sum(l).backward()`` gives every
    weight its own gradient. Returns the final weights.
    """
    w = torch.tensor(w0s, requires_grad=True)
    lr = torch.tensor(lrs)
    for _epoch in range(epochs):
        for x_val, y_val in zip(x_data, y_data):
            y_pred = x_val * w
            ((y_pred - y_val) * (y_pred - y_val)).sum().backward()
            w.data = w.data - lr * w.grad.data
            w.grad.data.zero_()
    return w.detach().numpy()


def numpy_training(w0: float, xs: np.ndarray, ys: np.ndarray, lr: float, epochs: int) -> Any:
    """Per-sample SGD in a Python loop over NumPy scalars, ``w -= lr * 2 (w x - y) x``.

    Computes in the dtype of ``xs`` (float32 for the lecture). Returns the final weight.
    """
    w = xs.dtype.type(w0)
    for _epoch in range(epochs):
        for x, y in zip(xs, ys):
            w = w - lr * (2 * (w * x - y) * x)
    return w


def numpy_training_fma(w0: float, xs: np.ndarray, ys: np.ndarray, lr: float,
                       epochs: int) -> np.float32:
    """:func:`numpy_training` in float32 with ``w x - y`` as one fused multiply-add, as
    compiled code may contract it: the exact product (float64 holds it), one rounding.

    Not timed; it tells a last-bit difference from FMA contraction apart from an error.
    """
    f32, f64 = np.float32, np.float64
    w = f32(w0)
    for _epoch in range(epochs):
        for x, y in zip(xs.astype(f32), ys.astype(f32)):
            s = f32(f64(w) * f64(x) - f64(y))
            w = w - f32(lr) * (2 * s * x)
    return w


def numpy_sweep(lrs: np.ndarray, w0s: np.ndarray, xs: np.ndarray, ys: np.ndarray,
                epochs: int) -> np.ndarray:
    """:func:`numpy_training` for a vector of weights and learning rates at once."""
    w = w0s.copy()
    for _epoch in range(epochs):
        for x, y in zip(xs, ys):
            w = w - lrs * (2 * (w * x - y) * x)
    return w


def reference_training(w0: float, xs: Sequence[float], ys: Sequence[float], lr: float,
                       epochs: int) -> float:
    """The same SGD in float64 on Python floats: the reference every engine is checked by."""
    w = float(w0)
    for _epoch in range(epochs):
        for x, y in zip(xs, ys):
            w = w - lr * (2 * (w * x - y) * x)
    return w


# ---------------------------------------------------------------------------------------
# Chains: K nodes, K/2 steps of x -> x * a + b


def chain(x: Any, steps: int, a: float, b: float) -> Any:
    """``steps`` repetitions of ``x = x * a + b``: 2 nodes (mul, add) each; d out/dx = a**steps.

    Only operators, so one definition runs on every engine.
    """
    for _ in range(steps):
        x = x * a + b
    return x


def micrograd_chain_grad(engine: ModuleType, steps: int, a: float, b: float) -> float:
    """d chain/dx at x = 1 by micrograd (``engine`` is ``micrograd.engine``).

    micrograd sorts the graph by recursion, so a chain deeper than the recursion limit
    raises ``RecursionError``: that is its result there.
    """
    x = engine.Value(1.0)
    chain(x, steps, a, b).backward()
    return float(x.grad)


def autograd_chain_grad(autograd: ModuleType, steps: int, a: float, b: float) -> float:
    """d chain/dx at x = 1 by HIPS autograd."""
    return float(autograd.grad(lambda x: chain(x, steps, a, b))(1.0))


def pytorch_chain_grad(torch: ModuleType, steps: int, a: float, b: float) -> np.ndarray:
    """d chain/dx at x = 1 by PyTorch eager (float32)."""
    x = torch.tensor(1.0, requires_grad=True)
    chain(x, steps, a, b).backward()
    return x.grad.numpy()
