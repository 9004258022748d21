"""Training the lecture's model with optax: its per-sample loop, the same loop as one program.

The lecture's loop, per-sample SGD, is for every epoch and every sample ``(x, y)``:

    L, g = L(w; x, y), dL/dw(w; x, y)      # the loss before the update, and its gradient
    w    = w - lr * g                       # optax.sgd(lr): updates = -lr * g, w + updates

Three ways to run it, the same trajectory each time:

* :func:`train_per_sample`: a Python loop over epochs and samples, one jitted step per
  sample (compiled once), a callback after each step; the lecture's loop, verbatim.
* :func:`train_scan`: the whole training as one compiled call, ``jax.lax.scan`` over the
  samples inside a scan over the epochs. The learning rate and the data are traced
  arguments: a new rate, or new data of the same shape, reuses the compiled program.
* :func:`sweep`: many independent trainings (arrays of learning rates and initial
  weights) in one call, ``jax.vmap`` of the same program.

:func:`trajectory` is that program as a pure function (no checks, no host transfers): it
composes with ``jax.jit``, ``jax.vmap``, ``jax.grad`` and sharding (:mod:`jaxbackprop.parallel`).

``optimizer`` is an optax *factory* such as ``optax.sgd`` or ``optax.adam`` (or a
``functools.partial`` of one), called with ``learning_rate``. The rate is kept in the
optimizer's state (``optax.inject_hyperparams``), so it is data, not a constant baked into
the program. The gradient comes from ``jax.value_and_grad`` (``engine="jax"``) or from
the hand-written tape, ``jaxbackprop.tape.value_and_grad`` (``engine="tape"``); both
trace under ``jax.jit``.

The training runs in ``w0``'s floating dtype, or JAX's default one for Python numbers:
float32, like the lecture, or float64 under JAX's x64 mode. The trainers return
``(params, history)`` with NumPy arrays; a loss that becomes inf or NaN raises
:class:`DivergenceError`, which carries every step before it.
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
import operator
import struct
from typing import Any, Callable, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxbackprop import tape
from jaxbackprop._dtypes import is_integer_like
from jaxbackprop.lecture import EPOCHS, LEARNING_RATE

ArrayLike = Any  # a Python number, a NumPy array or a JAX array
LossFn = Callable[[Any, Any, Any], Any]  # loss(params, x, y) -> scalar
OptimizerFactory = Callable[..., optax.GradientTransformation]  # optax.sgd, optax.adam, ...
Engine = Literal["jax", "tape"]
Record = Literal["steps", "epochs", "final"]  # what a training keeps (see trajectory)
Layout = Literal["arrays", "flat", "runs"]  # how a compiled training takes its inputs
_LossCarry = tuple[Any, Any, Any]  # params, optimizer state, the last sample's loss
StepFn = Callable[[Any, Any, Any, Any], tuple[Any, Any, Any, Any]]

ENGINES: dict[str, Callable[[LossFn], Callable[..., tuple[Any, Any]]]] = {
    "jax": jax.value_and_grad,
    "tape": tape.value_and_grad,
}
UNROLL: int = 8  # samples per iteration of the compiled loop (see train_scan)
RECORDED: dict[str, tuple[str, ...]] = {  # the history's fields each record keeps
    "steps": ("losses", "grads", "params"),  # (epoch_loss is losses[..., -1])
    "epochs": ("epoch_loss", "params"),
    "final": ("params",),  # the final parameters, as one row
}


class TrainHistory(NamedTuple):
    """What a training recorded, as arrays (a leading batch axis for a sweep).

    ``losses[e, i]`` and ``grads[e, i]`` are the loss and its gradient at sample ``i`` of
    epoch ``e``, taken before that sample's update; ``epoch_loss[e] = losses[e, -1]`` is
    the last sample's loss, as the lecture prints it; ``params[e]`` holds the parameters
    after epoch ``e``.
    """

    losses: Any  # (epochs, samples)
    grads: Any  # (epochs, samples, *w.shape)
    epoch_loss: Any  # (epochs,)
    params: Any  # (epochs, *w.shape)


class Step(NamedTuple):
    """One step, as :func:`train_per_sample` and :func:`train_scan` report it to ``on_step``."""

    epoch: int
    sample: int
    x: np.ndarray
    y: np.ndarray
    loss: np.ndarray  # before the update
    grad: np.ndarray


class DivergenceError(FloatingPointError):
    """The loss became inf or NaN at ``(epoch, sample)`` (both counted from 0).

    ``history`` keeps every step computed before it, and the failing step's own loss and
    gradient: its arrays have ``epoch + 1`` rows; the steps never taken, and the failing
    epoch's ``params`` and (if unfinished) ``epoch_loss``, are NaN.
    """

    def __init__(self, epoch: int, sample: int, loss: float, x: Any, y: Any,
                 learning_rate: float, history: TrainHistory) -> None:
        super().__init__(
            f"training diverged: the loss became {loss} at epoch {epoch}, sample {sample} "
            f"(x={_scalar_text(x)}, y={_scalar_text(y)}) with learning_rate={learning_rate:g}; "
            f"try a smaller learning rate")
        self.epoch = epoch
        self.sample = sample
        self.loss = loss
        self.history = history


# ---------------------------------------------------------------------------------------
# The step and the fused program (pure)


def _transformation(optimizer: OptimizerFactory, learning_rate: ArrayLike) -> optax.GradientTransformation:
    """``optimizer(learning_rate)`` with the rate in its state, so that it stays data."""
    return optax.inject_hyperparams(optimizer)(learning_rate=learning_rate)


def init_opt_state(optimizer: OptimizerFactory, learning_rate: ArrayLike, params: Any) -> Any:
    """The optimizer's initial state for ``params``, holding ``learning_rate``."""
    return _transformation(optimizer, learning_rate).init(params)


def make_step(loss: LossFn, optimizer: OptimizerFactory = optax.sgd, engine: Engine = "jax") -> StepFn:
    """One optimizer step on one sample: ``(params, opt_state, x, y) -> (params, opt_state, L, g)``.

    ``L, g = value_and_grad(loss)(params, x, y)`` (from JAX or the tape, by ``engine``),
    then ``updates, opt_state = optimizer.update(g, opt_state, params)`` and
    ``params = optax.apply_updates(params, updates)``. ``L`` and ``g`` are taken before
    the update. The learning rate is read from ``opt_state`` (:func:`init_opt_state`).
    Pure: jit, vmap and scan compose with it.
    """
    value_and_grad = ENGINES[engine](loss)

    def step(params: Any, opt_state: Any, x: Any, y: Any) -> tuple[Any, Any, Any, Any]:
        value, grad = value_and_grad(params, x, y)
        transformation = _transformation(optimizer, opt_state.hyperparams["learning_rate"])
        updates, opt_state = transformation.update(grad, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value, grad

    return step


def trajectory(loss: LossFn, w0: ArrayLike, learning_rate: ArrayLike, xs: ArrayLike, ys: ArrayLike,
               *, optimizer: OptimizerFactory = optax.sgd, epochs: int = EPOCHS,
               engine: Engine = "jax", unroll: int = UNROLL, batched: bool = False,
               record: Record = "steps") -> TrainHistory:
    """The per-sample training as one pure function of arrays: ``lax.scan`` in ``lax.scan``.

    The inner scan runs :func:`make_step` over the samples ``(xs[i], ys[i])`` in order
    (``unroll`` of them per loop iteration); the outer scan repeats it ``epochs`` times.
    Returns the :class:`TrainHistory` as JAX arrays, losses in ``w0``'s dtype. No input
    checks and no host transfers: use :func:`train_scan` for that.

    ``batched`` trains independent runs at once, one per entry along the first axis of
    ``w0`` and ``learning_rate``: the step is ``jax.vmap``-ed, the loops are not, so each
    step is one SIMD operation across the runs and every record is written as a
    contiguous row. The history is then time-major: ``losses[e, i, run]``,
    ``grads[e, i, run, ...]``, ``params[e, run, ...]``.

    ``record`` says what is kept: every step (``"steps"``); only the epochs' records
    (``"epochs"``: ``epoch_loss`` and ``params``, the per-step ``losses`` and ``grads`` are
    ``None``); or only the final parameters (``"final"``: ``params`` of one row, the rest
    ``None``). ``params[-1]`` is the final parameters in every case. Writing fewer records
    makes a long or wide training several times faster: each step's only output is then
    its weight, carried to the next.
    """
    _check_record(record)
    step = make_step(loss, optimizer, engine)
    init = functools.partial(init_opt_state, optimizer)
    if batched:
        step = jax.vmap(step, in_axes=(0, 0, None, None))
        init = jax.vmap(init)
    carry = (w0, init(learning_rate, w0))
    if record != "steps":
        return _epochs_only(step, carry, xs, ys, epochs=epochs, unroll=unroll, record=record)

    def sample_step(carry: tuple[Any, Any], xy: tuple[Any, Any]) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
        params, opt_state, value, grad = step(*carry, *xy)
        return (params, opt_state), (jnp.asarray(value, jnp.result_type(params)), grad)

    def epoch_step(carry: tuple[Any, Any], _: None) -> tuple[tuple[Any, Any], tuple[Any, Any, Any]]:
        carry, (losses, grads) = jax.lax.scan(sample_step, carry, (xs, ys), unroll=unroll)
        return carry, (losses, grads, carry[0])

    _, (losses, grads, params) = jax.lax.scan(epoch_step, carry, None, length=epochs)
    return TrainHistory(losses, grads, losses[:, -1], params)


def _check_record(record: Any) -> None:
    if record not in RECORDED:
        raise ValueError(f"record must be 'steps', 'epochs' or 'final', got {record!r}")


def _epochs_only(step: StepFn, carry: tuple[Any, Any], xs: Any, ys: Any, *, epochs: int,
                 unroll: int, record: Record) -> TrainHistory:
    """:func:`trajectory` keeping only each epoch's records (``"epochs"``) or the final
    parameters (``"final"``). The last sample's loss rides in the loop's carry."""
    params, opt_state = carry
    dtype = jnp.result_type(params)
    last_loss = jnp.zeros(jnp.shape(opt_state.hyperparams["learning_rate"]), dtype)

    def sample_step(carry: _LossCarry, xy: tuple[Any, Any]) -> tuple[_LossCarry, None]:
        params, opt_state, value, _ = step(*carry[:2], *xy)
        return (params, opt_state, jnp.asarray(value, dtype)), None

    def epoch_step(carry: _LossCarry, _: None) -> tuple[_LossCarry, Any]:
        carry, _ = jax.lax.scan(sample_step, carry, (xs, ys), unroll=unroll)
        return carry, (carry[2], carry[0]) if record == "epochs" else None

    (params, _, _), records = jax.lax.scan(epoch_step, (params, opt_state, last_loss), None,
                                           length=epochs)
    if record == "epochs":
        return TrainHistory(None, None, *records)
    return TrainHistory(None, None, None, jax.tree.map(lambda p: jnp.expand_dims(p, 0), params))


# ---------------------------------------------------------------------------------------
# Checking and converting the inputs


class _Problem(NamedTuple):
    w0: Any
    learning_rate: Any
    xs: Any
    ys: Any
    dtype: np.dtype


def _training_dtype(w0: ArrayLike) -> np.dtype:
    """``w0``'s floating dtype, or JAX's default one (float32; float64 under x64)."""
    dtype = getattr(w0, "dtype", None)
    if isinstance(dtype, np.dtype) and dtype.kind == "f":  # a float array: the common case
        return dtype
    if dtype is None or is_integer_like(w0):
        return jax.dtypes.canonicalize_dtype(np.float64)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"w0 must be a real number or a float array, got dtype {dtype}")
    return np.dtype(dtype)


def _as(value: ArrayLike, dtype: np.dtype) -> Any:
    """``value`` as an array of ``dtype``: JAX arrays of that dtype pass through, no copy."""
    if isinstance(value, jax.Array) and value.dtype == dtype:
        return value
    with np.errstate(over="ignore"):  # an overflow to inf is reported by _convert, by name
        return np.asarray(value, dtype=dtype)


def _float_tuple(value: Any) -> bool:
    """Whether ``value`` is a short tuple of Python floats, like the lecture's data."""
    return type(value) is tuple and 0 < len(value) <= 1024 and set(map(type, value)) == {float}


@functools.lru_cache(maxsize=256)
def _device_floats(bits: bytes, dtype: np.dtype, device: Any) -> jax.Array:
    """Float64 ``bits`` as a JAX array of ``dtype``, made once: the lecture's data, as the
    compiled trainers take it (a NumPy argument costs a transfer on every call)."""
    return jnp.asarray(np.frombuffer(bits, np.float64).astype(dtype))


def _samples(value: ArrayLike, dtype: np.dtype) -> Any:
    """:func:`_as` for ``xs`` and ``ys``; a tuple of Python floats is kept on the device."""
    if _float_tuple(value):
        bits = struct.pack(f"{len(value)}d", *value)
        return _device_floats(bits, dtype, jax.config.jax_default_device)
    return _as(value, dtype)


def _first_bad(value: ArrayLike, *, positive: bool = False) -> Any:
    """The first element of ``value`` that is not finite (or not ``> 0`` with ``positive``),
    as a Python number; ``None`` when there is none."""
    if isinstance(value, (int, float)):  # the common case, without NumPy
        return None if math.isfinite(value) and (value > 0 or not positive) else value
    array = np.asarray(value)
    ok = np.isfinite(array) & (array > 0) if positive else np.isfinite(array)
    return None if ok.all() else array[~ok].flat[0].item()


def _check_settings(epochs: int, engine: str, optimizer: Any) -> None:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(map(repr, ENGINES))}, got {engine!r}")
    if isinstance(optimizer, optax.GradientTransformation) or not callable(optimizer):
        raise TypeError("optimizer must be an optax factory taking learning_rate, such as "
                        "optax.sgd (pass learning_rate=... separately), got "
                        f"{type(optimizer).__name__}")
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"epochs must be a whole number >= 1, got {epochs!r}")


def _convert(w0: ArrayLike, xs: ArrayLike, ys: ArrayLike, learning_rate: ArrayLike,
             sweep: bool) -> _Problem:
    """Check the numbers (ValueError naming the argument) and make arrays of one float dtype."""
    if (bad := _first_bad(learning_rate, positive=True)) is not None:
        raise ValueError(f"learning_rate must be a finite number > 0, got {bad}")
    if (bad := _first_bad(w0)) is not None:
        raise ValueError(f"w0 must be finite, got {bad}")
    dtype = _training_dtype(w0)
    problem = _Problem(_as(w0, dtype), _as(learning_rate, dtype), _samples(xs, dtype),
                       _samples(ys, dtype), dtype)
    for name, given, converted in (("learning_rate", learning_rate, problem.learning_rate),
                                   ("w0", w0, problem.w0)):
        if not np.isfinite(np.asarray(converted)).all():  # finite in float64, not in float32
            raise ValueError(f"{name} must be finite in the training dtype {dtype}, got "
                             f"{_scalar_text(given)}, which overflows it")
    if not sweep and problem.learning_rate.ndim != 0:
        raise ValueError(f"learning_rate must be a scalar, got shape {problem.learning_rate.shape}; "
                         "use sweep() for many learning rates")
    shape_x, shape_y = problem.xs.shape, problem.ys.shape
    if len(shape_x) == 0 or len(shape_y) == 0:
        raise ValueError(f"xs and ys must be sequences of samples, got shapes {shape_x} and {shape_y}")
    if shape_x[0] == 0:
        raise ValueError("xs and ys are empty: the training needs at least one sample")
    if shape_x[0] != shape_y[0]:
        raise ValueError(f"xs and ys must have the same length, got len(xs)={shape_x[0]} "
                         f"and len(ys)={shape_y[0]}")
    return problem


def _constant_bits(w0: Any, xs: Any, ys: Any, learning_rate: Any) -> bytes | None:
    """The exact bits of ``[w0, learning_rate, *xs, *ys]`` for the lecture's kind of input,
    Python floats and short tuples of them (immutable, so its checked device copy can be
    cached); ``None`` for any other input."""
    if (type(w0) is float and type(learning_rate) is float and _float_tuple(xs)
            and _float_tuple(ys) and len(xs) == len(ys)):
        return struct.pack(f"{2 + 2 * len(xs)}d", w0, learning_rate, *xs, *ys)
    return None


@functools.lru_cache(maxsize=256)
def _constant_problem(bits: bytes, samples: int, x64: bool, device: Any) -> _Problem:
    """:func:`_convert` for Python floats, given as their exact bits, kept on the device."""
    w0, learning_rate, *data = struct.unpack(f"{2 + 2 * samples}d", bits)
    problem = _convert(w0, tuple(data[:samples]), tuple(data[samples:]), learning_rate, sweep=False)
    return problem._replace(**{k: jnp.asarray(getattr(problem, k)) for k in ("w0", "learning_rate", "xs", "ys")})


def _prepare(w0: ArrayLike, xs: ArrayLike, ys: ArrayLike, learning_rate: ArrayLike, epochs: int,
             engine: str, optimizer: Any, *, sweep: bool = False) -> _Problem:
    """Check the inputs (ValueError/TypeError naming the argument) and convert them.

    The lecture's kind of input (:func:`_constant_bits`) is checked and sent to the device
    once, then reused from a cache keyed by its exact bits (the JAX call is a few
    microseconds; this keeps the work around it as small).
    """
    _check_settings(epochs, engine, optimizer)
    if (bits := _constant_bits(w0, xs, ys, learning_rate)) is not None:
        return _constant_problem(bits, len(xs), jax.config.jax_enable_x64, jax.config.jax_default_device)
    return _convert(w0, xs, ys, learning_rate, sweep)


class _Runs(NamedTuple):
    """A sweep's checked inputs: each run's settings in one host array, the shared data."""

    settings: np.ndarray  # (2, n): row 0 the runs' initial weights, row 1 their learning rates
    shape: tuple[int, ...]  # the runs' shape B, n = prod(B)
    xs: Any
    ys: Any


_last_sweep_data: list[tuple[tuple[Any, ...], tuple[Any, Any]] | None] = [None]  # see below


def _lecture_data(xs: Any, ys: Any, dtype: np.dtype) -> tuple[Any, Any] | None:
    """The lecture's kind of data (two tuples of Python floats, of one length) as device
    arrays of ``dtype``; the same tuple objects as the last call (held here, immutable)
    reuse its arrays. ``None`` for any other data."""
    key = (xs, ys, dtype, jax.config.jax_default_device)
    last = _last_sweep_data[0]
    if last is not None and all(map(operator.is_, key, last[0])):
        return last[1]
    if not (_float_tuple(xs) and _float_tuple(ys) and len(xs) == len(ys)):
        return None
    data = _samples(xs, dtype), _samples(ys, dtype)
    _last_sweep_data[0] = (key, data)
    return data


def _stacked(w0: ArrayLike, learning_rate: ArrayLike, dtype: np.dtype) -> np.ndarray:
    """``[w0, learning_rate]`` broadcast to their common shape, as one array of ``dtype``."""
    shape, rate_shape = np.shape(w0), np.shape(learning_rate)
    if shape != rate_shape:
        shape = np.broadcast_shapes(shape, rate_shape)
    settings = np.empty((2, *shape), dtype)
    settings[0], settings[1] = w0, learning_rate
    return settings


def _prepare_sweep(w0: ArrayLike, xs: ArrayLike, ys: ArrayLike, learning_rate: ArrayLike,
                   epochs: int, engine: str, optimizer: Any) -> _Runs:
    """:func:`_prepare` for :func:`sweep`, its runs' settings stacked (:func:`_stacked`).

    The common case, float settings and the lecture's kind of data, is checked in one pass
    over the stacked settings (all finite, rates > 0); anything else, or a check that
    fails, takes :func:`_prepare`, whose errors name the argument.
    """
    _check_settings(epochs, engine, optimizer)
    try:
        dtype = _training_dtype(w0)
        data = _lecture_data(xs, ys, dtype)
        settings = _stacked(w0, learning_rate, dtype)
        fine = data is not None and np.isfinite(settings).all() and settings[1].min() > 0
    except (TypeError, ValueError):
        fine = False
    if not fine:
        problem = _prepare(w0, xs, ys, learning_rate, epochs, engine, optimizer, sweep=True)
        settings = _stacked(problem.w0, problem.learning_rate, problem.dtype)
        data = problem.xs, problem.ys
    return _Runs(settings.reshape(2, -1), settings.shape[1:], *data)


# ---------------------------------------------------------------------------------------
# Divergence


def _scalar_text(value: Any) -> str:
    """A number as ``3`` or ``0.01``; an array on one line, long ones elided."""
    array = np.asarray(value)
    if array.size == 1:
        return f"{array.item():g}"
    return np.array2string(array, precision=4, threshold=6, edgeitems=2, max_line_width=10**6)


def _first_non_finite(losses: np.ndarray) -> tuple[int, int] | None:
    """``(epoch, sample)`` of the first inf or NaN loss, in training order; ``None`` if none."""
    finite = np.isfinite(losses)
    if finite.all():
        return None
    epoch, sample = np.unravel_index(int(np.argmin(finite)), losses.shape)
    return int(epoch), int(sample)


def _truncated(history: TrainHistory, epoch: int, sample: int) -> TrainHistory:
    """The history up to and including step ``(epoch, sample)``; steps after it are NaN."""
    losses = np.array(history.losses[: epoch + 1])
    grads = np.array(history.grads[: epoch + 1])
    params = np.array(history.params[: epoch + 1])
    losses[epoch, sample + 1:] = np.nan
    grads[epoch, sample + 1:] = np.nan
    params[epoch] = np.nan
    return TrainHistory(losses, grads, losses[:, -1], params)


def _divergence(history: TrainHistory, epoch: int, sample: int, problem: _Problem) -> Exception:
    """The error for a non-finite loss at ``(epoch, sample)``: bad data, or divergence."""
    x, y = np.asarray(problem.xs[sample]), np.asarray(problem.ys[sample])
    for name, value in (("xs", x), ("ys", y)):
        if not np.isfinite(value).all():
            return ValueError(f"{name}[{sample}] must be finite, got {_scalar_text(value)}")
    loss = float(np.asarray(history.losses[epoch, sample]))
    return DivergenceError(epoch, sample, loss, x, y, float(np.max(problem.learning_rate)),
                           _truncated(history, epoch, sample))


# ---------------------------------------------------------------------------------------
# The per-sample loop


@functools.lru_cache(maxsize=64)
def _jitted_step(loss: LossFn, optimizer: OptimizerFactory, engine: Engine) -> StepFn:
    return jax.jit(make_step(loss, optimizer, engine))


def train_per_sample(loss: LossFn, w0: ArrayLike, xs: ArrayLike, ys: ArrayLike, *,
                     optimizer: OptimizerFactory = optax.sgd,
                     learning_rate: ArrayLike = LEARNING_RATE, epochs: int = EPOCHS,
                     engine: Engine = "jax",
                     on_step: Callable[[Step], None] | None = None) -> tuple[np.ndarray, TrainHistory]:
    """The lecture's loop: for each epoch, for each sample, one jitted optimizer step.

    ``loss(params, x, y)`` is a scalar; ``xs`` and ``ys`` hold the samples along their
    first axis; ``w0`` are the initial parameters (a number or an array). The step
    (:func:`make_step`) is compiled once and reused for every sample, epoch and call with
    the same ``loss``, ``optimizer`` and ``engine``. ``on_step(Step(...))`` is called
    after each step that has a finite loss. Returns the final parameters and the
    :class:`TrainHistory`, as NumPy arrays.

    Raises ``ValueError`` naming the argument for empty data, ``len(xs) != len(ys)``,
    ``epochs < 1``, a non-finite or non-positive ``learning_rate``, an unknown engine;
    :class:`DivergenceError` at the first step whose loss is inf or NaN.

    >>> from jaxbackprop import lecture, loss
    >>> w, history = train_per_sample(loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA)
    >>> [f"{g:.4f}" for g in history.grads[0]]
    ['-2.0000', '-7.8400', '-16.2288']
    """
    problem = _prepare(w0, xs, ys, learning_rate, epochs, engine, optimizer)
    step = _jitted_step(loss, optimizer, engine)
    xs_host, ys_host = np.asarray(problem.xs), np.asarray(problem.ys)
    samples, shape = len(xs_host), np.shape(problem.w0)
    losses = np.full((epochs, samples), np.nan, dtype=problem.dtype)
    grads = np.full((epochs, samples, *shape), np.nan, dtype=problem.dtype)
    params_after = np.full((epochs, *shape), np.nan, dtype=problem.dtype)
    history = TrainHistory(losses, grads, losses[:, -1], params_after)

    params = jnp.asarray(problem.w0)
    opt_state = init_opt_state(optimizer, problem.learning_rate, params)
    for epoch in range(epochs):
        for i in range(samples):
            params, opt_state, value, grad = step(params, opt_state, xs_host[i], ys_host[i])
            losses[epoch, i], grads[epoch, i] = value, grad
            if not np.isfinite(losses[epoch, i]):
                raise _divergence(history, epoch, i, problem)
            if on_step is not None:
                on_step(Step(epoch, i, xs_host[i], ys_host[i], losses[epoch, i], grads[epoch, i]))
        params_after[epoch] = params
    return params_after[-1], history


# ---------------------------------------------------------------------------------------
# The fused program


PACK_LIMIT: int = 1 << 16  # histories of up to this many numbers come back as one buffer


@functools.lru_cache(maxsize=64)
def _fused_program(loss: LossFn, optimizer: OptimizerFactory, engine: Engine, epochs: int,
                   unroll: int, batched: bool, packed: bool, layout: Layout = "arrays",
                   record: Record = "steps") -> Callable[..., Any]:
    """``jit(trajectory)``, returning the history's fields ``RECORDED[record]``.

    ``packed`` concatenates them, raveled, into one array and (when every step is recorded)
    appends 1 if every loss is finite, else 0: one output buffer costs less to return than
    several, which matters when the whole training takes microseconds. A long history is
    returned as it is, since copying it would cost more (and checking it is cheaper on the
    host). ``layout`` says how the inputs come, for the same reason (each argument costs
    its share of a call): ``"arrays"``, as ``w0, learning_rate, xs, ys``; ``"flat"``, one
    vector ``[w0, learning_rate, *xs, *ys]`` (a scalar weight, scalar samples); ``"runs"``,
    a sweep's ``settings, xs, ys`` with ``settings = [w0s, rates]`` (:func:`_prepare_sweep`).
    """

    def program(w0: Any, learning_rate: Any, xs: Any, ys: Any) -> Any:
        h = trajectory(loss, w0, learning_rate, xs, ys, optimizer=optimizer, epochs=epochs,
                       engine=engine, unroll=unroll, batched=batched, record=record)
        fields = [getattr(h, name) for name in RECORDED[record]]
        if not packed:
            return tuple(fields)
        if record == "steps":
            fields.append(jnp.isfinite(h.losses).all().astype(h.losses.dtype))
        return jnp.concatenate([jnp.ravel(f) for f in fields])

    def flat_program(inputs: Any) -> Any:
        samples = (inputs.shape[0] - 2) // 2
        return program(inputs[0], inputs[1], inputs[2:2 + samples], inputs[2 + samples:])

    def runs_program(settings: Any, xs: Any, ys: Any) -> Any:
        return program(settings[0], settings[1], xs, ys)

    return jax.jit({"arrays": program, "flat": flat_program, "runs": runs_program}[layout])


class _Fused(NamedTuple):
    """A compiled training (:func:`_fused_program`) and the layout of its output."""

    program: Callable[..., Any]
    fields: tuple[str, ...]  # the history's fields it returns, in order
    shapes: tuple[tuple[int, ...], ...]  # their shapes, time-major
    slices: tuple[slice, ...] | None  # where they lie in a packed output; None: not packed
    batched: bool
    runs_first: tuple[tuple[int, ...], ...]  # if batched, the transposes that bring runs first


@functools.lru_cache(maxsize=64)
def _fused(loss: LossFn, optimizer: OptimizerFactory, engine: Engine, epochs: int, unroll: int,
           batched: bool, samples: int, runs: tuple[int, ...], param_shape: tuple[int, ...],
           pack_limit: int, layout: Layout = "arrays", record: Record = "steps") -> _Fused:
    """The program for these settings and shapes (``runs``: ``(n,)`` if ``batched``, else
    ``()``) and its output's layout, worked out once: a call then only splits a buffer."""
    rows = 1 if record == "final" else epochs
    every_shape = {"losses": (epochs, samples, *runs),
                   "grads": (epochs, samples, *runs, *param_shape),
                   "epoch_loss": (epochs, *runs), "params": (rows, *runs, *param_shape)}
    fields = RECORDED[record]
    shapes = tuple(every_shape[name] for name in fields)
    ends = list(itertools.accumulate(math.prod(shape) for shape in shapes))
    packed = ends[-1] <= pack_limit
    slices = tuple(map(slice, [0, *ends[:-1]], ends)) if packed else None
    program = _fused_program(loss, optimizer, engine, epochs, unroll, batched, packed, layout,
                             record)
    time_axes = [2 if name in ("losses", "grads") else 1 for name in fields]
    runs_first = tuple((t, *range(t), *range(t + 1, len(shape)))
                       for t, shape in zip(time_axes, shapes))
    return _Fused(program, fields, shapes, slices, batched, runs_first)


def _fused_for(problem: _Problem, loss: LossFn, optimizer: OptimizerFactory, engine: Engine,
               epochs: int, unroll: int, batched: bool, layout: Layout = "arrays",
               record: Record = "steps") -> _Fused:
    """:func:`_fused` for ``problem``'s shapes (runs along ``w0``'s first axis if ``batched``)."""
    shape = problem.w0.shape
    runs, param_shape = (shape[:1], shape[1:]) if batched else ((), shape)
    return _fused(loss, optimizer, engine, epochs, unroll, batched, problem.xs.shape[0], runs,
                  param_shape, PACK_LIMIT, layout, record)


def _run_fused(fused: _Fused, *args: Any) -> tuple[TrainHistory, bool | None]:
    """Run ``fused`` on ``args`` (laid out as its ``layout`` says: :func:`_fused_program`); return
    the history as NumPy arrays, runs first, and whether all its losses are finite (``None``:
    not checked)."""
    output = fused.program(*args)
    if fused.slices is None:
        arrays, finite = [np.asarray(a) for a in output], None
    else:
        flat = np.asarray(output)
        finite = bool(flat[-1]) if fused.fields[0] == "losses" else None
        if finite is not None and not fused.batched:  # a single training, spelled out: fastest
            (in_losses, in_grads, in_params), (losses_shape, grads_shape, params_shape) = (
                fused.slices, fused.shapes)
            losses = flat[in_losses].reshape(losses_shape)
            return TrainHistory(losses, flat[in_grads].reshape(grads_shape), losses[..., -1],
                                flat[in_params].reshape(params_shape)), finite
        arrays = [flat[where].reshape(shape) for where, shape in zip(fused.slices, fused.shapes)]
    if fused.batched:  # time-major to runs first, as views
        arrays = [a.transpose(axes) for a, axes in zip(arrays, fused.runs_first)]
    recorded = dict(zip(fused.fields, arrays))
    if "losses" in recorded:
        recorded["epoch_loss"] = recorded["losses"][..., -1]
    return TrainHistory(**{name: recorded.get(name) for name in TrainHistory._fields}), finite


@functools.lru_cache(maxsize=256)
def _constant_scan(loss: LossFn, optimizer: OptimizerFactory, engine: Engine, epochs: int,
                   unroll: int, bits: bytes, samples: int, x64: bool, device: Any,
                   pack_limit: int) -> tuple[_Problem, _Fused, tuple[Any]]:
    """:func:`train_scan`'s checked inputs, program and arguments (one flat vector) for the
    lecture's kind of input."""
    _check_settings(epochs, engine, optimizer)
    problem = _constant_problem(bits, samples, x64, device)
    fused = _fused_for(problem, loss, optimizer, engine, epochs, unroll, batched=False,
                       layout="flat")
    return problem, fused, (_device_floats(bits, problem.dtype, device),)


_ScanInputs = tuple[_Problem, _Fused, tuple[Any, ...]]
_last_constant_scan: list[tuple[tuple[Any, ...], _ScanInputs] | None] = [None]  # see _scan_inputs


def _scan_inputs(loss: LossFn, w0: ArrayLike, xs: ArrayLike, ys: ArrayLike,
                 learning_rate: ArrayLike, epochs: int, engine: Engine,
                 optimizer: OptimizerFactory, unroll: int) -> _ScanInputs:
    """:func:`_prepare` and :func:`_fused_for` for :func:`train_scan`, and the program's
    arguments; for the lecture's kind of input all three come from one cache lookup (the
    call itself is a few microseconds).

    A call with the very same argument objects as the last such call (Python floats and
    tuples of them are immutable, and the last ones are held here, so the same objects
    mean the same values) skips even reading their bits.
    """
    key = (loss, w0, xs, ys, learning_rate, epochs, engine, optimizer, unroll,
           jax.config.jax_enable_x64, jax.config.jax_default_device, PACK_LIMIT)
    last = _last_constant_scan[0]
    if last is not None and all(map(operator.is_, key, last[0])):
        return last[1]
    if (type(epochs) is int and type(engine) is str and callable(optimizer)
            and (bits := _constant_bits(w0, xs, ys, learning_rate)) is not None):
        inputs = _constant_scan(loss, optimizer, engine, epochs, unroll, bits, len(xs), *key[-3:])
        _last_constant_scan[0] = (key, inputs)
        return inputs
    problem = _prepare(w0, xs, ys, learning_rate, epochs, engine, optimizer)
    fused = _fused_for(problem, loss, optimizer, engine, epochs, unroll, batched=False)
    return problem, fused, problem[:4]


def train_scan(loss: LossFn, w0: ArrayLike, xs: ArrayLike, ys: ArrayLike, *,
               optimizer: OptimizerFactory = optax.sgd, learning_rate: ArrayLike = LEARNING_RATE,
               epochs: int = EPOCHS, engine: Engine = "jax", unroll: int = UNROLL,
               on_step: Callable[[Step], None] | None = None) -> tuple[np.ndarray, TrainHistory]:
    """The same training as :func:`train_per_sample`, as one compiled call (:func:`trajectory`).

    Same arguments, same semantics, the same :class:`TrainHistory` (within a few ulp in
    float32: XLA fuses the step's arithmetic differently). The program is compiled once
    per ``(loss, optimizer, engine, epochs, unroll)`` and input shapes and dtypes; the
    learning rate, ``w0`` and the data are its arguments, so new values reuse it. The
    history comes back as NumPy arrays (a short one as one buffer, split into views).
    ``on_step`` is replayed from the history after the run. ``unroll`` samples run per
    iteration of the compiled loop: fewer loop overheads, a longer program (on CPU about
    8 is best; much larger values make XLA recompute the unrolled chain and run slower).

    >>> from jaxbackprop import lecture, loss
    >>> w, history = train_scan(loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA)
    >>> [f"{l:.4f}" for l in history.epoch_loss[:3]]
    ['7.3159', '3.9988', '2.1857']
    """
    problem, fused, args = _scan_inputs(loss, w0, xs, ys, learning_rate, epochs, engine,
                                        optimizer, unroll)
    history, finite = _run_fused(fused, *args)
    failure = _first_non_finite(history.losses) if finite is not True else None
    if on_step is not None:
        _replay(history, problem, failure, on_step)
    if failure is not None:
        raise _divergence(history, *failure, problem)
    return history.params[-1], history


def _replay(history: TrainHistory, problem: _Problem, failure: tuple[int, int] | None,
            on_step: Callable[[Step], None]) -> None:
    """Call ``on_step`` for every step before ``failure``, as the per-sample loop does."""
    xs, ys = np.asarray(problem.xs), np.asarray(problem.ys)
    epochs, samples = history.losses.shape
    stop = epochs * samples if failure is None else failure[0] * samples + failure[1]
    for index in range(stop):
        epoch, i = divmod(index, samples)
        on_step(Step(epoch, i, xs[i], ys[i], history.losses[epoch, i], history.grads[epoch, i]))


def sweep(loss: LossFn, w0: ArrayLike, xs: ArrayLike, ys: ArrayLike, *,
          learning_rate: ArrayLike = LEARNING_RATE, optimizer: OptimizerFactory = optax.sgd,
          epochs: int = EPOCHS, engine: Engine = "jax", unroll: int = UNROLL,
          record: Record = "steps") -> tuple[np.ndarray, TrainHistory]:
    """Many independent trainings in one call: :func:`trajectory` with the step ``jax.vmap``-ed
    over runs, compiled once.

    ``w0`` and ``learning_rate`` broadcast against each other to the runs' shape ``B``
    (each run trains one scalar weight on the shared data ``xs, ys``). Returns the final
    weights, shape ``B``, and a :class:`TrainHistory` whose arrays start with ``B``.
    A run that diverges is not an error here: its losses are inf or NaN, as computed.
    ``record="epochs"`` keeps only ``epoch_loss`` and ``params``, ``record="final"`` only
    the final weights (see :func:`trajectory`): a sweep that needs no per-step history
    runs several times faster.

    >>> import numpy as np
    >>> from jaxbackprop import lecture, loss
    >>> w, h = sweep(loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
    ...              learning_rate=np.array([0.01, 0.02]))
    >>> w.shape, h.losses.shape
    ((2,), (2, 10, 3))
    """
    _check_record(record)
    runs = _prepare_sweep(w0, xs, ys, learning_rate, epochs, engine, optimizer)
    fused = _fused(loss, optimizer, engine, epochs, unroll, True, runs.xs.shape[0],
                   runs.settings.shape[1:], (), PACK_LIMIT, "runs", record)
    history, _ = _run_fused(fused, runs.settings, runs.xs, runs.ys)
    if len(runs.shape) != 1:
        history = TrainHistory(*(None if a is None else a.reshape(*runs.shape, *a.shape[1:])
                                 for a in history))
    return history.params[..., -1], history


__all__ = ["TrainHistory", "Step", "DivergenceError", "make_step", "init_opt_state", "trajectory",
           "train_per_sample", "train_scan", "sweep", "ENGINES", "UNROLL", "Record"]
