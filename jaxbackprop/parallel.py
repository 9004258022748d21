"""The trainings of :mod:`jaxbackprop.train` across many devices, one host or many.

Two ways to use more than one device, both one ``jax.jit`` over a device mesh
(``jax.make_mesh``) with ``NamedSharding`` placing the arrays; XLA inserts the
communication:

* :func:`sharded_sweep`: independent trainings (a sweep over learning rates and initial
  weights), the runs split along the mesh axis ``"runs"``, the data replicated. No
  communication at all: each device trains its own runs.
* :func:`data_parallel_train`: minibatch SGD on the mean loss over a batch,
  ``L(w) = (1/B) sum_i loss(w, x_i, y_i)``, each batch split along the mesh axis
  ``"data"``. Each device sums the loss and gradient of its slice; XLA all-reduces the
  sums, so every device applies the same update. The loops are ``lax.scan`` inside the
  compiled program: no Python loop issues collectives one by one.

Both run on one device unchanged (a mesh of one). To try eight devices on a CPU, start
Python with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``.

Many hosts: start the same program on every host, and call
``jax.distributed.initialize(coordinator_address="host0:1234", num_processes=N,
process_id=i)`` first in each (on CPUs also
``jax.config.update("jax_cpu_collectives_implementation", "gloo")``; on GPU and TPU
clusters the arguments are usually detected). ``jax.devices()`` then lists every host's
devices, the default mesh spans them all, and each process passes the same full inputs:
it places only the shards its own devices hold (``jax.make_array_from_callback``). The
results are global arrays; read them with
``jax.experimental.multihost_utils.process_allgather``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

import jaxbackprop.numpy as jbnp
from jaxbackprop.lecture import EPOCHS, LEARNING_RATE
from jaxbackprop.train import (UNROLL, ArrayLike, Engine, LossFn, OptimizerFactory, TrainHistory,
                               _divergence, _first_non_finite, _prepare, _scalar_text,
                               trajectory)


def make_mesh(axis: str, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis mesh named ``axis`` over ``devices`` (default: every device of every host)."""
    devices = jax.devices() if devices is None else list(devices)
    return jax.make_mesh((len(devices),), (axis,), (AxisType.Auto,), devices=devices)


def _global(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from the same host value on every process; each places its shards."""
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def _axis_size(mesh: Mesh, axis: str) -> int:
    if axis not in mesh.axis_names:
        raise ValueError(f"mesh must have an axis named {axis!r}, got axes {mesh.axis_names}")
    return mesh.shape[axis]


# ---------------------------------------------------------------------------------------
# Independent trainings, split across devices


@functools.lru_cache(maxsize=32)
def _sharded_sweep_program(loss: LossFn, optimizer: OptimizerFactory, engine: Engine, epochs: int,
                           unroll: int, mesh: Mesh) -> Callable[..., tuple[jax.Array, TrainHistory]]:
    """``jit`` of the batched :func:`trajectory`, the runs split along ``"runs"``; returns the
    final weights and the history, runs first."""
    runs, replicated = NamedSharding(mesh, P("runs")), NamedSharding(mesh, P())

    def program(w0: Any, learning_rate: Any, xs: Any, ys: Any) -> tuple[jax.Array, TrainHistory]:
        h = trajectory(loss, w0, learning_rate, xs, ys, optimizer=optimizer, epochs=epochs,
                       engine=engine, unroll=unroll, batched=True)  # time-major
        h = TrainHistory(*(jnp.moveaxis(a, axis, 0) for a, axis in zip(h, (2, 2, 1, 1))))
        return h.params[:, -1], h

    return jax.jit(program, in_shardings=(runs, runs, replicated, replicated), out_shardings=runs)


def sharded_sweep(loss: LossFn, w0: ArrayLike, xs: ArrayLike, ys: ArrayLike, *,
                  learning_rate: ArrayLike = LEARNING_RATE, optimizer: OptimizerFactory = optax.sgd,
                  epochs: int = EPOCHS, engine: Engine = "jax", unroll: int = UNROLL,
                  mesh: Mesh | None = None) -> tuple[jax.Array, TrainHistory]:
    """:func:`jaxbackprop.train.sweep`, its runs split across the devices of ``mesh``.

    ``w0`` and ``learning_rate`` broadcast to the runs' shape ``B``; the runs are padded
    to a multiple of the ``"runs"`` axis (repeating the last one; the padding is dropped
    from the result). Returns the final weights (shape ``B``) and the
    :class:`~jaxbackprop.train.TrainHistory` as global JAX arrays sharded by run.
    Diverging runs are not an error: their losses are inf or NaN, as computed.
    """
    mesh = make_mesh("runs") if mesh is None else mesh
    devices = _axis_size(mesh, "runs")
    problem = _prepare(w0, xs, ys, learning_rate, epochs, engine, optimizer, sweep=True)
    w0s, rates = np.broadcast_arrays(np.asarray(problem.w0), np.asarray(problem.learning_rate))
    shape, count = w0s.shape, w0s.size
    padding = -count % devices
    w0s, rates = (np.pad(a.reshape(-1), (0, padding), mode="edge") for a in (w0s, rates))

    runs, replicated = NamedSharding(mesh, P("runs")), NamedSharding(mesh, P())
    program = _sharded_sweep_program(loss, optimizer, engine, epochs, unroll, mesh)
    w, history = program(_global(w0s, runs), _global(rates, runs),
                         _global(np.asarray(problem.xs), replicated),
                         _global(np.asarray(problem.ys), replicated))
    if padding or len(shape) != 1:  # drop the padding, restore the runs' shape
        w, history = jax.tree.map(lambda a: a[:count].reshape(*shape, *a.shape[1:]), (w, history))
    return w, history


# ---------------------------------------------------------------------------------------
# One training, each batch split across devices


@functools.lru_cache(maxsize=32)
def batch_mean(loss: LossFn) -> LossFn:
    """``L(w; xb, yb) = mean_i loss(w, xb[i], yb[i])`` for a loss that broadcasts over a batch
    (the lecture's does), written with :mod:`jaxbackprop.numpy` so both engines run it."""

    def mean_loss(w: Any, xb: Any, yb: Any) -> Any:
        return jbnp.mean(loss(w, xb, yb))

    return mean_loss


@functools.lru_cache(maxsize=32)
def _data_parallel_program(loss: LossFn, optimizer: OptimizerFactory, engine: Engine, epochs: int,
                           mesh: Mesh) -> Callable[..., TrainHistory]:
    batches, replicated = NamedSharding(mesh, P(None, "data")), NamedSharding(mesh, P())
    run = functools.partial(trajectory, batch_mean(loss), optimizer=optimizer, epochs=epochs,
                            engine=engine, unroll=1)
    return jax.jit(run, in_shardings=(replicated, replicated, batches, batches),
                   out_shardings=replicated)


def data_parallel_train(loss: LossFn, w0: ArrayLike, xs: ArrayLike, ys: ArrayLike, *,
                        batch_size: int, optimizer: OptimizerFactory = optax.sgd,
                        learning_rate: ArrayLike = LEARNING_RATE, epochs: int = EPOCHS,
                        engine: Engine = "jax",
                        mesh: Mesh | None = None) -> tuple[jax.Array, TrainHistory]:
    """Minibatch training on the mean loss of each batch, every batch split across devices.

    The samples are taken in order, ``batch_size`` at a time (``len(xs)`` must be a
    multiple of it, and ``batch_size`` a multiple of the mesh's ``"data"`` axis). One
    step per batch: ``L, g = value_and_grad(mean loss)``, then the optimizer's update;
    XLA all-reduces the per-device partial sums. ``batch_size=1`` on one device is
    exactly :func:`~jaxbackprop.train.train_scan`. The history is per batch:
    ``losses`` and ``grads`` have shape ``(epochs, len(xs) // batch_size)``. Returns
    replicated global JAX arrays. Raises :class:`~jaxbackprop.train.DivergenceError`
    when a batch's loss becomes inf or NaN (``sample`` is then the batch index).
    """
    mesh = make_mesh("data") if mesh is None else mesh
    devices = _axis_size(mesh, "data")
    problem = _prepare(w0, xs, ys, learning_rate, epochs, engine, optimizer)
    samples = problem.xs.shape[0]
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    if samples % batch_size:
        raise ValueError(f"batch_size must divide the number of samples {samples}, got {batch_size}")
    if batch_size % devices:
        raise ValueError(f"batch_size must be a multiple of the {devices} devices of the mesh's "
                         f"'data' axis, got {batch_size}")

    for name, values in (("xs", np.asarray(problem.xs)), ("ys", np.asarray(problem.ys))):
        finite = np.isfinite(values).reshape(samples, -1).all(axis=1)
        if not finite.all():  # named by sample here: after batching only the batch is known
            i = int(np.argmin(finite))
            raise ValueError(f"{name}[{i}] must be finite, got {_scalar_text(values[i])}")

    def batched(a: Any) -> np.ndarray:
        a = np.asarray(a)
        return a.reshape(samples // batch_size, batch_size, *a.shape[1:])

    batches, replicated = NamedSharding(mesh, P(None, "data")), NamedSharding(mesh, P())
    xb, yb = batched(problem.xs), batched(problem.ys)
    program = _data_parallel_program(loss, optimizer, engine, epochs, mesh)
    history = program(_global(np.asarray(problem.w0), replicated),
                      _global(np.asarray(problem.learning_rate), replicated),
                      _global(xb, batches), _global(yb, batches))
    failure = _first_non_finite(np.asarray(history.losses))
    if failure is not None:
        host = TrainHistory(*(np.asarray(a) for a in history))
        raise _divergence(host, *failure, problem._replace(xs=xb, ys=yb))
    return history.params[-1], history


__all__ = ["make_mesh", "sharded_sweep", "batch_mean", "data_parallel_train"]
