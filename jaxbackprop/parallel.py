"""The trainings of :mod:`jaxbackprop.train` across many devices, one host or many.

Two ways to use more than one device, both one ``jax.jit`` over a device mesh
(``jax.make_mesh``, a static argument) whose program places its arrays with
``jax.lax.with_sharding_constraint`` and ``NamedSharding``; XLA inserts the
communication. Both take the trainers' arguments and run the trainers' checks
(:mod:`jaxbackprop._validate`):

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
devices, the default mesh spans them all, and each process passes the same full inputs
(the program keeps only the shards its own devices hold). The results are global
arrays; read them with
``jax.experimental.multihost_utils.process_allgather``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.typing import ArrayLike

import jaxbackprop.numpy as jbnp
from jaxbackprop import _validate as check
from jaxbackprop.lecture import EPOCHS
from jaxbackprop.train import (
    Engine,
    LossFn,
    Record,
    Samples,
    TrainHistory,
    explain,
    init_opt_state,
    sweep_program,
    trajectory,
)


def make_mesh(axis: str, devices: Sequence[Any] | None = None) -> Mesh:
    """A one-axis mesh named ``axis`` over ``devices`` (default: every device of every host)."""
    devices = jax.devices() if devices is None else list(devices)
    return jax.make_mesh((len(devices),), (axis,), (AxisType.Auto,), devices=devices)


def _axis_size(mesh: Mesh, axis: str) -> int:
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh such as "
                        f"jaxbackprop.parallel.make_mesh({axis!r}), got {type(mesh).__name__}")
    if axis not in mesh.axis_names:
        raise ValueError(f"mesh must have an axis named {axis!r}, got axes {mesh.axis_names}")
    return mesh.shape[axis]


# ---------------------------------------------------------------------------------------
# Independent trainings, split across devices


def sharded_sweep(loss: LossFn, w0: Any, xs: Samples, ys: Samples, *,
                  optimizer: optax.GradientTransformation, learning_rate: ArrayLike | None = None,
                  epochs: int = EPOCHS, engine: Engine = "jax", record: Record = "steps",
                  mesh: Mesh | None = None) -> tuple[Any, TrainHistory]:
    """:func:`jaxbackprop.train.sweep`, its runs split across the devices of ``mesh``.

    The same arguments, checks and program as :func:`~jaxbackprop.train.sweep`, compiled
    with the runs (axis 0 of its inputs and outputs) split along the mesh axis ``"runs"``
    and the data replicated (``jax.lax.with_sharding_constraint``). No communication: each
    device trains its own runs. The runs are padded to a multiple of the axis (repeating
    the last one; the padding is dropped from the result).
    Returns the final parameters and the history as global JAX arrays, runs first.

    >>> import numpy as np, optax
    >>> from jaxbackprop import lecture, loss
    >>> sgd = optax.inject_hyperparams(optax.sgd)(learning_rate=np.array([0.01, 0.02]))
    >>> w, h = sharded_sweep(loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA, optimizer=sgd)
    >>> w.shape, [f"{l:.4f}" for l in np.asarray(h.epoch_loss[:, 0])]
    ((2,), ['7.3159', '5.8525'])
    """
    mesh = make_mesh("runs") if mesh is None else mesh
    _axis_size(mesh, "runs")
    problem = check.prepare(loss, w0, xs, ys, optimizer=optimizer, learning_rate=learning_rate,
                            epochs=epochs, engine=engine, record=record, runs=True,
                            data=False)
    check.size(problem, sweep=True)
    final, history, checks = sharded_sweep_program(problem.w0, problem.learning_rate,
                                                   problem.xs, problem.ys, mesh=mesh,
                                                   **problem.settings)
    explain(problem, checks, xs, ys, final=final)
    return final, history


@functools.partial(jax.jit, static_argnames=("mesh", "loss", "optimizer", "epochs", "engine",
                                             "record"))
def sharded_sweep_program(w0: Any, rates: Any, xs: Any, ys: Any, *, mesh: Mesh,
                          **settings: Any) -> tuple[Any, TrainHistory, Any]:
    """:func:`~jaxbackprop.train.sweep_program` with the runs split along the mesh axis
    ``"runs"`` and the data replicated: the runs (``w0``'s leaves and ``rates`` broadcast
    together to the runs' shape ``B``) flattened to one axis and padded to a multiple of
    the axis by repeating the last run; the padding is dropped from the results."""
    shape = jnp.broadcast_shapes(*map(jnp.shape, jax.tree.leaves((w0, rates))))
    count = math.prod(shape)
    padding = -count % mesh.shape["runs"]
    runs = NamedSharding(mesh, P("runs"))
    w0s, rates = jax.tree.map(lambda a: jnp.pad(jnp.broadcast_to(a, shape).reshape(-1),
                                                (0, padding), mode="edge"), (w0, rates))
    w0s, rates = jax.lax.with_sharding_constraint((w0s, rates), runs)
    final, history, checks = sweep_program(w0s, rates, xs, ys, **settings)
    final, history = jax.lax.with_sharding_constraint((final, history), runs)
    final, history = jax.tree.map(lambda a: a[:count].reshape(*shape, *a.shape[1:]),
                                  (final, history))
    return final, history, checks


# ---------------------------------------------------------------------------------------
# One training, each batch split across devices


def batch_mean(loss: LossFn) -> LossFn:
    """``L(w; xb, yb) = mean_i loss(w, xb[i], yb[i])`` for a loss that broadcasts over a batch
    (the lecture's does), written with :mod:`jaxbackprop.numpy` so both engines run it."""

    def mean_loss(w: Any, xb: Any, yb: Any) -> Any:
        return jbnp.mean(loss(w, xb, yb))

    return mean_loss


def check_broadcasts(loss: LossFn, w0: Any, xb: Any, yb: Any) -> None:
    """A ValueError unless ``loss(w0, xb, yb)`` on a batch gives each sample's loss, as
    ``jax.vmap`` of ``loss`` over the samples does: a loss that sums over its inputs, or
    contracts the batch axis (``jnp.dot(w, x)`` with ``x`` a batch), would otherwise train
    :func:`batch_mean` on the wrong objective, silently. Checked once, at ``w0``."""
    per_sample = np.asarray(jax.vmap(loss, (None, 0, 0))(w0, xb, yb))
    expected = ("loss must broadcast over a batch for data_parallel_train: loss(w, xb, yb) "
                "must give each sample's loss, as jax.vmap(loss, (None, 0, 0)) does (shape "
                f"{per_sample.shape})")
    try:
        batched = np.asarray(loss(w0, xb, yb))
    except (TypeError, ValueError) as error:  # e.g. jnp.dot(w, x) with x a batch
        raise ValueError(f"{expected}; on a batch it failed: {error}") from None
    if batched.shape != per_sample.shape:
        raise ValueError(f"{expected}, got shape {batched.shape}")
    if not np.allclose(batched, per_sample, rtol=1e-4, atol=1e-6, equal_nan=True):
        raise ValueError(f"{expected}, got other values")


@functools.partial(jax.jit, static_argnames=("mesh", "loss", "optimizer", "epochs", "engine"))
def data_parallel_program(w0: Any, learning_rate: Any, xb: Any, yb: Any, *, mesh: Mesh,
                          loss: LossFn, optimizer: optax.GradientTransformation, epochs: int,
                          engine: Engine) -> TrainHistory:
    """:func:`~jaxbackprop.train.trajectory` of the batch mean over the batches ``xb, yb``
    (``(batches, batch_size, ...)``), each batch split along the mesh axis ``"data"``; the
    parameters and the history replicated."""
    replicated = NamedSharding(mesh, P())
    xb, yb = jax.lax.with_sharding_constraint((xb, yb), NamedSharding(mesh, P(None, "data")))
    opt_state = init_opt_state(optimizer, w0, learning_rate)
    history = trajectory(batch_mean(loss), w0, xb, yb, optimizer=optimizer, opt_state=opt_state,
                         epochs=epochs, engine=engine, unroll=1)
    return jax.lax.with_sharding_constraint(history, replicated)


def data_parallel_train(loss: LossFn, w0: Any, xs: Samples, ys: Samples, *,
                        batch_size: int, optimizer: optax.GradientTransformation,
                        learning_rate: ArrayLike | None = None, epochs: int = EPOCHS,
                        engine: Engine = "jax",
                        mesh: Mesh | None = None) -> tuple[Any, TrainHistory]:
    """Minibatch training on the mean loss of each batch, every batch split across devices.

    The samples are taken in order, ``batch_size`` at a time (``len(xs)`` must be a
    multiple of it, and ``batch_size`` a multiple of the mesh's ``"data"`` axis). One
    step per batch: ``L, g = value_and_grad(mean loss)``, then the optimizer's update
    (``loss`` must broadcast over a batch: :func:`check_broadcasts`);
    XLA all-reduces the per-device partial sums. ``batch_size=1`` on one device is
    exactly :func:`~jaxbackprop.train.train_scan`. The history is per batch:
    ``losses`` and ``grads`` have shape ``(epochs, len(xs) // batch_size)``. Returns
    replicated global JAX arrays. Raises :class:`~jaxbackprop.train.DivergenceError`
    when a batch's loss becomes inf or NaN (``sample`` is then the batch index), and a
    ValueError when the parameters never moved because the optimizer's first update is
    exactly 0 (a learning rate that underflows in the training dtype).
    """
    mesh = make_mesh("data") if mesh is None else mesh
    devices = _axis_size(mesh, "data")
    problem = check.prepare(loss, w0, xs, ys, optimizer=optimizer, learning_rate=learning_rate,
                            epochs=epochs, engine=engine, record="steps")
    samples = len(problem.xs)
    batch_size = check.whole_number("batch_size", batch_size)
    if samples % batch_size:
        raise ValueError(f"batch_size must divide the number of samples {samples}, "
                         f"got {batch_size}")
    if batch_size % devices:
        raise ValueError(f"batch_size must be a multiple of the {devices} devices of the mesh's "
                         f"'data' axis, got {batch_size}")
    batches = samples // batch_size
    check.check_size("steps", problem.settings["epochs"], batches, 1,
                     check.parameter_count(problem.w0), problem.dtype.itemsize)
    xb, yb = (a.reshape(batches, batch_size, *a.shape[1:]) for a in (problem.xs, problem.ys))
    check_broadcasts(loss, problem.w0, xb[0], yb[0])
    settings = {k: problem.settings[k] for k in ("loss", "optimizer", "epochs", "engine")}
    history = data_parallel_program(problem.w0, problem.learning_rate, xb, yb, mesh=mesh,
                                    **settings)
    host = jax.device_get(history)
    error = check.divergence(host, xb, yb, problem.learning_rate)
    if error is not None:
        raise error
    # The data was checked on the host (prepare): only a first update of 0 is left to explain,
    # asked of the batches' mean loss.
    moved = check.moved(problem.w0, jax.tree.map(lambda p: p[-1], host.params))
    batched = problem._replace(xs=xb, ys=yb, settings=dict(settings, loss=batch_mean(loss)))
    explain(batched, np.array([True, moved]), xs, ys)
    return jax.tree.map(lambda p: p[-1], history.params), history


__all__ = ["make_mesh", "sharded_sweep", "batch_mean", "check_broadcasts", "data_parallel_train",
           "data_parallel_program"]
