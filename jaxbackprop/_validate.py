"""The trainers' input checks, size check and divergence report, in one place.

:mod:`jaxbackprop.train` and :mod:`jaxbackprop.parallel` both call these, so that every
trainer refuses the same bad input with the same message: a ``ValueError`` or
``TypeError`` naming the argument and what was expected. Everything here runs on the host,
before anything is compiled or allocated, except what explains a compiled program's
checks: the data's values are checked in the program, and :func:`as_samples` names a bad
sample only when it found one; :func:`first_update` explains parameters that never moved.
"""

from __future__ import annotations

import math
import numbers
import os
import reprlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
import optax
from jax.typing import ArrayLike

from jaxbackprop._dtypes import default_float_dtype

# What a trainer takes as ``xs`` and ``ys``: an array, or a sequence of samples such as the
# lecture's tuples of floats (``lecture.X_DATA``); samples run along the first axis.
Samples = ArrayLike | Sequence[ArrayLike]

RECORDS: tuple[str, ...] = ("steps", "epochs", "final")
ENGINES: tuple[str, ...] = ("jax", "tape")


class DivergenceError(FloatingPointError):
    """The ``quantity`` (``"loss"`` or ``"parameters"``) became inf or NaN at ``(epoch,
    sample)`` (both counted from 0; ``loss`` is that step's loss).

    ``history`` keeps every step computed before it and the failing step's own loss and
    gradient: its arrays have ``epoch + 1`` rows; the steps never taken, and the failing
    epoch's ``params`` and (if unfinished) ``epoch_loss``, are NaN. A training that
    recorded no steps (``record="epochs"`` or ``"final"``) knows less: ``sample`` (and with
    ``"final"`` also ``epoch``) is then ``None``. The error pickles with all its fields, so
    it crosses process boundaries (``concurrent.futures.ProcessPoolExecutor``).
    """

    def __init__(self, epoch: int | None, sample: int | None, loss: float, x: Any = None,
                 y: Any = None, history: Any = None,
                 learning_rate: ArrayLike | None = None, quantity: str = "loss") -> None:
        where = (" (record='final' keeps no losses: train with record='steps' to see where)"
                 if epoch is None else f" at epoch {epoch}"
                 + ("" if sample is None else f", sample {sample}"))
        data = "" if x is None else f" (x={scalar_text(x)}, y={scalar_text(y)})"
        if learning_rate is not None:  # a sweep's rates: the largest
            learning_rate = float(np.max(learning_rate))
        rate = "" if learning_rate is None else f" with learning_rate={learning_rate:g}"
        became = ("inf or NaN" if quantity != "loss" or math.isnan(loss) and epoch is None
                  else loss)
        super().__init__(f"training diverged: the {quantity} became {became}{where}{data}{rate}; "
                         "try a smaller learning rate")
        self.epoch, self.sample, self.loss, self.quantity = epoch, sample, loss, quantity
        self.x, self.y, self.history, self.learning_rate = x, y, history, learning_rate

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return type(self), (self.epoch, self.sample, self.loss, self.x, self.y, self.history,
                            self.learning_rate, self.quantity)


def scalar_text(value: Any) -> str:
    """A number as ``3`` or ``0.01``; an array on one line, long ones elided."""
    array = np.asarray(value)
    if array.size == 1:
        return f"{array.item():g}"
    return np.array2string(array, precision=4, threshold=6, edgeitems=2, max_line_width=10**6)


# ---------------------------------------------------------------------------------------
# Settings


def whole_number(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an ``int`` (Python or NumPy integers), or a ValueError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


MAX_EPOCHS: int = 2**31 - 1  # lax.scan counts its iterations in an int32, optax its steps


def epochs_count(value: Any, minimum: int = 1) -> int:
    """``epochs`` as an ``int`` from ``minimum`` to :data:`MAX_EPOCHS`, or a ValueError
    saying why."""
    epochs = whole_number("epochs", value, minimum)
    if epochs > MAX_EPOCHS:
        raise ValueError(f"epochs must be at most {MAX_EPOCHS:,} (2**31 - 1: lax.scan and "
                         f"optax count steps in 32-bit integers), got {epochs:,}")
    return epochs


def choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else a ValueError listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def function(name: str, value: Any, signature: str) -> Any:
    """``value`` if it can be called, else a TypeError showing the ``signature`` expected."""
    if not callable(value):
        raise TypeError(f"{name} must be a function {signature}, got {type(value).__name__}")
    return value


def loss_value(value: Any) -> Any:
    """``value`` if it is what a loss returns, one real (floating) number: a Python float,
    or an array, tracer or tape value of shape ``()`` and a floating dtype; else a
    TypeError naming ``loss``. Checked as the loss is traced: it costs nothing per step."""
    expected = "loss must return a real scalar (loss(params, x, y) -> scalar)"
    if isinstance(value, float):
        return value
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError(f"{expected}, got {type(value).__name__}"
                        if value is not None else f"{expected}, got None")
    if tuple(shape) != ():
        raise TypeError(f"{expected}, got an array of shape {tuple(shape)}")
    if not jax.numpy.issubdtype(dtype, jax.numpy.floating):
        raise TypeError(f"{expected}, got dtype {np.dtype(dtype)}")
    return value


def built_optimizer(optimizer: Any) -> optax.GradientTransformation:
    """``optimizer`` if it is a built optax optimizer; a factory gets the call that builds one."""
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    name = getattr(optimizer, "__name__", None)
    if callable(optimizer) and name is not None:
        raise TypeError(f"optimizer must be a built optax.GradientTransformation, got the "
                        f"factory optax.{name}; call it: optimizer=optax.{name}(0.01)")
    raise TypeError("optimizer must be a built optax.GradientTransformation such as "
                    f"optax.sgd(0.01), got {type(optimizer).__name__}")


def injected_rate(opt_state: Any) -> Any:
    """The learning rate an ``optax.inject_hyperparams`` optimizer keeps in its state as a
    number (``None`` for a rate fixed when it was built, or given by a schedule)."""
    found = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(opt_state)
             if jax.tree_util.DictKey("learning_rate") in path]
    # A schedule keeps its own state under the same name, and recomputes the rate each step.
    return found[0] if len(found) == 1 else None


def no_rate_to_set() -> TypeError:
    return TypeError("learning_rate= sets the rate that an optax.inject_hyperparams optimizer "
                     "keeps in its state: pass optimizer=optax.inject_hyperparams(optax.sgd)("
                     "learning_rate=0.01), or give the rate to the optimizer")


def checked_rate(learning_rate: ArrayLike, dtype: np.dtype) -> np.ndarray:
    """``learning_rate`` as an array of ``dtype``, each entry finite and > 0 there."""
    given = np.asarray(learning_rate)
    if given.dtype.kind not in "iuf":
        raise TypeError(f"learning_rate must be a number or an array of numbers, got {given!r}")
    bad = ~(np.isfinite(given) & (given > 0))
    if bad.any():
        raise ValueError(f"learning_rate must be a finite number > 0, got {given[bad].flat[0]!s}")
    with np.errstate(over="ignore", under="ignore"):
        rate = given.astype(dtype)
    bad = ~(np.isfinite(rate) & (rate > 0))
    if bad.any():
        raise ValueError(f"learning_rate must be a finite number > 0 in the training dtype "
                         f"{dtype}, got {given[bad].flat[0]!s}, which becomes "
                         f"{rate[bad].flat[0]!s}")
    return rate


def moved(w0: Any, final: Any) -> bool:
    """Whether any of the parameters ``final`` (host arrays) differs from ``w0``: when none
    does, the trainers ask :func:`first_update` why."""
    return any(np.any(np.asarray(a) != np.asarray(b))
               for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(w0), strict=True))


def first_update(grad: Any, updates: Any, dtype: np.dtype) -> None:
    """A ValueError when an optimizer's first update is exactly 0 in the training ``dtype``
    (``optax.apply_updates`` casts it to the parameters') while the gradient is not: the
    training would silently do nothing, as with ``optax.sgd(1e-46)`` in float32, or a
    float32 ``optax.sgd(1e-8)`` for float16 parameters."""
    with np.errstate(under="ignore"):
        if any(np.any(np.asarray(u).astype(dtype) != 0) for u in jax.tree.leaves(updates)) \
                or not any(np.any(np.asarray(g) != 0) for g in jax.tree.leaves(grad)):
            return
    raise ValueError("the optimizer's first update is exactly 0 while the gradient is not: its "
                     f"learning_rate underflows to 0 in the training dtype {dtype}; give a "
                     "larger rate, or train in a wider dtype")


# ---------------------------------------------------------------------------------------
# Parameters and data


def _floating_leaf(name: str, leaf: Any) -> Any:
    if isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
        dtype = np.dtype(leaf.dtype)
    elif isinstance(leaf, numbers.Real) and not isinstance(leaf, bool):
        dtype = np.dtype(type(leaf)) if isinstance(leaf, float) else np.dtype(int)
    else:
        raise TypeError(f"{name} must hold numbers or floating arrays, got {type(leaf).__name__}")
    if dtype.kind in "iub":
        return np.asarray(leaf, default_float_dtype())
    if not jax.numpy.issubdtype(dtype, jax.numpy.floating):  # bfloat16 too
        raise TypeError(f"{name} must hold real numbers or floating arrays, got dtype {dtype}")
    if isinstance(leaf, float):  # a Python float: JAX's default dtype, like jnp.asarray
        return np.asarray(leaf, default_float_dtype())
    return leaf


def as_params(w0: Any, name: str = "w0") -> tuple[Any, np.dtype]:
    """``w0``'s leaves as floating arrays of the training dtype, the common type of its
    leaves (integers promoted; JAX arrays stay on their device); a ValueError naming the
    first leaf that is not finite in it."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(w0)
    if not paths:
        raise ValueError(f"{name} must hold at least one number, got {w0!r}")
    where = [name + jax.tree_util.keystr(path) for path, _ in paths]
    with np.errstate(over="ignore"):  # a number too large for the dtype: named below
        leaves = [_floating_leaf(w, leaf) for w, (_, leaf) in zip(where, paths, strict=True)]
        dtypes = {np.dtype(leaf.dtype) for leaf in leaves}
        dtype = (np.dtype(jax.dtypes.canonicalize_dtype(dtypes.pop())) if len(dtypes) == 1
                 else np.dtype(jax.numpy.result_type(*leaves)))  # float64 is float32 without x64
        leaves = [leaf.astype(dtype) if isinstance(leaf, jax.Array) else np.asarray(leaf, dtype)
                  for leaf in leaves]
    for w, (_, given), leaf in zip(where, paths, leaves, strict=True):
        if not np.isfinite(leaf).all():
            raise _not_finite(w, given, dtype)
    return jax.tree.unflatten(treedef, leaves), dtype


def as_samples(xs: Samples, ys: Samples, dtype: np.dtype,
               values: bool = True) -> tuple[Any, Any]:
    """``xs`` and ``ys`` as arrays of ``dtype``, samples along their first axis: host
    (NumPy) arrays, except that with ``values=False`` JAX arrays stay on their device.

    Refused, naming the argument: anything but numbers (strings are not parsed), no sample
    axis, no samples, different lengths, and (unless ``values=False``) a sample that is
    not finite in ``dtype``, named as ``xs[i]``. The compiled trainers pass
    ``values=False``: their program checks the data (where it already is: a dataset on an
    accelerator is not copied to the host and back), and only when it finds a number that
    is not finite do they call this again to name it.
    """
    x, y = (_array(name, v) for name, v in (("xs", xs), ("ys", ys)))
    for name, given in (("xs", x), ("ys", y)):
        if np.dtype(given.dtype).kind not in "biuf":
            raise TypeError(f"{name} must hold numbers, got dtype {given.dtype}")
    if np.ndim(x) == 0 or np.ndim(y) == 0:
        raise ValueError(f"xs and ys must be sequences of samples, got shapes {np.shape(x)} "
                         f"and {np.shape(y)}")
    if len(x) == 0 or len(y) == 0:
        raise ValueError("xs and ys are empty: the training needs at least one sample")
    if len(x) != len(y):
        raise ValueError(f"xs and ys must have the same length, got len(xs)={len(x)} and "
                         f"len(ys)={len(y)}")
    with np.errstate(over="ignore"):  # a number too large for the dtype: named below
        if not values:
            x_out, y_out = (v.astype(dtype) if isinstance(v, jax.Array)
                            else np.asarray(v, dtype) for v in (x, y))
            return x_out, y_out
        converted = np.asarray(x, dtype), np.asarray(y, dtype)
    for name, given, array in zip(("xs", "ys"), (x, y), converted, strict=True):
        finite = np.isfinite(array).reshape(len(array), -1).all(axis=1)
        if not finite.all():
            i = int(np.argmin(finite))
            raise _not_finite(f"{name}[{i}]", np.asarray(given[i]), dtype)
    return converted


def _array(name: str, samples: Samples) -> Any:
    """``samples`` as an array (a JAX array as it is), or a ValueError naming ``name`` when
    they are of different shapes."""
    if isinstance(samples, jax.Array):
        return samples
    try:
        return np.asarray(samples)
    except ValueError:  # NumPy's 'inhomogeneous shape'
        raise ValueError(f"{name} must be samples of one shape (an array), got "
                         f"{reprlib.repr(samples)}") from None


def _not_finite(where: str, given: Any, dtype: np.dtype) -> ValueError:
    overflow = np.isfinite(np.asarray(given, np.float64)).all()
    return ValueError(f"{where} must be finite" + (
        f" in the training dtype {dtype}, got {scalar_text(given)}, which overflows it"
        if overflow else f", got {scalar_text(given)}"))


# ---------------------------------------------------------------------------------------
# A trainer's inputs, checked


class Problem(NamedTuple):
    """A training's checked inputs: host arrays in the training dtype."""

    w0: Any
    learning_rate: np.ndarray | None  # the rate written into the optimizer's state, if any
    xs: np.ndarray
    ys: np.ndarray
    dtype: np.dtype
    settings: dict[str, Any]  # the static settings of the compiled program


def prepare(loss: Any, w0: Any, xs: Samples, ys: Samples, *, optimizer: Any,
            learning_rate: ArrayLike | None, epochs: Any, engine: Any, record: Any,
            runs: bool = False, data: bool = True) -> Problem:
    """Check a trainer's arguments (errors name the argument) and convert them.

    ``runs``: ``w0`` and the learning rate may hold many runs (see :func:`sweep`).
    ``data=False``: the data's values are left to the compiled program (see
    :func:`as_samples`).
    """
    optimizer = built_optimizer(optimizer)
    settings = dict(loss=function("loss", loss, "loss(params, x, y) -> scalar"),
                    optimizer=optimizer, epochs=epochs_count(epochs),
                    engine=choice("engine", engine, ENGINES),
                    record=choice("record", record, RECORDS))
    params, dtype = as_params(w0)
    problem = Problem(params, None, *as_samples(xs, ys, dtype, values=data), dtype, settings)
    if learning_rate is None:  # the optimizer's own rate, if it keeps one in its state
        learning_rate = injected_rate(optimizer.init(params))
    if learning_rate is None:
        return problem
    rate = checked_rate(learning_rate, dtype)
    if rate.ndim and not runs:
        raise ValueError(f"learning_rate must be a scalar, got shape {rate.shape}; use sweep() "
                         "for many learning rates")
    return problem._replace(learning_rate=rate)


def runs_shape(problem: Problem) -> tuple[int, ...]:
    """A sweep's runs' shape ``B``: the broadcast shape of ``w0``'s leaves and the rates;
    a ValueError naming their shapes when they do not broadcast."""
    shapes = {"w0" + jax.tree_util.keystr(path): np.shape(leaf)
              for path, leaf in jax.tree_util.tree_leaves_with_path(problem.w0)}
    if problem.learning_rate is not None:
        shapes["learning_rate"] = np.shape(problem.learning_rate)
    try:
        return np.broadcast_shapes(*shapes.values())
    except ValueError:
        given = " and ".join(f"{name}={shape}" for name, shape in shapes.items())
        raise ValueError("w0's leaves and learning_rate must broadcast together to the runs' "
                         f"shape, got shapes {given}") from None


# ---------------------------------------------------------------------------------------
# Sizes


SMALL: int = 1 << 26  # bytes of history that any machine holds: not checked against memory


def memory_limit() -> int:
    """Bytes a history may take: the host's physical memory, or the device's if smaller."""
    limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    stats = jax.local_devices()[0].memory_stats() or {}
    return min(limit, stats.get("bytes_limit", limit))


def history_numbers(record: str, epochs: int, samples: int, runs: int, params: int) -> int:
    """How many numbers a history keeps: per step a loss and a gradient, per epoch the
    epoch's loss and parameters, or only the final parameters."""
    if record == "steps":
        return runs * (epochs * samples * (1 + params) + epochs * (1 + params))
    if record == "epochs":
        return runs * epochs * (1 + params)
    return runs * params


def parameter_count(w0: Any) -> int:
    """How many numbers the parameters ``w0`` hold, over all their leaves."""
    return sum(math.prod(np.shape(leaf)) for leaf in jax.tree.leaves(w0))


def size(problem: Problem, *, sweep: bool = False) -> None:
    """:func:`check_size` for one training of all of ``w0``'s numbers, or for a ``sweep``:
    one training per run (:func:`runs_shape`), each of one number per leaf."""
    runs = math.prod(runs_shape(problem)) if sweep else 1
    params = len(jax.tree.leaves(problem.w0)) if sweep else parameter_count(problem.w0)
    check_size(problem.settings["record"], problem.settings["epochs"], len(problem.xs), runs,
               params, problem.dtype.itemsize)


def exceeded_memory(need: int, limit: int | None = None) -> int | None:
    """The bytes of memory (``limit``, else :func:`memory_limit`) when ``need`` bytes are
    more than half of them (the device copy and the host copy), else ``None``; up to
    :data:`SMALL` bytes fit on any machine, without asking."""
    if limit is None and need <= SMALL:
        return None
    limit = memory_limit() if limit is None else limit
    return limit if need > limit // 2 else None


def check_size(record: str, epochs: int, samples: int, runs: int, params: int, itemsize: int,
               limit: int | None = None) -> None:
    """A MemoryError, before anything is allocated, when the history cannot fit in memory,
    naming its sizes and the ``record`` settings that would fit."""
    need = history_numbers(record, epochs, samples, runs, params) * itemsize
    limit = exceeded_memory(need, limit)
    if limit is None:
        return
    fits = [r for r in RECORDS if history_numbers(r, epochs, samples, runs, params) * itemsize
            <= limit // 2]
    advice = (f"record={fits[0]!r} would fit" if fits
              else "even record='final' would not fit: train fewer runs")
    raise MemoryError(
        f"the training history would take {need:.3g} bytes (record={record!r}: epochs={epochs} x "
        f"samples={samples} x runs={runs} x {params} parameter(s) + 1 loss, {itemsize} bytes "
        f"each), more than half of the {limit:.3g} bytes of memory; {advice}")


# ---------------------------------------------------------------------------------------
# Divergence


def first_non_finite(losses: np.ndarray, *trees: Any) -> tuple[int, int] | None:
    """``(epoch, sample)`` of the first step, in training order, whose loss or any number of
    the ``trees`` (leaves with the losses' leading axes) is inf or NaN; ``None`` if none."""
    finite = np.isfinite(losses)
    for leaf in jax.tree.leaves(trees):
        finite &= np.isfinite(leaf).reshape(*losses.shape, -1).all(axis=-1)
    if finite.all():
        return None
    epoch, sample = np.unravel_index(int(np.argmin(finite)), losses.shape)
    return int(epoch), int(sample)


def truncated(history: Any, epoch: int, sample: int) -> Any:
    """The history up to and including step ``(epoch, sample)``; steps after it are NaN."""
    def cut(a: Any, step_axis: bool) -> np.ndarray:
        a = np.array(a[: epoch + 1], dtype=np.result_type(a.dtype, np.float16))
        if step_axis:
            a[epoch, sample + 1:] = np.nan
        else:
            a[epoch] = np.nan
        return a

    losses = cut(history.losses, True)
    return history._replace(losses=losses, epoch_loss=losses[:, -1],
                            grads=jax.tree.map(lambda g: cut(g, True), history.grads),
                            params=jax.tree.map(lambda p: cut(p, False), history.params))


def divergence(history: Any, xs: np.ndarray, ys: np.ndarray,
               learning_rate: Any = None) -> DivergenceError | None:
    """The error for a diverged training's :class:`~jaxbackprop.train.TrainHistory` (NumPy),
    at its first inf or NaN loss, or else at the last step of the first epoch that ended
    with inf or NaN parameters (a NaN gradient at that step leaves every loss finite);
    ``None`` if its steps and epochs are all finite.

    ``xs`` and ``ys`` are the data the steps were taken on, one row per step of an epoch.
    A history without its steps (``record="epochs"`` or ``"final"``) is taken as diverged
    (the compiled program says so) and can only say which epoch diverged, or nothing:
    its error has ``sample`` (and ``epoch``) ``None``.
    """
    losses, epoch_loss = history.losses, history.epoch_loss
    ended = None if epoch_loss is None else first_non_finite(  # (epoch, 0) or None
        epoch_loss[:, None], jax.tree.map(lambda p: p[:, None], history.params))
    if losses is not None:
        failure, quantity = first_non_finite(losses), "loss"
        if failure is None and ended is not None:
            failure, quantity = (ended[0], losses.shape[1] - 1), "parameters"
        if failure is None:
            return None
        epoch, sample = failure
        return DivergenceError(epoch, sample, float(losses[epoch, sample]), xs[sample],
                               ys[sample], truncated(history, epoch, sample), learning_rate,
                               quantity)
    if ended is not None:
        loss = float(history.epoch_loss[ended[0]])
        return DivergenceError(ended[0], None, loss, history=history,
                               learning_rate=learning_rate,
                               quantity="parameters" if math.isfinite(loss) else "loss")
    finite = all(np.isfinite(p).all() for p in jax.tree.leaves(history.params))
    return DivergenceError(None, None, math.nan, history=history, learning_rate=learning_rate,
                           quantity="loss" if finite else "parameters")
