"""A small multilayer perceptron that both engines differentiate, and 2-D data for it.

"How do we compute the gradient in a complicated network?" The lecture answers with the
computational graph and the chain rule, then stops at ``y_hat = w * x``. This module is
the complicated network: layers ``h_{k+1} = tanh(h_k W_k + b_k)`` and a last, linear
layer giving one logit ``z`` per point, trained as a binary classifier with the
logistic loss (binary cross-entropy on the logit, written so that it never overflows):

    L = mean(max(z, 0) - z * y + log(1 + exp(-|z|)))      y in {0, 1}

Everything is written with operators and :mod:`jaxbackprop.numpy`, so the very same
:func:`loss` goes to ``jax.grad`` and to ``jaxbackprop.tape.grad``. Parameters are a
pytree, a list of ``(W, b)`` pairs, so optax updates them as they are. The data sets
(:func:`two_moons`, :func:`spirals`) are generated here, with NumPy: no download.

    >>> import jax
    >>> from jaxbackprop import mlp, tape
    >>> x, y = mlp.two_moons(8, seed=0)
    >>> params = mlp.init(jax.random.key(0), (2, 4, 1))
    >>> g_jax = jax.grad(mlp.loss)(params, x, y)
    >>> g_tape = tape.grad(mlp.loss)(params, x, y)
    >>> [a.shape for a in jax.tree.leaves(g_tape)]
    [(2, 4), (4,), (4, 1), (1,)]
    >>> bool(jax.tree.all(jax.tree.map(lambda a, b: jax.numpy.allclose(a, b, atol=1e-6),
    ...                                g_jax, g_tape)))
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

import jaxbackprop.numpy as jbnp
from jaxbackprop.tape import ShapeError

Params = list[tuple[Any, Any]]  # [(W_0, b_0), (W_1, b_1), ...]; W_k: (n_k, n_{k+1})


def two_moons(samples: int, *, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles in the plane, labelled 0 and 1, centred at the origin.

    Class 0 lies on ``(cos t, sin t)``, class 1 on ``(1 - cos t, 1/2 - sin t)`` for ``t``
    in ``[0, pi]`` (as scikit-learn's ``make_moons``), shifted by ``(-1/2, -1/4)`` and
    perturbed by Gaussian noise of standard deviation ``noise``.

    Args:
      samples: the number of points (>= 2); class 0 gets the extra one if it is odd.
      noise: the noise's standard deviation (>= 0).
      seed: NumPy's random seed.

    Returns:
      ``(x, y)``: float32 arrays of shapes ``(samples, 2)`` and ``(samples,)``.

    Raises:
      ValueError: ``samples < 2`` or ``noise < 0``.

    >>> x, y = two_moons(5, noise=0.0)
    >>> x.shape, y.tolist()
    ((5, 2), [0.0, 0.0, 0.0, 1.0, 1.0])
    """
    _check_data(samples, noise)
    rng = np.random.default_rng(seed)
    first = (samples + 1) // 2
    t0, t1 = np.linspace(0.0, np.pi, first), np.linspace(0.0, np.pi, samples - first)
    x = np.concatenate([np.stack([np.cos(t0), np.sin(t0)], 1),
                        np.stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)], 1)])
    x = x - [0.5, 0.25] + noise * rng.standard_normal(x.shape)
    y = np.concatenate([np.zeros(first), np.ones(samples - first)])
    return x.astype(np.float32), y.astype(np.float32)


def spirals(samples: int, *, noise: float = 0.1, turns: float = 1.5,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals around the origin, labelled 0 and 1 (harder than the moons).

    Class ``c`` lies on ``r (cos(a + c pi), sin(a + c pi))`` with ``a = 2 pi turns r`` for
    ``r`` in ``[0.05, 1]``, perturbed by Gaussian noise of standard deviation ``noise * r``.

    Args and Returns as :func:`two_moons`; ``turns`` is how often each arm winds round.

    >>> x, y = spirals(6)
    >>> x.shape, y.tolist()
    ((6, 2), [0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    """
    _check_data(samples, noise)
    rng = np.random.default_rng(seed)
    first = (samples + 1) // 2
    parts = []
    for label, count in ((0, first), (1, samples - first)):
        r = np.linspace(0.05, 1.0, count)
        angle = 2 * np.pi * turns * r + label * np.pi
        arm = r[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)
        parts.append(arm + noise * r[:, None] * rng.standard_normal(arm.shape))
    y = np.concatenate([np.zeros(first), np.ones(samples - first)])
    return np.concatenate(parts).astype(np.float32), y.astype(np.float32)


def _check_data(samples: int, noise: float) -> None:
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
        raise ValueError(f"samples must be an integer >= 2, got {samples!r}")
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")


def init(key: jax.Array, sizes: Sequence[int]) -> Params:
    """Random parameters for layers of ``sizes`` (``(2, 16, 16, 1)``: 2 inputs, 1 output).

    ``W_k`` is drawn from a normal distribution of variance ``1 / n_k`` (LeCun's, which
    keeps ``tanh`` layers out of saturation), ``b_k`` is zero; float32.

    Raises:
      ValueError: fewer than two sizes, or a size that is not a positive integer.
    """
    sizes = tuple(sizes)
    if len(sizes) < 2 or not all(type(n) is int and n > 0 for n in sizes):
        raise ValueError(f"sizes must be two or more positive integers (inputs, ..., outputs), "
                         f"got {sizes!r}")
    shapes = list(zip(sizes[:-1], sizes[1:], strict=False))
    # One draw for all the weights, cut into layers on the host: a draw per layer would
    # compile a sampler per shape, which costs more than the whole draw.
    draws = np.asarray(jax.random.normal(key, (sum(a * b for a, b in shapes),)))
    params, start = [], 0
    for n_in, n_out in shapes:
        w = draws[start:start + n_in * n_out].reshape(n_in, n_out) / np.float32(math.sqrt(n_in))
        params.append((jnp.asarray(w), jnp.asarray(np.zeros(n_out, w.dtype))))
        start += n_in * n_out
    return params


def layer(w: ArrayLike, b: ArrayLike, h: ArrayLike) -> Any:
    """One hidden layer, ``tanh(h W + b)``."""
    return jbnp.tanh(jbnp.matmul(h, w) + b)


def apply(params: Params, x: ArrayLike, *, hidden: Callable[..., Any] = layer) -> Any:
    """The network's logits: ``hidden`` layers (:func:`layer`), then a linear last layer.

    ``x`` has shape ``(n_0,)`` or ``(points, n_0)``; the result drops the last layer's
    axis when it has one unit (one logit per point). Inputs whose sizes do not fit the
    layers raise the tape's :class:`~jaxbackprop.tape.ShapeError`, which names both
    shapes, on either engine. ``hidden`` replaces :func:`layer`, for example by
    ``jax.checkpoint(layer)`` (recompute each layer in the backward pass).
    """
    h = x
    for w, b in params[:-1]:
        h = hidden(w, b, h)
    w, b = params[-1]
    z = jbnp.matmul(h, w) + b
    shape = np.shape(z)
    return jbnp.reshape(z, shape[:-1]) if shape[-1] == 1 else z


def logistic_loss(z: ArrayLike, y: ArrayLike) -> Any:
    """The mean logistic loss of logits ``z`` for labels ``y`` in {0, 1}.

    ``max(z, 0) - z y + log(1 + exp(-|z|))`` equals ``-y log p - (1 - y) log(1 - p)``
    with ``p = sigmoid(z)``, without overflowing for large ``|z|``. Its gradient in ``z``
    is ``(p - y) / points``.

    Raises:
      ShapeError: ``y``'s shape is not ``z``'s (a ``(points, 1)`` column would otherwise
        broadcast against ``(points,)`` into a wrong, square loss).
    """
    if np.shape(y) != np.shape(z):
        raise ShapeError(f"the labels y must have the logits' shape {np.shape(z)}, "
                         f"got {np.shape(y)}")
    return jbnp.mean(jbnp.relu(z) - z * y + jbnp.log(1.0 + jbnp.exp(-jbnp.abs(z))))


def loss(params: Params, x: ArrayLike, y: ArrayLike) -> Any:
    """:func:`logistic_loss` of the network's logits ``apply(params, x)`` for labels ``y``.

    >>> import jax
    >>> x, y = two_moons(4)
    >>> params = [(jax.numpy.zeros((2, 3)), jax.numpy.zeros(3)), (jax.numpy.zeros((3, 1)),
    ...                                                             jax.numpy.zeros(1))]
    >>> print(f"{float(loss(params, x, y)):.6f}")  # log 2: every p = 1/2
    0.693147
    """
    return logistic_loss(apply(params, x), y)


def accuracy(params: Params, x: ArrayLike, y: ArrayLike) -> jax.Array:
    """The fraction of points whose predicted class (``z > 0``) is their label."""
    z = apply(params, x)
    return jnp.mean((jnp.asarray(z) > 0) == (jnp.asarray(y) > 0.5))


__all__ = ["Params", "two_moons", "spirals", "init", "layer", "apply", "logistic_loss", "loss",
           "accuracy"]
