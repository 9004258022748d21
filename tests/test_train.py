"""Training with optax: the notes' trace from every trainer and engine, one compile, sweeps,
divergence and bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from lecture_trace import EPOCH_LOSS, GRADS, PREDICTION_BEFORE, at_printed_precision

import jaxbackprop as jb
from jaxbackprop import lecture, train
from jaxbackprop.parallel import data_parallel_train, sharded_sweep
from jaxbackprop.train import (
    DivergenceError,
    Step,
    sweep,
    train_per_sample,
    train_scan,
    trajectory,
)

DATA = (lecture.W0, lecture.X_DATA, lecture.Y_DATA)
TRAINERS = {"per_sample": train_per_sample, "scan": train_scan}
SGD = optax.sgd(lecture.LEARNING_RATE)  # the lecture's optimizer
# The rate kept in the optimizer's state, so that learning_rate= can set it as data.
INJECTED = optax.inject_hyperparams(optax.sgd)(learning_rate=lecture.LEARNING_RATE)


def numpy_sgd(w: float, xs: Any, ys: Any, lr: float, epochs: int,
              dtype: Any = np.float64) -> np.ndarray:
    """An independent reference: the lecture's loop in NumPy, ``w -= lr * 2 (w x - y) x``.

    Returns the weight before each step, shape (epochs, samples)."""
    w, lr = dtype(w), dtype(lr)
    before = np.empty((epochs, len(xs)), dtype)
    for epoch in range(epochs):
        for i, (x, y) in enumerate(zip(np.asarray(xs, dtype), np.asarray(ys, dtype), strict=False)):
            before[epoch, i] = w
            w = w - lr * (dtype(2) * (w * x - y) * x)
    return before


@pytest.mark.parametrize("engine", ["jax", "tape"])
@pytest.mark.parametrize("trainer", TRAINERS)
def test_the_notes_trace(trainer: str, engine: str, float_mode: str) -> None:
    w, history = TRAINERS[trainer](jb.loss, *DATA, optimizer=SGD, engine=engine)
    assert history.losses.dtype == np.dtype(float_mode)
    assert history.losses.shape == history.grads.shape == (lecture.EPOCHS, len(lecture.X_DATA))
    assert history.epoch_loss.shape == history.params.shape == (lecture.EPOCHS,)
    assert at_printed_precision(history.grads[: len(GRADS)]) == at_printed_precision(GRADS)
    assert (at_printed_precision(history.epoch_loss[: len(EPOCH_LOSS)])
            == at_printed_precision(EPOCH_LOSS))
    assert float(jb.predict(lecture.W0, lecture.X_PREDICT)) == PREDICTION_BEFORE
    np.testing.assert_array_equal(history.epoch_loss, history.losses[:, -1])
    np.testing.assert_array_equal(w, history.params[-1])


@pytest.mark.parametrize("trainer", TRAINERS)
def test_trajectory_matches_numpy_and_the_closed_form_gradient(trainer: str) -> None:
    _, history = TRAINERS[trainer](jb.loss, *DATA, optimizer=optax.sgd(0.02), epochs=6)
    before = numpy_sgd(lecture.W0, lecture.X_DATA, lecture.Y_DATA, 0.02, 6)
    x, y = np.asarray(lecture.X_DATA), np.asarray(lecture.Y_DATA)
    np.testing.assert_allclose(history.grads, 2 * (before * x - y) * x, rtol=2e-5)
    np.testing.assert_allclose(history.losses, (before * x - y) ** 2, rtol=2e-5)
    np.testing.assert_allclose(history.params[:-1], before[1:, 0], rtol=2e-6)


@pytest.mark.parametrize("engine", ["jax", "tape"])
def test_scan_agrees_with_the_python_loop_to_a_few_ulp(engine: str) -> None:
    xs, ys = np.linspace(-1, 1, 7, dtype=np.float32), np.linspace(0, 3, 7, dtype=np.float32)
    for lr in (0.01, 0.3):
        _, loop = train_per_sample(jb.loss, 0.5, xs, ys, optimizer=INJECTED, learning_rate=lr,
                                   epochs=4, engine=engine)
        _, fused = train_scan(jb.loss, 0.5, xs, ys, optimizer=INJECTED, learning_rate=lr, epochs=4,
                              engine=engine)
        for a, b in zip(loop, fused, strict=False):
            np.testing.assert_array_max_ulp(a, b, maxulp=4)


def test_adam_and_vector_parameters() -> None:
    """Any optax factory, and parameters that are arrays: both trainers agree with each other."""
    def linear_loss(w: Any, x: Any, y: Any) -> Any:
        return (jnp.dot(w, x) - y) ** 2

    rng = np.random.default_rng(0)
    xs = rng.normal(size=(5, 2)).astype(np.float32)
    ys = xs @ np.array([1.5, -0.5], np.float32)
    adam = optax.adam(0.1, b1=0.8)
    runs = [trainer(linear_loss, np.zeros(2, np.float32), xs, ys, optimizer=adam, epochs=30)
            for trainer in TRAINERS.values()]
    (w_loop, loop), (w_scan, fused) = runs
    assert loop.grads.shape == (30, 5, 2) and loop.params.shape == (30, 2) and w_loop.shape == (2,)
    for a, b in zip(loop, fused, strict=False):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert fused.epoch_loss[-1] < 1e-2 * fused.epoch_loss[0]  # adam does fit the line


def counting(calls: list[int]) -> Callable[..., Any]:
    """The lecture's loss, counting how often it is traced (once per compilation)."""
    def loss(w: Any, x: Any, y: Any) -> Any:
        calls.append(1)
        return jb.loss(w, x, y)
    return loss


@pytest.mark.parametrize("engine", ["jax", "tape"])
def test_the_per_sample_step_compiles_once(engine: str) -> None:
    calls: list[int] = []
    loss = counting(calls)
    seen: list[Step] = []
    train_per_sample(loss, *DATA, optimizer=INJECTED, engine=engine, on_step=seen.append)
    assert len(seen) == 30 and len(calls) == 1
    # A new rate is data:
    train_per_sample(loss, *DATA, optimizer=INJECTED, learning_rate=0.05, engine=engine)
    assert len(calls) == 1


@pytest.mark.parametrize("engine", ["jax", "tape"])
def test_scan_compiles_once_for_new_rates_and_data(engine: str) -> None:
    calls: list[int] = []
    loss = counting(calls)
    first = train_scan(loss, *DATA, optimizer=INJECTED, engine=engine)
    assert len(calls) == 1
    second = train_scan(loss, 2.0, (0.5, 1.0, 1.5), (1.0, 1.0, 4.0), optimizer=INJECTED,
                        learning_rate=0.2, engine=engine)
    assert len(calls) == 1, "a new learning rate, w0 or data of the same shape recompiled"
    assert not np.array_equal(first[1].losses, second[1].losses)
    # A new number of epochs is a new program:
    train_scan(loss, *DATA, optimizer=INJECTED, epochs=3, engine=engine)
    assert len(calls) == 2


@pytest.mark.parametrize("trainer", TRAINERS)
def test_on_step_reports_every_step_in_order(trainer: str) -> None:
    seen: list[Step] = []
    _, history = TRAINERS[trainer](jb.loss, *DATA, optimizer=SGD, epochs=2, on_step=seen.append)
    assert [(s.epoch, s.sample) for s in seen] == [(e, i) for e in range(2) for i in range(3)]
    assert [float(s.x) for s in seen[:3]] == list(lecture.X_DATA)
    np.testing.assert_array_equal([s.grad for s in seen], history.grads.ravel())
    np.testing.assert_array_equal([s.loss for s in seen], history.losses.ravel())


def test_trajectory_is_pure_and_differentiable_in_the_learning_rate() -> None:
    """``jax.grad`` through the whole training: d(final loss)/d(lr) by finite differences."""
    with jax.enable_x64(True):  # finite differences need float64
        xs, ys = jnp.asarray(lecture.X_DATA), jnp.asarray(lecture.Y_DATA)

        def final_loss(lr: jax.Array) -> jax.Array:
            return trajectory(jb.loss, jnp.float64(lecture.W0), xs, ys,
                              optimizer=optax.sgd(lr)).epoch_loss[-1]

        lr, h = 0.01, 1e-6
        numeric = (final_loss(lr + h) - final_loss(lr - h)) / (2 * h)
        analytic = jax.jit(jax.grad(final_loss))(lr)
        assert analytic.dtype == jnp.float64
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6)


def test_sweep_agrees_with_single_runs() -> None:
    rates = np.array([[0.005, 0.01, 0.02], [0.03, 0.04, 0.05]], np.float32)
    w0s = np.array([[1.0], [-2.0]], np.float32)  # broadcast against the rates: shape (2, 3)
    w, history = sweep(jb.loss, w0s, lecture.X_DATA, lecture.Y_DATA,
                       optimizer=optax.inject_hyperparams(optax.sgd)(learning_rate=rates))
    assert w.shape == (2, 3) and history.grads.shape == (2, 3, 10, 3)
    assert history.params.shape == history.epoch_loss.shape == (2, 3, 10)
    for (i, j), rate in np.ndenumerate(rates):
        w_one, one = train_scan(jb.loss, w0s[i, 0], lecture.X_DATA, lecture.Y_DATA,
                                optimizer=optax.sgd(rate))
        for a, b in zip(one, history, strict=False):
            np.testing.assert_array_max_ulp(a, b[i, j], maxulp=4)
        assert w[i, j] == w_one


@pytest.mark.parametrize("record", ["epochs", "final"])
def test_a_sweep_recording_less_trains_the_same(record: str) -> None:
    """Fewer records, the same arithmetic: bitwise the full sweep's epochs and weights."""
    rates = np.array([[0.005, 0.01, 0.02], [0.03, 0.04, 1.0]], np.float32)  # the last diverges
    w0s = np.array([[1.0], [-2.0]], np.float32)
    kwargs = dict(optimizer=INJECTED, learning_rate=rates, epochs=12)
    w, full = sweep(jb.loss, w0s, lecture.X_DATA, lecture.Y_DATA, **kwargs)
    w_less, less = sweep(jb.loss, w0s, lecture.X_DATA, lecture.Y_DATA, record=record, **kwargs)
    np.testing.assert_array_equal(w_less, w)
    assert less.losses is None and less.grads is None
    if record == "epochs":
        np.testing.assert_array_equal(less.epoch_loss, full.epoch_loss)
        np.testing.assert_array_equal(less.params, full.params)
    else:
        assert less.epoch_loss is None and less.params.shape == (2, 3, 1)
        np.testing.assert_array_equal(less.params[..., 0], w)
    assert not np.isfinite(full.epoch_loss[1, 2]).all()  # compared as computed: inf, NaN


@pytest.mark.parametrize("record", ["epochs", "final"])
@pytest.mark.parametrize("trainer", TRAINERS)
def test_every_trainer_records_less_the_same(trainer: str, record: str) -> None:
    """record= in the single trainers: the same epochs and weights as record='steps'; on_step
    still sees every step of the per-sample loop."""
    w, full = TRAINERS[trainer](jb.loss, *DATA, optimizer=SGD)
    seen: list[Step] = []
    on_step = seen.append if trainer == "per_sample" else None
    w_less, less = TRAINERS[trainer](jb.loss, *DATA, optimizer=SGD, record=record, on_step=on_step)
    np.testing.assert_array_equal(w_less, w)
    assert less.losses is None and less.grads is None
    if record == "epochs":
        np.testing.assert_array_equal(less.epoch_loss, full.epoch_loss)
        np.testing.assert_array_equal(less.params, full.params)
    else:
        assert less.epoch_loss is None and less.params.shape == (1,)
    if on_step is not None:
        np.testing.assert_array_equal([s.grad for s in seen], full.grads.ravel())


def test_an_unknown_record_is_named() -> None:
    with pytest.raises(ValueError,
                       match="record must be one of 'steps', 'epochs', 'final', got 'all'"):
        sweep(jb.loss, *DATA, optimizer=SGD, record="all")


def test_a_sweep_trains_the_same_on_every_kind_of_input() -> None:
    """The lecture's tuples, NumPy and JAX arrays, rates as a list: bitwise the same sweep;
    new data trains as a single run on it does."""
    rates = np.array([0.005, 0.01, 0.02], np.float32)
    w, history = sweep(jb.loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA, optimizer=INJECTED,
                       learning_rate=rates)
    xs, ys = list(lecture.X_DATA), list(lecture.Y_DATA)
    for w0, data, rate in [(lecture.W0, (tuple(xs), tuple(ys)), rates),
                           (np.float32(lecture.W0), (np.array(xs), np.array(ys)), list(rates)),
                           (jnp.float32(lecture.W0), (jnp.array(xs), jnp.array(ys)),
                            jnp.asarray(rates))]:
        w_again, again = sweep(jb.loss, w0, *data, optimizer=INJECTED, learning_rate=rate)
        np.testing.assert_array_equal(w_again, w)
        for a, b in zip(again, history, strict=False):
            np.testing.assert_array_equal(a, b)
    new_xs = (1.0, 2.0, 4.0)
    w_new, _ = sweep(jb.loss, lecture.W0, new_xs, lecture.Y_DATA, optimizer=INJECTED,
                     learning_rate=rates)
    w_one, _ = train_scan(jb.loss, lecture.W0, new_xs, lecture.Y_DATA,
                          optimizer=optax.sgd(float(rates[1])))
    assert w_new[1] != w[1]
    np.testing.assert_array_max_ulp(w_new[1], w_one, maxulp=4)


def test_sweep_keeps_diverging_runs_as_computed() -> None:
    w, history = sweep(jb.loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA, optimizer=INJECTED,
                       learning_rate=np.array([0.01, 1.0]), epochs=12)
    assert np.isfinite(history.losses[0]).all() and not np.isfinite(history.losses[1]).all()


def test_the_docstring_examples_run() -> None:
    import doctest

    result = doctest.testmod(train, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0


def test_the_history_prints_its_shapes() -> None:
    _, history = train_scan(lambda p, x, y: jb.loss(p["w"], x, y), {"w": 1.0}, lecture.X_DATA,
                            lecture.Y_DATA, optimizer=SGD, epochs=2)
    assert repr(history) == ("TrainHistory(losses=float32[2, 3], grads={w: float32[2, 3]}, "
                             "epoch_loss=float32[2], params={w: float32[2]})")
    _, history = sweep(jb.loss, 1.0, lecture.X_DATA, lecture.Y_DATA, optimizer=SGD, record="final")
    assert repr(history) == "TrainHistory(params=float32[1])"


# ---------------------------------------------------------------------------------------
# Any optimizer, any parameters


def hand_loop(loss: Callable[..., Any], params: Any, optimizer: optax.GradientTransformation,
              xs: Any, ys: Any, epochs: int) -> tuple[list[Any], list[Any]]:
    """The reference: optax's own loop, written out, eager: losses and params per step."""
    state = optimizer.init(params)
    losses, after = [], []
    for _ in range(epochs):
        for x, y in zip(xs, ys, strict=False):
            value, grad = jax.value_and_grad(loss)(params, x, y)
            updates, state = optimizer.update(grad, state, params)
            params = optax.apply_updates(params, updates)
            losses.append(float(value))
            after.append(params)
    return losses, after


def line_loss(p: dict[str, Any], x: Any, y: Any) -> Any:
    return (p["w"] * x + p["b"] - y) ** 2


@pytest.mark.parametrize("trainer", [*TRAINERS, "sweep"])
def test_dict_parameters_follow_the_hand_written_loop(trainer: str) -> None:
    w0 = {"w": 1.0, "b": 0.0}
    optimizer = optax.sgd(0.05)
    losses, after = hand_loop(line_loss, w0, optimizer, lecture.X_DATA, lecture.Y_DATA, 4)
    fn = TRAINERS.get(trainer, sweep)
    w, history = fn(line_loss, w0, lecture.X_DATA, lecture.Y_DATA, optimizer=optimizer, epochs=4)
    assert set(w) == {"w", "b"} and set(history.grads) == {"w", "b"}
    assert history.params["w"].shape == (4,) and history.grads["b"].shape == (4, 3)
    np.testing.assert_allclose(np.ravel(history.losses), losses, rtol=1e-4, atol=1e-6)
    for key in w0:
        np.testing.assert_allclose(history.params[key], [after[3 * e + 2][key] for e in range(4)],
                                   rtol=1e-5)
        np.testing.assert_allclose(w[key], after[-1][key], rtol=1e-5)


def test_tuple_and_vector_parameters_keep_their_structure() -> None:
    def loss(p: tuple[Any, Any], x: Any, y: Any) -> Any:
        return (jnp.sum(p[0] * x) + p[1] - y) ** 2

    w0 = (np.zeros(2, np.float32), np.float32(0.0))
    xs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
    ys = np.array([1.0, 2.0, 3.0], np.float32)
    losses, after = hand_loop(loss, w0, optax.sgd(0.1), xs, ys, 3)
    for fn in TRAINERS.values():
        w, history = fn(loss, w0, xs, ys, optimizer=optax.sgd(0.1), epochs=3)
        assert isinstance(w, tuple) and history.grads[0].shape == (3, 3, 2)
        np.testing.assert_allclose(np.ravel(history.losses), losses, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(w[0], after[-1][0], rtol=1e-5)


@pytest.mark.parametrize("name, optimizer", [
    ("adam", optax.adam(0.1)),
    ("chain", optax.chain(optax.clip(1.0), optax.sgd(0.05))),
    ("schedule", optax.sgd(optax.exponential_decay(0.02, transition_steps=3, decay_rate=0.5))),
    ("injected schedule", optax.inject_hyperparams(optax.sgd)(
        learning_rate=optax.linear_schedule(0.02, 0.0, 30))),
])
@pytest.mark.parametrize("trainer", TRAINERS)
def test_any_built_optimizer_follows_the_hand_written_loop(trainer: str, name: str,
                                                         optimizer: Any) -> None:
    losses, after = hand_loop(jb.loss, 1.0, optimizer, lecture.X_DATA, lecture.Y_DATA, 10)
    w, history = TRAINERS[trainer](jb.loss, *DATA, optimizer=optimizer)
    np.testing.assert_allclose(np.ravel(history.losses), losses, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(w, after[-1], rtol=1e-5)


def test_clipping_is_the_closed_form() -> None:
    """chain(clip(1), sgd(lr)) is w -= lr * clip(dL/dw, -1, 1): checked against NumPy."""
    lr, w = 0.05, 1.0
    for x, y in zip(lecture.X_DATA, lecture.Y_DATA, strict=False):
        w -= lr * np.clip(2 * (w * x - y) * x, -1, 1)
    w_chain, _ = train_scan(jb.loss, *DATA, optimizer=optax.chain(optax.clip(1.0), optax.sgd(lr)),
                            epochs=1)
    np.testing.assert_allclose(w_chain, w, rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("trainer", [*TRAINERS, "sweep"])
def test_every_floating_dtype(trainer: str, dtype: str) -> None:
    """The training runs in w0's dtype, history and all, and follows NumPy in float64."""
    with jax.enable_x64(dtype == "float64"):
        w0 = jnp.asarray(lecture.W0, dtype)
        fn = TRAINERS.get(trainer, sweep)
        w, history = fn(jb.loss, w0, lecture.X_DATA, lecture.Y_DATA, optimizer=SGD, epochs=3)
    assert np.dtype(history.losses.dtype) == np.dtype(w0.dtype) == np.dtype(history.grads.dtype)
    assert np.dtype(np.asarray(w).dtype) == np.dtype(w0.dtype)
    before = numpy_sgd(lecture.W0, lecture.X_DATA, lecture.Y_DATA, lecture.LEARNING_RATE, 3)
    rtol = {"float16": 2e-2, "bfloat16": 5e-2, "float32": 1e-5, "float64": 1e-12}[dtype]
    x = np.asarray(lecture.X_DATA)
    np.testing.assert_allclose(np.asarray(history.grads, np.float64), 2 * (before * x - 2 * x) * x,
                               rtol=rtol)


# ---------------------------------------------------------------------------------------
# Divergence


@pytest.mark.parametrize("trainer", TRAINERS)
def test_divergence_names_the_step_and_keeps_the_history(trainer: str) -> None:
    seen: list[Step] = []
    with pytest.raises(DivergenceError) as caught:
        TRAINERS[trainer](jb.loss, *DATA, optimizer=optax.sgd(1.0), on_step=seen.append)
    error = caught.value
    before = numpy_sgd(lecture.W0, lecture.X_DATA, lecture.Y_DATA, 1.0, lecture.EPOCHS, np.float32)
    with np.errstate(over="ignore"):
        x, y = np.asarray(lecture.X_DATA, np.float32), np.asarray(lecture.Y_DATA, np.float32)
        expected_losses = (before * x - y) ** 2
    first_bad = np.argmin(np.isfinite(expected_losses).ravel())
    assert (error.epoch, error.sample) == divmod(int(first_bad), 3) == (9, 2)
    assert f"epoch {error.epoch}, sample {error.sample}" in str(error) and "\n" not in str(error)
    assert error.loss == np.inf
    # Every step before the failing one is kept, and nothing after it is made up.
    losses = error.history.losses.ravel()
    assert error.history.losses.shape == (error.epoch + 1, 3)
    np.testing.assert_allclose(losses[:first_bad], expected_losses.ravel()[:first_bad], rtol=1e-5)
    assert losses[first_bad] == np.inf and np.isnan(losses[first_bad + 1:]).all()
    assert np.isnan(error.history.params[-1]) and np.isfinite(error.history.params[:-1]).all()
    assert len(seen) == first_bad  # on_step saw every finite step, then the error


def test_both_trainers_raise_the_same_divergence() -> None:
    errors = []
    for trainer in TRAINERS.values():
        with pytest.raises(DivergenceError) as caught:
            trainer(jb.loss, *DATA, optimizer=INJECTED, learning_rate=1.0)
        errors.append(caught.value)
    assert str(errors[0]) == str(errors[1])
    assert "learning_rate=1" in str(errors[0])
    for a, b in zip(errors[0].history, errors[1].history, strict=False):
        np.testing.assert_array_max_ulp(a, b, maxulp=4)


@pytest.mark.parametrize("record", ["epochs", "final"])
@pytest.mark.parametrize("trainer", TRAINERS)
def test_divergence_is_caught_recording_less(trainer: str, record: str) -> None:
    with pytest.raises(DivergenceError) as caught:
        TRAINERS[trainer](jb.loss, *DATA, optimizer=optax.sgd(1.0), record=record)
    if trainer == "per_sample" or record == "epochs":
        assert caught.value.epoch == 9


@pytest.mark.parametrize("trainer", [*TRAINERS, "sweep"])
def test_non_finite_data_is_named(trainer: str) -> None:
    fn = TRAINERS.get(trainer, sweep)
    with pytest.raises(ValueError, match=r"ys\[1\] must be finite, got nan"):
        fn(jb.loss, 1.0, (1.0, 2.0, 3.0), (2.0, float("nan"), 6.0), optimizer=SGD)
    with pytest.raises(ValueError, match=r"xs\[2\] must be finite in the training dtype float32, "
                                         r"got 1e\+39, which overflows it"):
        fn(jb.loss, 1.0, (1.0, 2.0, 1e39), (2.0, 4.0, 6.0), optimizer=SGD)


def diverge() -> None:
    """Run in a child process: a training that diverges."""
    train_scan(jb.loss, *DATA, optimizer=optax.sgd(1.0))


def test_errors_survive_pickling_and_process_pools() -> None:
    import pickle
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from jaxbackprop.cli.common import CommandError
    from jaxbackprop.devices import BackendUnavailableError
    from jaxbackprop.draw import RendererNotFoundError
    from jaxbackprop.tape.core import ShapeError

    with pytest.raises(DivergenceError) as caught:
        diverge()
    again = pickle.loads(pickle.dumps(caught.value))
    assert str(again) == str(caught.value) and (again.epoch, again.sample) == (9, 2)
    np.testing.assert_array_equal(again.history.losses, caught.value.history.losses)
    for error_type in (CommandError, BackendUnavailableError, RendererNotFoundError, ShapeError):
        error = error_type("a message")
        assert str(pickle.loads(pickle.dumps(error))) == str(error)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        with pytest.raises(DivergenceError) as caught_there:
            pool.submit(diverge).result(timeout=120)
    assert str(caught_there.value) == str(caught.value)
    assert caught_there.value.history.losses.shape == (10, 3)


# ---------------------------------------------------------------------------------------
# Sizes


def test_a_history_too_large_is_a_memory_error_before_anything_is_allocated(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from jaxbackprop import _validate

    monkeypatch.setattr(_validate, "memory_limit", lambda: 2**33)  # 8.6 GB, on any machine
    with pytest.raises(MemoryError, match=r"epochs=1000000 x samples=3 x runs=10000 .* "
                                          r"record='final' would fit"):
        sweep(jb.loss, np.ones(10**4, np.float32), lecture.X_DATA, lecture.Y_DATA, optimizer=SGD,
              epochs=10**6)
    for trainer in TRAINERS.values():  # the most epochs a scan counts: 5.2e10 bytes
        with pytest.raises(MemoryError, match="record='steps': epochs=2147483647 x samples=3 "
                                              "x runs=1 .* record='final' would fit"):
            trainer(jb.loss, *DATA, optimizer=SGD, epochs=2**31 - 1)


def test_the_size_check_counts_every_record() -> None:
    from jaxbackprop import _validate

    # 2 epochs x 3 samples x 4 runs, 5 parameters: per step a loss and 5 gradients, per
    # epoch a loss and 5 parameters.
    assert _validate.history_numbers("steps", 2, 3, 4, 5) == 4 * (2 * 3 * 6 + 2 * 6)
    assert _validate.history_numbers("epochs", 2, 3, 4, 5) == 4 * 2 * 6
    assert _validate.history_numbers("final", 2, 3, 4, 5) == 4 * 5
    _validate.check_size("steps", 2, 3, 4, 5, 4, limit=2 * 4 * 192)
    with pytest.raises(MemoryError, match="record='epochs' would fit"):
        _validate.check_size("steps", 2, 3, 4, 5, 4, limit=2 * 4 * 191)


# ---------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("trainer", [train_per_sample, train_scan, sweep])
@pytest.mark.parametrize("kwargs, message", [
    (dict(xs=(), ys=()), "xs and ys are empty"),
    (dict(xs=(1.0, 2.0), ys=(1.0, 2.0, 3.0)), r"len\(xs\)=2 and len\(ys\)=3"),
    (dict(xs=1.0, ys=2.0), "xs and ys must be sequences"),
    (dict(epochs=0), "epochs must be a whole number >= 1, got 0"),
    (dict(epochs=2.5), "epochs must be a whole number >= 1, got 2.5"),
    (dict(epochs=2**31), r"epochs must be at most 2,147,483,647 \(2\*\*31 - 1: lax.scan and "
                         r"optax count steps in 32-bit integers\), got 2,147,483,648"),
    (dict(learning_rate=float("nan")), "learning_rate must be a finite number > 0, got nan"),
    (dict(learning_rate=float("inf")), "learning_rate must be a finite number > 0, got inf"),
    (dict(learning_rate=0.0), "learning_rate must be a finite number > 0, got 0.0"),
    (dict(learning_rate=-0.01), "learning_rate must be a finite number > 0, got -0.01"),
    (dict(learning_rate=1e-46), "learning_rate must be a finite number > 0 in the training dtype "
                                "float32, got 1e-46, which becomes 0.0"),
    (dict(optimizer=optax.inject_hyperparams(optax.sgd)(learning_rate=1e-46)),  # stored as 0.0
     "learning_rate must be a finite number > 0, got 0.0"),
    (dict(w0=float("nan")), "w0 must be finite"),
    (dict(w0={"w": 1.0, "b": float("inf")}), r"w0\['b'\] must be finite, got inf"),
    (dict(engine="torch"), "engine must be one of 'jax', 'tape', got 'torch'"),
    (dict(record="all"), "record must be one of 'steps', 'epochs', 'final', got 'all'"),
])
def test_bad_input_is_a_value_error_naming_the_argument(
        trainer: Callable[..., Any], kwargs: dict[str, Any], message: str) -> None:
    args = dict(w0=lecture.W0, xs=lecture.X_DATA, ys=lecture.Y_DATA, optimizer=INJECTED) | kwargs
    w0, xs, ys = args.pop("w0"), args.pop("xs"), args.pop("ys")
    with pytest.raises(ValueError, match=message):
        trainer(jb.loss, w0, xs, ys, **args)


@pytest.mark.parametrize("trainer", [train_per_sample, train_scan, sweep])
@pytest.mark.parametrize("kwargs, message", [
    (dict(optimizer=optax.sgd), r"got the factory optax.sgd; call it: optimizer=optax.sgd\(0.01\)"),
    (dict(optimizer=optax.adam), r"call it: optimizer=optax.adam\(0.01\)"),
    (dict(optimizer="sgd"), r"such as optax.sgd\(0.01\), got str"),
    (dict(learning_rate=0.02), r"pass optimizer=optax.inject_hyperparams\(optax.sgd\)"),
    (dict(xs=["1", "2", "3"]), "xs must hold numbers, got dtype <U1"),
    (dict(ys=np.array([2.0, None, 6.0])), "ys must hold numbers, got dtype object"),
    (dict(w0="1.0"), "w0 must hold numbers or floating arrays, got str"),
    (dict(w0=np.complex64(1.0)),
     "w0 must hold real numbers or floating arrays, got dtype complex64"),
])
def test_bad_types_are_a_type_error_naming_the_argument(
        trainer: Callable[..., Any], kwargs: dict[str, Any], message: str) -> None:
    args = dict(w0=lecture.W0, xs=lecture.X_DATA, ys=lecture.Y_DATA, optimizer=SGD) | kwargs
    w0, xs, ys = args.pop("w0"), args.pop("xs"), args.pop("ys")
    with pytest.raises(TypeError, match=message):
        trainer(jb.loss, w0, xs, ys, **args)


def test_numpy_integers_are_whole_numbers_everywhere() -> None:
    for fn in (train_per_sample, train_scan, sweep):
        _, history = fn(jb.loss, *DATA, optimizer=SGD, epochs=np.int64(2))
        assert np.shape(history.losses)[-2:] == (2, 3)
    w, _ = train_scan(jb.loss, np.int32(1), lecture.X_DATA, lecture.Y_DATA, optimizer=SGD)
    assert np.dtype(w.dtype) == np.float32


def test_a_sweep_names_its_first_bad_learning_rate() -> None:
    rates = np.concatenate([np.full(500, 0.01), [-2.0, np.nan]])
    with pytest.raises(ValueError, match=r"^learning_rate must be a finite number > 0, got -2.0$"):
        sweep(jb.loss, *DATA, optimizer=optax.inject_hyperparams(optax.sgd)(learning_rate=rates))


def one_sample_batches(loss: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """data_parallel_train with batches of one sample: the lecture's per-sample SGD."""
    return data_parallel_train(loss, *args, batch_size=1, **kwargs)


@pytest.mark.parametrize("trainer", [train_per_sample, train_scan, sweep, sharded_sweep,
                                     one_sample_batches])
@pytest.mark.parametrize("optimizer", [
    optax.sgd(1e-46),  # the rate is a constant of the program: 0.0 in float32
    optax.adam(1e-46),
    optax.chain(optax.clip(1.0), optax.sgd(1e-46)),
])
@pytest.mark.parametrize("engine", ["jax", "tape"])
def test_a_learning_rate_that_underflows_is_an_error(
        trainer: Callable[..., Any], optimizer: optax.GradientTransformation, engine: str) -> None:
    with pytest.raises(ValueError, match="the optimizer's first update is exactly 0 while the "
                                         "gradient is not: its learning_rate underflows to 0 in "
                                         "the training dtype float32"):
        trainer(jb.loss, *DATA, optimizer=optimizer, epochs=2, engine=engine)


def test_a_learning_rate_that_underflows_is_an_error_for_dict_parameters() -> None:
    def loss(p: Any, x: Any, y: Any) -> Any:
        return (p["w"] * x + p["b"] - y) ** 2

    for trainer in (train_per_sample, train_scan, sweep, one_sample_batches):
        with pytest.raises(ValueError, match="learning_rate underflows to 0"):
            trainer(loss, {"w": 1.0, "b": 0.0}, *DATA[1:], optimizer=optax.adam(1e-46))


@pytest.mark.parametrize("trainer", [sweep, sharded_sweep])
def test_a_sweep_asks_every_run_that_never_moved(trainer: Callable[..., Any]) -> None:
    """Run 0 starts at the minimum (w = 2, gradient 0: it stays, rightly); run 1 does not
    move either, because the rate underflows. Only asking run 0 let this pass silently."""
    with pytest.raises(ValueError, match="learning_rate underflows to 0"):
        trainer(jb.loss, np.array([2.0, 1.0], np.float32), *DATA[1:], optimizer=optax.sgd(1e-46))
    # a rate per run, one of which is too small to move its run (float32 flushes 1e-40 to 0)
    sgd = optax.inject_hyperparams(optax.sgd)(learning_rate=np.array([0.01, 1e-40], np.float32))
    with pytest.raises(ValueError, match="learning_rate underflows to 0"):
        trainer(jb.loss, 1.0, *DATA[1:], optimizer=sgd)
    w, _ = trainer(jb.loss, np.array([2.0, 1.0], np.float32), *DATA[1:], optimizer=SGD)
    assert w[0] == 2.0 and w[1] != 1.0  # run 0 at the minimum, run 1 trained: no error


@pytest.mark.parametrize("trainer", [train_per_sample, train_scan, sweep, sharded_sweep,
                                     one_sample_batches])
def test_a_training_that_starts_at_the_minimum_is_no_error(trainer: Callable[..., Any]) -> None:
    """y = 2 x and w0 = 2: every gradient is 0, so the weight stays 2 exactly (a hand loop
    would give the same), and nothing is wrong."""
    w, history = trainer(jb.loss, 2.0, lecture.X_DATA, lecture.Y_DATA, optimizer=SGD, epochs=2)
    np.testing.assert_array_equal(np.asarray(w), 2.0)
    np.testing.assert_array_equal(np.asarray(history.losses), 0.0)


def test_a_single_training_takes_one_learning_rate() -> None:
    with pytest.raises(ValueError, match="learning_rate must be a scalar"):
        train_scan(jb.loss, *DATA, optimizer=INJECTED, learning_rate=np.array([0.01, 0.02]))


@pytest.mark.parametrize("argument", ["w0", "learning_rate"])
def test_a_number_that_overflows_float32_is_named(argument) -> None:
    settings = {"w0": lecture.W0, "learning_rate": lecture.LEARNING_RATE, argument: 1e39}
    with pytest.raises(ValueError, match=f"{argument} must be (a )?finite (number > 0 )?in the "
                                         "training dtype float32"):
        train_scan(jb.loss, settings["w0"], lecture.X_DATA, lecture.Y_DATA, optimizer=INJECTED,
                   learning_rate=settings["learning_rate"])


def test_train_scan_names_its_methods() -> None:
    with pytest.raises(ValueError,
                       match="method must be one of 'sequential', 'parallel', got 'paralel'"):
        train_scan(jb.loss, *DATA, optimizer=SGD, method="paralel")


def test_mean_loss_of_an_empty_batch_is_an_error() -> None:
    with pytest.raises(ValueError, match="mean_loss: xs and ys are empty"):
        jb.mean_loss(1.0, np.zeros(0), np.zeros(0))


def test_the_per_sample_loop_makes_one_transfer_per_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a step hands the host is one array, read once (params stay on the device)."""
    transfers: list[int] = []

    class Counted:  # the step's record: only np.asarray works on it
        def __init__(self, array: Any) -> None:
            self.array = array

        def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
            transfers.append(1)
            return np.asarray(self.array)

    step = train._jitted_step
    monkeypatch.setattr(train, "_jitted_step", lambda *args, **kwargs: (
        step(*args, **kwargs)[0], Counted(step(*args, **kwargs)[1])))
    seen: list[Step] = []
    _, history = train_per_sample(jb.loss, *DATA, optimizer=SGD, on_step=seen.append)
    assert len(transfers) == len(seen) == 30
    assert at_printed_precision(history.grads[: len(GRADS)]) == at_printed_precision(GRADS)
    np.testing.assert_array_max_ulp(history.params,
                                    train_scan(jb.loss, *DATA, optimizer=SGD)[1].params, maxulp=4)



@pytest.mark.parametrize("call", [
    lambda loss: train.train_per_sample(loss, 1.0, [1.0], [2.0], optimizer=optax.sgd(0.01)),
    lambda loss: train.train_scan(loss, 1.0, [1.0], [2.0], optimizer=optax.sgd(0.01)),
    lambda loss: train.train_scan(loss, 1.0, [1.0], [2.0], optimizer=optax.sgd(0.01),
                                  method="parallel"),
    lambda loss: train.sweep(loss, np.ones(2), [1.0], [2.0], optimizer=optax.sgd(0.01)),
    lambda loss: sharded_sweep(loss, np.ones(2), [1.0], [2.0], optimizer=optax.sgd(0.01)),
], ids=["train_per_sample", "train_scan", "parallel", "sweep", "sharded_sweep"])
def test_a_loss_that_is_not_a_function_is_refused(call: Callable[[Any], Any]) -> None:
    with pytest.raises(TypeError, match=r"loss must be a function loss\(params, x, y\).*got str"):
        call("(w * x - y) ** 2")


@pytest.mark.parametrize("trainer", [train.train_per_sample, train.train_scan])
def test_an_on_step_that_is_not_a_function_is_refused_before_training(
        trainer: Callable[..., Any]) -> None:
    with pytest.raises(TypeError, match=r"on_step must be a function on_step\(step: Step\).*int"):
        trainer(jb.loss, 1.0, [1.0], [2.0], optimizer=optax.sgd(0.01), on_step=3)


def test_train_scan_on_jax_data_matches_numpy_data_and_reports_numpy_samples() -> None:
    """Data given as JAX arrays stays on its device for the program; what reaches the user
    from the host (on_step's samples, a DivergenceError's x) is NumPy, as for NumPy data."""
    xs, ys = np.asarray(lecture.X_DATA, np.float32), np.asarray(lecture.Y_DATA, np.float32)
    seen: list[Step] = []
    w_jax, h_jax = train.train_scan(jb.loss, 1.0, jnp.asarray(xs), jnp.asarray(ys),
                                    optimizer=SGD, on_step=seen.append)
    w_np, h_np = train.train_scan(jb.loss, 1.0, xs, ys, optimizer=SGD)
    np.testing.assert_array_equal(w_jax, w_np)
    np.testing.assert_array_equal(h_jax.losses, h_np.losses)
    assert [type(s.x) for s in seen[:3]] == [np.float32] * 3 and seen[2].x == xs[2]
    with pytest.raises(DivergenceError) as caught:
        train.train_scan(jb.loss, 1.0, jnp.asarray(xs), jnp.asarray(ys), optimizer=optax.sgd(10.0))
    assert isinstance(caught.value.x, np.float32)


def test_the_loop_keeps_only_the_rows_its_record_needs() -> None:
    """With record="final" the loop keeps one row, whatever the epochs: Python memory at
    the last step is the same for 300 epochs as for 3,000 (it kept a row per epoch, each
    a view that held its device buffer: 4 KB an epoch)."""
    import tracemalloc

    def memory_at_the_end(epochs: int) -> int:
        seen: list[int] = []

        def on_step(step: Step) -> None:
            if step.epoch == epochs - 1 and step.sample == 2:
                seen.append(tracemalloc.get_traced_memory()[0])

        train_per_sample(jb.loss, *DATA, optimizer=SGD, epochs=epochs, record="final",
                         on_step=on_step)
        return seen[0]

    train_per_sample(jb.loss, *DATA, optimizer=SGD, epochs=2, record="final")  # compiled
    tracemalloc.start()
    try:
        growth = memory_at_the_end(3000) - memory_at_the_end(300)
    finally:
        tracemalloc.stop()
    assert growth < 50_000, f"{growth} bytes more for 2,700 more epochs"
