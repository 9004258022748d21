"""Training with optax: the lecture's per-sample loop, and the same loop as one XLA program.

The lecture's loop is per-sample SGD: for every epoch, for every sample ``(x, y)``,

.. math::

  L_t, g_t = L(w_t; x, y), \\nabla_w L(w_t; x, y) \\qquad
  u_t, s_{t+1} = \\mathrm{update}(g_t, s_t, w_t) \\qquad w_{t+1} = w_t + u_t

where ``update`` is an optax optimizer's (``optax.sgd(lr)``: ``u_t = -lr g_t``). The
trainers run it three ways, the same trajectory each time:

* :func:`train_per_sample`: a Python loop, one jitted step per sample (:func:`make_step`),
  an ``on_step`` callback after each: the lecture's loop, verbatim.
* :func:`train_scan`: the whole training as one compiled call (:func:`trajectory`,
  ``jax.lax.scan`` over the samples inside a scan over the epochs).
* :func:`sweep`: many independent trainings in one call, ``jax.vmap`` of that program.

``optimizer`` is a built ``optax.GradientTransformation``: ``optax.sgd(0.01)``,
``optax.adam(1e-3)``, ``optax.chain(optax.clip(1.0), optax.sgd(0.01))``,
``optax.sgd(schedule)``. ``jax.jit`` compiles once per optimizer object. To make the
learning rate data, build the optimizer once with ``optax.inject_hyperparams``, which
keeps the rate in the optimizer's state, and pass ``learning_rate=``: the trainer writes it
into that state (``optax.tree_utils.tree_set``), so a new rate, or a sweep's array of one
rate per run, reuses the compiled program.

``w0`` is any pytree of floating arrays or numbers (integers are promoted); the training
runs in their common dtype (float16, bfloat16, float32, float64), and the data is
converted to it. ``record`` chooses what is kept: every step (``"steps"``), each epoch
(``"epochs"``) or the final parameters (``"final"``). The gradient comes from
``jax.value_and_grad`` (``engine="jax"``) or the hand-written tape (``engine="tape"``).
Bad input is refused naming the argument, a history too large for memory raises
``MemoryError`` before anything is allocated, and a loss or a parameter that becomes
inf or NaN raises :class:`DivergenceError` (:mod:`jaxbackprop._validate` holds
these checks). The compiled trainers check the data on the device, as part of their
program, and explain on the host only what that check found (:func:`explain`); a
training whose parameters never moved because the first update is exactly 0
(``optax.sgd(1e-46)`` in float32) is a ValueError.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from jaxbackprop import _validate as check
from jaxbackprop import tape
from jaxbackprop._validate import DivergenceError, Samples
from jaxbackprop.lecture import EPOCHS

LossFn = Callable[[Any, Any, Any], Any]  # loss(params, x, y) -> scalar
Engine = Literal["jax", "tape"]
Record = Literal["steps", "epochs", "final"]
StepFn = Callable[[Any, Any, Any, Any], tuple[Any, Any, Any, Any]]

ENGINES: dict[str, Callable[[LossFn], Callable[..., tuple[Any, Any]]]] = {
    "jax": jax.value_and_grad,
    "tape": tape.value_and_grad,
}
METHODS: tuple[str, ...] = ("sequential", "parallel")  # train_scan's ways to run the scan
UNROLL: int = 8  # samples per iteration of the compiled loop (about the best on CPU)


class TrainHistory(NamedTuple):
    """What a training recorded (a sweep puts the runs' shape in front of every array).

    ``losses[e, i]`` and ``grads[e, i]`` are the loss and its gradient at sample ``i`` of
    epoch ``e``, taken before that sample's update; ``epoch_loss[e]`` is the last sample's
    loss, as the lecture prints it; ``params[e]`` holds the parameters after epoch ``e``.
    ``grads`` and ``params`` have the parameters' pytree structure, each leaf with these
    leading axes. The fields a ``record`` setting does not keep are ``None``.
    """

    losses: Any  # (epochs, samples)
    grads: Any  # pytree of (epochs, samples, *leaf.shape)
    epoch_loss: Any  # (epochs,)
    params: Any  # pytree of (epochs, *leaf.shape); a single row with record="final"

    def __repr__(self) -> str:
        def shapes(tree: Any) -> str:
            text = jax.tree.map(lambda a: f"{np.dtype(a.dtype).name}{list(np.shape(a))}", tree)
            return text if isinstance(text, str) else str(text).replace("'", "")

        kept = [f"{k}={shapes(v)}" for k, v in self._asdict().items() if v is not None]
        return f"TrainHistory({', '.join(kept)})"


class Step(NamedTuple):
    """One step of :func:`train_per_sample` or :func:`train_scan`, as ``on_step`` gets it."""

    epoch: int
    sample: int
    x: np.ndarray
    y: np.ndarray
    loss: np.ndarray  # before the update
    grad: Any  # the parameters' pytree


# ---------------------------------------------------------------------------------------
# The pure program


def init_opt_state(optimizer: optax.GradientTransformation, params: Any,
                   learning_rate: ArrayLike | None = None) -> Any:
    """``optimizer.init(params)``, with its injected learning rate set to ``learning_rate``
    when given (``optimizer`` then comes from ``optax.inject_hyperparams``; else TypeError)."""
    opt_state = optimizer.init(params)
    if learning_rate is None:
        return opt_state
    if check.injected_rate(opt_state) is None:
        raise check.no_rate_to_set()
    return optax.tree_utils.tree_set(opt_state, learning_rate=learning_rate)


def make_step(loss: LossFn, optimizer: optax.GradientTransformation,
              engine: Engine = "jax") -> StepFn:
    """One optimizer step on one sample, ``(params, opt_state, x, y) -> (params, opt_state, L, g)``.

    ``L, g = value_and_grad(loss)(params, x, y)`` (JAX's or the tape's, by ``engine``), then
    ``updates, opt_state = optimizer.update(g, opt_state, params)`` and
    ``params = optax.apply_updates(params, updates)``. ``L`` and ``g`` are taken before the
    update; a ``loss`` that does not return a real scalar is a TypeError saying so. Pure:
    ``jax.jit``, ``jax.vmap`` and ``jax.lax.scan`` compose with it.

    >>> import optax
    >>> from jaxbackprop import loss
    >>> step = make_step(loss, optax.sgd(0.01))
    >>> w, state, L, g = step(1.0, optax.sgd(0.01).init(1.0), 2.0, 4.0)
    >>> float(L), float(g), round(float(w), 4)
    (4.0, -8.0, 1.08)
    """
    def checked_loss(params: Any, x: Any, y: Any) -> Any:
        return check.loss_value(loss(params, x, y))

    value_and_grad = ENGINES[check.choice("engine", engine, check.ENGINES)](checked_loss)

    def step(params: Any, opt_state: Any, x: Any, y: Any) -> tuple[Any, Any, Any, Any]:
        value, grad = value_and_grad(params, x, y)
        updates, opt_state = optimizer.update(grad, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value, grad

    return step


def trajectory(loss: LossFn, params: Any, xs: Samples, ys: Samples, *,
               optimizer: optax.GradientTransformation, opt_state: Any = None,
               epochs: int = EPOCHS, engine: Engine = "jax", record: Record = "steps",
               unroll: int = UNROLL) -> TrainHistory:
    """The per-sample training as one pure function of arrays: ``lax.scan`` in ``lax.scan``.

    The inner scan runs :func:`make_step` over the samples ``(xs[i], ys[i])`` in order,
    ``unroll`` of them per loop iteration; the outer scan repeats it ``epochs`` times,
    starting from ``opt_state`` (default ``optimizer.init(params)``). The last sample's
    loss rides in the carry, so every ``record`` keeps bitwise the same numbers. Losses are
    in the parameters' common dtype. No checks of the data (only of the static settings,
    named as the trainers name them), no host transfers: it composes with ``jax.jit``,
    ``jax.vmap`` (:func:`sweep`), ``jax.grad`` and sharding.

    Args:
      loss: ``loss(params, x, y)``, a scalar.
      params: the initial parameters, a pytree of floating arrays.
      xs, ys: the samples, along the first axis.
      optimizer: a built optax optimizer.
      opt_state: its initial state (default: ``optimizer.init(params)``).
      epochs, engine, record, unroll: static settings (see :func:`train_scan`).

    Returns:
      The :class:`TrainHistory` as JAX arrays.

    >>> import optax
    >>> from jaxbackprop import lecture, loss
    >>> h = trajectory(loss, 1.0, jnp.array(lecture.X_DATA), jnp.array(lecture.Y_DATA),
    ...                optimizer=optax.sgd(0.01), record="epochs")
    >>> round(float(h.epoch_loss[0]), 4), h.losses is None
    (7.3159, True)
    """
    check.epochs_count(epochs, minimum=0)
    check.choice("record", record, check.RECORDS)
    return _trajectory(loss, params, xs, ys, optimizer=optimizer, opt_state=opt_state,
                       epochs=epochs, engine=engine, record=record, unroll=unroll)[0]


def _trajectory(loss: LossFn, params: Any, xs: Any, ys: Any, *,
                optimizer: optax.GradientTransformation, opt_state: Any, epochs: int,
                engine: Engine, record: Record, unroll: int) -> tuple[TrainHistory, Any, Any]:
    """:func:`trajectory`, the final parameters and the last step's loss."""
    step = make_step(loss, optimizer, engine)
    dtype = jnp.result_type(*jax.tree.leaves(params))
    opt_state = optimizer.init(params) if opt_state is None else opt_state

    def sample_step(carry: tuple[Any, Any, Any], xy: tuple[Any, Any]) -> tuple[Any, Any]:
        params, opt_state, value, grad = step(*carry[:2], *xy)
        value = jnp.asarray(value, dtype)
        return (params, opt_state, value), (value, grad) if record == "steps" else None

    def epoch_step(carry: tuple[Any, Any, Any], _: None) -> tuple[Any, Any]:
        carry, per_step = jax.lax.scan(sample_step, carry, (xs, ys), unroll=unroll)
        return carry, (per_step, None if record == "final" else (carry[2], carry[0]))

    start = (params, opt_state, jnp.zeros((), dtype))
    (params, _, last_loss), (per_step, per_epoch) = jax.lax.scan(epoch_step, start, None,
                                                                length=epochs)
    if record == "final":
        final = jax.tree.map(lambda p: jnp.expand_dims(p, 0), params)
        return TrainHistory(None, None, None, final), params, last_loss
    losses, grads = per_step if record == "steps" else (None, None)
    return TrainHistory(losses, grads, *per_epoch), params, last_loss


def _all_finite(*trees: Any) -> jax.Array:
    return jnp.all(jnp.stack([jnp.isfinite(a).all() for a in jax.tree.leaves(trees)]))


def _moved(w0: Any, final: Any) -> jax.Array:
    """Whether any parameter changed (if none did, :func:`explain` asks why)."""
    changed = jax.tree.map(lambda a, b: jnp.any(a != b), w0, final)
    return jnp.any(jnp.stack(jax.tree.leaves(changed)))


def _train(w0: Any, learning_rate: Any, xs: Any, ys: Any, *, loss: LossFn,
           optimizer: optax.GradientTransformation, epochs: int, engine: Engine,
           record: Record) -> tuple[Any, TrainHistory, Any]:
    """:func:`trajectory` from ``w0``, the optimizer's injected rate set to ``learning_rate``:
    the final parameters, the history, and the checks ``[finite, moved]``: every number it
    took and computed is finite (once a loss is inf or NaN, the ones after it stay so, and
    so does the last), and the parameters moved."""
    opt_state = init_opt_state(optimizer, w0, learning_rate)
    history, final, last_loss = _trajectory(loss, w0, xs, ys, optimizer=optimizer,
                                            opt_state=opt_state, epochs=epochs, engine=engine,
                                            record=record, unroll=UNROLL)
    finite = _all_finite(xs, ys, last_loss, history.losses, history.epoch_loss, final)
    return final, history, jnp.stack([finite, _moved(w0, final)])


_SETTINGS = ("loss", "optimizer", "epochs", "engine", "record")  # static: one program each
_train_jit = jax.jit(_train, static_argnames=_SETTINGS)


@functools.partial(jax.jit, static_argnames=_SETTINGS)
def sweep_program(w0: Any, rates: Any, xs: Any, ys: Any, *, loss: LossFn,
                  optimizer: optax.GradientTransformation, epochs: int, engine: Engine,
                  record: Record) -> tuple[Any, TrainHistory, Any]:
    """The compiled sweep, ``(final params, history, [finite, moved])``: the leaves of ``w0``
    and ``rates`` broadcast together to the runs' shape ``B``, and :func:`trajectory`
    ``jax.vmap``-ed over the runs, each run's injected learning rate set to its rate
    (``rates=None``: the optimizer's own rate); every result has ``B`` in front. ``finite``:
    the data is (a run may diverge); ``moved``: every run's parameters changed.
    Partitioned as its inputs are placed (:func:`jaxbackprop.parallel.sharded_sweep`)."""
    shape = jnp.broadcast_shapes(*map(jnp.shape, jax.tree.leaves((w0, rates))))
    w0s, rates = jax.tree.map(lambda a: jnp.broadcast_to(a, shape).reshape(-1), (w0, rates))
    settings: dict[str, Any] = dict(loss=loss, optimizer=optimizer, epochs=epochs, engine=engine,
                                    record=record)
    final, history = jax.vmap(lambda w0, rate: _train(w0, rate, xs, ys, **settings)[:2])(w0s,
                                                                                         rates)
    checks = jnp.stack([_all_finite(xs, ys), jnp.all(jax.vmap(_moved)(w0s, final))])
    final, history = jax.tree.map(lambda a: a.reshape(*shape, *a.shape[1:]), (final, history))
    return final, history, checks


# ---------------------------------------------------------------------------------------
# The trainers


def _check_first_update(problem: check.Problem, w0s: Any, rates: Any) -> None:
    """For trainings whose parameters never moved, one per row of ``w0s`` and ``rates``
    (``None``: the optimizer's own): a ValueError if the optimizer's first update is exactly
    0 while the gradient is not, as when its learning rate underflows to 0 in the training
    dtype (``optax.sgd(1e-46)`` in float32). Every step was taken at the run's ``w0``, so the
    gradient asked is the first that is not 0 there, over the samples and runs (none: the
    gradient truly is 0, no error): one pass over the data, outside the trainers' programs."""
    loss, optimizer, engine = (problem.settings[k] for k in ("loss", "optimizer", "engine"))
    value_and_grad = ENGINES[engine](loss)

    def nonzero(w0: Any, x: Any, y: Any) -> jax.Array:
        grad = value_and_grad(w0, x, y)[1]
        return jnp.any(jnp.stack([jnp.any(g != 0) for g in jax.tree.leaves(grad)]))

    every_run = jax.vmap(nonzero, (0, None, None))
    nonzeros = np.asarray(jax.lax.map(lambda xy: every_run(w0s, *xy), (problem.xs, problem.ys)))
    if not nonzeros.any():  # (samples, runs)
        return
    i, run = np.unravel_index(int(np.argmax(nonzeros)), nonzeros.shape)
    w0, rate = jax.tree.map(lambda a: a[run], (w0s, rates))
    _, grad = value_and_grad(w0, problem.xs[i], problem.ys[i])
    updates, _ = optimizer.update(grad, init_opt_state(optimizer, w0, rate), w0)
    check.first_update(grad, updates, problem.dtype)


@functools.partial(jax.jit, static_argnames=("loss", "optimizer", "engine"))
def _jitted_step(carry: tuple[Any, Any, Any], xs: Any, ys: Any, *, loss: LossFn,
                 optimizer: optax.GradientTransformation, engine: Engine) -> tuple[Any, Any]:
    """:func:`make_step` on sample ``i`` of the data, all on the device, ``carry = (params,
    opt_state, i)`` advanced to the next sample, and what the loop records, ``[L, *g,
    *params]`` as one vector in the training dtype: the step's one transfer to the host."""
    params, opt_state, i = carry
    params, opt_state, value, grad = make_step(loss, optimizer, engine)(params, opt_state,
                                                                        xs[i], ys[i])
    dtype = jnp.result_type(*jax.tree.leaves(params))
    leaves = jax.tree.leaves((value, grad, params))
    row = jnp.concatenate([jnp.ravel(a).astype(dtype) for a in leaves])
    return (params, opt_state, (i + 1) % len(xs)), row


def _history(rows: list[np.ndarray], epochs: int, w0: Any) -> TrainHistory:
    """The loop's rows ``[L, *g, *params]`` (``epochs`` of them, or ``epochs`` times the
    samples) as a history; each epoch's last row gives its ``epoch_loss`` and ``params``."""
    table = np.stack(rows).reshape(epochs, -1, len(rows[0]))
    leaves, treedef = jax.tree.flatten(w0)
    sizes = [np.size(p) for p in leaves]
    columns = np.split(table, np.cumsum([1, *sizes, *sizes])[:-1], axis=-1)
    grads = [g.reshape(*table.shape[:2], *np.shape(p))
             for g, p in zip(columns[1: 1 + len(leaves)], leaves, strict=True)]
    params = [c[:, -1].reshape(epochs, *np.shape(p))
              for c, p in zip(columns[1 + len(leaves):], leaves, strict=True)]
    losses = columns[0][..., 0]
    return TrainHistory(losses, jax.tree.unflatten(treedef, grads), losses[:, -1],
                        jax.tree.unflatten(treedef, params))


def train_per_sample(loss: LossFn, w0: Any, xs: Samples, ys: Samples, *,
                     optimizer: optax.GradientTransformation,
                     learning_rate: ArrayLike | None = None, epochs: int = EPOCHS,
                     engine: Engine = "jax", record: Record = "steps",
                     on_step: Callable[[Step], None] | None = None) -> tuple[Any, TrainHistory]:
    """The lecture's loop: for each epoch, for each sample, one jitted optimizer step.

    The step (:func:`make_step`) is compiled once per ``loss``, ``optimizer`` and
    ``engine`` and reused for every sample, epoch and call; each step brings its loss and
    gradient to the host in one transfer, checks the loss and calls ``on_step(Step(...))``.
    ``record`` says what the history keeps (``on_step`` sees every step either way).

    Args:
      loss: ``loss(params, x, y)``, a scalar for one sample.
      w0: the initial parameters: a number, an array or any pytree of them.
      xs, ys: the samples, along their first axis.
      optimizer: a built optax optimizer, e.g. ``optax.sgd(0.01)``.
      learning_rate: the rate of an ``optax.inject_hyperparams`` optimizer, as data.
      epochs: passes over the data, from 1 to ``2**31 - 1``. engine: ``"jax"`` or ``"tape"``.
      record: ``"steps"``, ``"epochs"`` or ``"final"``.
      on_step: called after each step whose loss (and, after an epoch, parameters) is
        finite.

    Returns:
      ``(params, history)``: the final parameters and the :class:`TrainHistory`, NumPy.

    Raises:
      ValueError, TypeError: naming the argument, for bad input (also a learning rate
      that underflows to 0). MemoryError: a history too large. DivergenceError: at the
      first step whose loss is inf or NaN, or after which an epoch's parameters are.

    >>> import optax
    >>> from jaxbackprop import lecture, loss
    >>> w, history = train_per_sample(loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
    ...                               optimizer=optax.sgd(0.01), epochs=10)
    >>> [f"{g:.4f}" for g in history.grads[0]], f"{history.epoch_loss[0]:.4f}"
    (['-2.0000', '-7.8400', '-16.2288'], '7.3159')
    """
    problem = check.prepare(loss, w0, xs, ys, optimizer=optimizer, learning_rate=learning_rate,
                            epochs=epochs, engine=engine, record=record)
    if on_step is not None:
        check.function("on_step", on_step, "on_step(step: Step) -> None")
    check.size(problem)
    settings: dict[str, Any] = dict(loss=loss, optimizer=problem.settings["optimizer"],
                                    engine=engine)
    opt_state = init_opt_state(settings["optimizer"], problem.w0, problem.learning_rate)
    carry = (problem.w0, opt_state, np.int32(0))  # on the device from the first step on
    data = jnp.asarray(problem.xs), jnp.asarray(problem.ys)  # to the device once per call
    samples, steps, epochs = len(problem.xs), record == "steps", problem.settings["epochs"]
    # The rows [L, *g, *params] kept: every step's (record="steps"), each epoch's last
    # ("epochs"), or the last epoch's last ("final"): memory as check.size counted it.
    rows: list[np.ndarray] = []
    kept_epochs = (lambda epoch: 1) if record == "final" else (lambda epoch: epoch + 1)
    for epoch in range(epochs):
        for i, (x, y) in enumerate(zip(problem.xs, problem.ys, strict=True)):
            carry, row = _jitted_step(carry, *data, **settings)
            taken = np.array(row)  # the step's one transfer to the host (a copy: a view
            # would keep the device buffer, about 4 KB, alive for every row kept)
            rows.append(taken)
            # The loss of every step, the parameters after each epoch (as train_scan): a NaN
            # gradient at an epoch's last step leaves every loss finite.
            params = taken[1 + (len(taken) - 1) // 2:]  # the row is [L, *g, *params]
            if not np.isfinite(taken[0]) or i == samples - 1 and not np.isfinite(params).all():
                # the history so far, the steps not taken NaN
                if steps:
                    rows += [np.full_like(taken, np.nan)] * (samples - 1 - i)
                else:
                    del rows[kept_epochs(epoch) - 1: -1]
                history = check.truncated(_history(rows, kept_epochs(epoch), problem.w0),
                                          kept_epochs(epoch) - 1, i if steps else 0)
                quantity = "parameters" if np.isfinite(taken[0]) else "loss"
                raise DivergenceError(epoch, i, float(taken[0]), x, y, _kept(history, record)[1],
                                      problem.learning_rate, quantity)
            if on_step is not None:
                grad = _history([taken], 1, problem.w0).grads
                on_step(Step(epoch, i, x, y, taken[0], jax.tree.map(lambda g: g[0, 0], grad)))
        if not steps:  # only the epoch's last row
            del rows[kept_epochs(epoch) - 1: -1]
    final, history = _kept(_history(rows, kept_epochs(epochs - 1), problem.w0), record)
    # the data was checked on the host
    explain(problem, np.array([True, check.moved(problem.w0, final)]), xs, ys)
    return final, history


def _kept(history: TrainHistory, record: str) -> tuple[Any, TrainHistory]:
    """The final parameters and the history's fields that ``record`` keeps."""
    final = jax.tree.map(lambda p: p[-1], history.params)
    if record == "epochs":
        history = history._replace(losses=None, grads=None)
    elif record == "final":
        history = TrainHistory(None, None, None, jax.tree.map(lambda p: p[-1:], history.params))
    return final, history


def train_scan(loss: LossFn, w0: Any, xs: Samples, ys: Samples, *,
               optimizer: optax.GradientTransformation, learning_rate: ArrayLike | None = None,
               epochs: int = EPOCHS, engine: Engine = "jax", record: Record = "steps",
               method: str = "sequential",
               on_step: Callable[[Step], None] | None = None) -> tuple[Any, TrainHistory]:
    """:func:`train_per_sample`'s training as one compiled call: ``jit`` of :func:`trajectory`.

    The same arguments and the same :class:`TrainHistory` (within a few ulp: XLA fuses
    the step's arithmetic differently), as JAX arrays. The program is compiled once per
    ``loss``, ``optimizer``, ``epochs``, ``engine``, ``record`` and the inputs' shapes and
    dtypes; ``w0``, the data and ``learning_rate`` are its arguments. ``on_step`` is
    replayed from the history afterwards (it needs ``record="steps"``).

    ``method="sequential"`` runs the steps one after another; ``method="parallel"`` hands
    the training to :func:`jaxbackprop.affine_sgd.train_parallel`, a parallel scan.

    >>> import optax
    >>> from jaxbackprop import lecture, loss
    >>> w, history = train_scan(loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
    ...                         optimizer=optax.sgd(0.01))
    >>> [f"{l:.4f}" for l in history.epoch_loss[:3]], f"{float(w) * 4:.4f}"
    (['7.3159', '3.9988', '2.1857'], '7.8049')
    """
    check.choice("method", method, METHODS)
    if method == "parallel":
        unused = {"learning_rate": learning_rate is not None, "engine": engine != "jax",
                  "on_step": on_step is not None}
        if any(unused.values()):
            given = ", ".join(k for k, v in unused.items() if v)
            raise ValueError("method='parallel' takes the learning rate from the optimizer, "
                             f"engine='jax' and no on_step; got {given}")
        affine_sgd = importlib.import_module("jaxbackprop.affine_sgd")
        return affine_sgd.train_parallel(loss, w0, xs, ys, optimizer=optimizer, epochs=epochs,
                                         record=record)
    problem = check.prepare(loss, w0, xs, ys, optimizer=optimizer, learning_rate=learning_rate,
                            epochs=epochs, engine=engine, record=record, data=False)
    if on_step is not None:
        check.function("on_step", on_step, "on_step(step: Step) -> None")
    if on_step is not None and record != "steps":
        raise ValueError(f"on_step needs record='steps' in train_scan, got record={record!r}")
    check.size(problem)
    final, history, checks = _train_jit(problem.w0, problem.learning_rate, problem.xs,
                                        problem.ys, **problem.settings)
    checks = np.asarray(checks)  # the call's one transfer to the host
    if checks.all() and on_step is None:
        return final, history
    explain(problem, checks, xs, ys)
    history, xs_host, ys_host = jax.device_get((history, problem.xs, problem.ys))
    error = check.divergence(history, xs_host, ys_host, problem.learning_rate)
    if on_step is not None:
        for epoch, i in np.ndindex(history.losses.shape):  # up to the step that diverged
            if error is not None and (epoch, i) == (error.epoch, error.sample):
                break
            grad = jax.tree.map(lambda g, e=epoch, i=i: g[e, i], history.grads)
            on_step(Step(epoch, i, xs_host[i], ys_host[i], history.losses[epoch, i], grad))
    if error is not None:
        raise error
    return final, history


def sweep(loss: LossFn, w0: Any, xs: Samples, ys: Samples, *,
          optimizer: optax.GradientTransformation, learning_rate: ArrayLike | None = None,
          epochs: int = EPOCHS, engine: Engine = "jax",
          record: Record = "steps") -> tuple[Any, TrainHistory]:
    """Many independent trainings in one call: ``jit(vmap(trajectory))``, compiled once.

    Each leaf of ``w0`` and the learning rate (``learning_rate=``, or the array an
    ``optax.inject_hyperparams`` optimizer was built with) broadcast together to the
    runs' shape ``B``: each run trains one number per leaf, all on the shared data.
    Returns the final parameters and the :class:`TrainHistory`, each array with ``B`` in
    front (NumPy). A run that diverges is not an error: its losses are inf or NaN, as
    computed. ``record="final"`` keeps only the final parameters and runs fastest.

    >>> import numpy as np, optax
    >>> from jaxbackprop import lecture, loss
    >>> sgd = optax.inject_hyperparams(optax.sgd)(learning_rate=np.array([0.01, 0.02]))
    >>> w, h = sweep(loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA, optimizer=sgd)
    >>> w.shape, h.losses.shape, [f"{l:.4f}" for l in h.epoch_loss[:, 0]]
    ((2,), (2, 10, 3), ['7.3159', '5.8525'])
    """
    problem = check.prepare(loss, w0, xs, ys, optimizer=optimizer, learning_rate=learning_rate,
                            epochs=epochs, engine=engine, record=record, runs=True, data=False)
    check.size(problem, sweep=True)
    final, history, checks = sweep_program(problem.w0, problem.learning_rate, problem.xs,
                                           problem.ys, **problem.settings)
    explain(problem, checks, xs, ys, final=final)
    return final, history


def explain(problem: check.Problem, checks: Any, xs: Samples, ys: Samples,
            final: Any = None) -> None:
    """Raise what a compiled training's ``checks`` (``[finite, moved]``) found: a sample
    ``xs[i]``/``ys[i]`` (as given) that is not finite, or parameters that never moved
    because the first update is 0 (:func:`_check_first_update`). For a sweep, ``final``
    holds its final parameters: the runs that never moved are asked. Checked on the device,
    explained on the host."""
    finite, moved = np.asarray(checks)  # (a no-op if train_scan already read it)
    if not finite:
        check.as_samples(xs, ys, problem.dtype)  # names the sample
    if moved:
        return
    if final is None:  # one training: a run axis of one
        w0s, rates = jax.tree.map(lambda a: np.asarray(a)[None],
                                  (problem.w0, problem.learning_rate))
    else:  # a sweep: each run one number per leaf, in the runs' shape; ask those that stayed
        shape = check.runs_shape(problem)
        w0s, rates = jax.tree.map(lambda a: np.broadcast_to(a, shape).reshape(-1),
                                  (problem.w0, problem.learning_rate))
        changed = [np.asarray(f).reshape(-1) != w for f, w in zip(
            jax.tree.leaves(final), jax.tree.leaves(w0s), strict=True)]
        stayed = ~np.any(changed, axis=0)
        w0s, rates = jax.tree.map(lambda a: a[stayed], (w0s, rates))
    _check_first_update(problem, w0s, rates)


__all__ = ["TrainHistory", "Step", "DivergenceError", "make_step", "init_opt_state", "trajectory",
           "train_per_sample", "train_scan", "sweep", "sweep_program", "explain", "ENGINES",
           "METHODS", "UNROLL", "Record", "Engine", "LossFn", "Samples"]
