"""Training with optax: the notes' trace from every trainer and engine, one compile, sweeps,
divergence and bad input."""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbackprop as jb
from jaxbackprop import lecture, train
from jaxbackprop.train import DivergenceError, Step, sweep, train_per_sample, train_scan, trajectory
from lecture_trace import EPOCH_LOSS, GRADS, PREDICTION_BEFORE, at_printed_precision

DATA = (lecture.W0, lecture.X_DATA, lecture.Y_DATA)
TRAINERS = {"per_sample": train_per_sample, "scan": train_scan}


def numpy_sgd(w: float, xs: Any, ys: Any, lr: float, epochs: int, dtype: Any = np.float64) -> np.ndarray:
    """An independent reference: the lecture's loop in NumPy, ``w -= lr * 2 (w x - y) x``.

    Returns the weight before each step, shape (epochs, samples)."""
    w, lr = dtype(w), dtype(lr)
    before = np.empty((epochs, len(xs)), dtype)
    for epoch in range(epochs):
        for i, (x, y) in enumerate(zip(np.asarray(xs, dtype), np.asarray(ys, dtype))):
            before[epoch, i] = w
            w = w - lr * (dtype(2) * (w * x - y) * x)
    return before


@pytest.mark.parametrize("engine", ["jax", "tape"])
@pytest.mark.parametrize("trainer", TRAINERS)
def test_the_notes_trace(trainer: str, engine: str, float_mode: str) -> None:
    w, history = TRAINERS[trainer](jb.loss, *DATA, engine=engine)
    assert history.losses.dtype == np.dtype(float_mode)
    assert history.losses.shape == history.grads.shape == (lecture.EPOCHS, len(lecture.X_DATA))
    assert history.epoch_loss.shape == history.params.shape == (lecture.EPOCHS,)
    assert at_printed_precision(history.grads[: len(GRADS)]) == at_printed_precision(GRADS)
    assert at_printed_precision(history.epoch_loss[: len(EPOCH_LOSS)]) == at_printed_precision(EPOCH_LOSS)
    assert float(jb.predict(lecture.W0, lecture.X_PREDICT)) == PREDICTION_BEFORE
    np.testing.assert_array_equal(history.epoch_loss, history.losses[:, -1])
    np.testing.assert_array_equal(w, history.params[-1])


@pytest.mark.parametrize("trainer", TRAINERS)
def test_trajectory_matches_numpy_and_the_closed_form_gradient(trainer: str) -> None:
    _, history = TRAINERS[trainer](jb.loss, *DATA, learning_rate=0.02, epochs=6)
    before = numpy_sgd(lecture.W0, lecture.X_DATA, lecture.Y_DATA, 0.02, 6)
    x, y = np.asarray(lecture.X_DATA), np.asarray(lecture.Y_DATA)
    np.testing.assert_allclose(history.grads, 2 * (before * x - y) * x, rtol=2e-5)
    np.testing.assert_allclose(history.losses, (before * x - y) ** 2, rtol=2e-5)
    np.testing.assert_allclose(history.params[:-1], before[1:, 0], rtol=2e-6)


@pytest.mark.parametrize("engine", ["jax", "tape"])
def test_scan_agrees_with_the_python_loop_to_a_few_ulp(engine: str) -> None:
    xs, ys = np.linspace(-1, 1, 7, dtype=np.float32), np.linspace(0, 3, 7, dtype=np.float32)
    for lr in (0.01, 0.3):
        _, loop = train_per_sample(jb.loss, 0.5, xs, ys, learning_rate=lr, epochs=4, engine=engine)
        _, fused = train_scan(jb.loss, 0.5, xs, ys, learning_rate=lr, epochs=4, engine=engine)
        for a, b in zip(loop, fused):
            np.testing.assert_array_max_ulp(a, b, maxulp=4)


def test_adam_and_vector_parameters() -> None:
    """Any optax factory, and parameters that are arrays: both trainers agree with each other."""
    def linear_loss(w: Any, x: Any, y: Any) -> Any:
        return (jnp.dot(w, x) - y) ** 2

    rng = np.random.default_rng(0)
    xs = rng.normal(size=(5, 2)).astype(np.float32)
    ys = xs @ np.array([1.5, -0.5], np.float32)
    adam = functools.partial(optax.adam, b1=0.8)
    runs = [trainer(linear_loss, np.zeros(2, np.float32), xs, ys, optimizer=adam,
                    learning_rate=0.1, epochs=30) for trainer in TRAINERS.values()]
    (w_loop, loop), (w_scan, fused) = runs
    assert loop.grads.shape == (30, 5, 2) and loop.params.shape == (30, 2) and w_loop.shape == (2,)
    for a, b in zip(loop, fused):
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
    train_per_sample(loss, *DATA, engine=engine, on_step=seen.append)
    assert len(seen) == 30 and len(calls) == 1
    train_per_sample(loss, *DATA, learning_rate=0.05, engine=engine)  # a new rate is data
    assert len(calls) == 1


@pytest.mark.parametrize("engine", ["jax", "tape"])
def test_scan_compiles_once_for_new_rates_and_data(engine: str) -> None:
    calls: list[int] = []
    loss = counting(calls)
    first = train_scan(loss, *DATA, engine=engine)
    assert len(calls) == 1
    second = train_scan(loss, 2.0, (0.5, 1.0, 1.5), (1.0, 1.0, 4.0), learning_rate=0.2, engine=engine)
    assert len(calls) == 1, "a new learning rate, w0 or data of the same shape recompiled"
    assert not np.array_equal(first[1].losses, second[1].losses)
    train_scan(loss, *DATA, epochs=3, engine=engine)  # a new number of epochs is a new program
    assert len(calls) == 2


@pytest.mark.parametrize("trainer", TRAINERS)
def test_on_step_reports_every_step_in_order(trainer: str) -> None:
    seen: list[Step] = []
    _, history = TRAINERS[trainer](jb.loss, *DATA, epochs=2, on_step=seen.append)
    assert [(s.epoch, s.sample) for s in seen] == [(e, i) for e in range(2) for i in range(3)]
    assert [float(s.x) for s in seen[:3]] == list(lecture.X_DATA)
    np.testing.assert_array_equal([s.grad for s in seen], history.grads.ravel())
    np.testing.assert_array_equal([s.loss for s in seen], history.losses.ravel())


def test_trajectory_is_pure_and_differentiable_in_the_learning_rate() -> None:
    """``jax.grad`` through the whole training: d(final loss)/d(lr) by finite differences."""
    with jax.enable_x64(True):  # finite differences need float64
        xs, ys = jnp.asarray(lecture.X_DATA), jnp.asarray(lecture.Y_DATA)

        def final_loss(lr: jax.Array) -> jax.Array:
            return trajectory(jb.loss, jnp.float64(lecture.W0), lr, xs, ys).epoch_loss[-1]

        lr, h = 0.01, 1e-6
        numeric = (final_loss(lr + h) - final_loss(lr - h)) / (2 * h)
        analytic = jax.jit(jax.grad(final_loss))(lr)
        assert analytic.dtype == jnp.float64
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6)


def test_sweep_agrees_with_single_runs() -> None:
    rates = np.array([[0.005, 0.01, 0.02], [0.03, 0.04, 0.05]], np.float32)
    w0s = np.array([[1.0], [-2.0]], np.float32)  # broadcast against the rates: shape (2, 3)
    w, history = sweep(jb.loss, w0s, lecture.X_DATA, lecture.Y_DATA, learning_rate=rates)
    assert w.shape == (2, 3) and history.grads.shape == (2, 3, 10, 3)
    assert history.params.shape == history.epoch_loss.shape == (2, 3, 10)
    for (i, j), rate in np.ndenumerate(rates):
        w_one, one = train_scan(jb.loss, w0s[i, 0], lecture.X_DATA, lecture.Y_DATA, learning_rate=rate)
        for a, b in zip(one, history):
            np.testing.assert_array_max_ulp(a, b[i, j], maxulp=4)
        assert w[i, j] == w_one


@pytest.mark.parametrize("record", ["epochs", "final"])
def test_a_sweep_recording_less_trains_the_same(record: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Fewer records, the same arithmetic: bitwise the full sweep's epochs and weights,
    packed into one buffer or not."""
    rates = np.array([[0.005, 0.01, 0.02], [0.03, 0.04, 1.0]], np.float32)  # the last diverges
    w0s = np.array([[1.0], [-2.0]], np.float32)
    w, full = sweep(jb.loss, w0s, lecture.X_DATA, lecture.Y_DATA, learning_rate=rates, epochs=12)
    for pack_limit in (train.PACK_LIMIT, 0):
        monkeypatch.setattr(train, "PACK_LIMIT", pack_limit)
        w_less, less = sweep(jb.loss, w0s, lecture.X_DATA, lecture.Y_DATA, learning_rate=rates,
                             epochs=12, record=record)
        np.testing.assert_array_equal(w_less, w)
        assert less.losses is None and less.grads is None
        if record == "epochs":
            np.testing.assert_array_equal(less.epoch_loss, full.epoch_loss)
            np.testing.assert_array_equal(less.params, full.params)
        else:
            assert less.epoch_loss is None and less.params.shape == (2, 3, 1)
            np.testing.assert_array_equal(less.params[..., 0], w)
    assert not np.isfinite(full.epoch_loss[1, 2]).all()  # compared as computed: inf, NaN


def test_an_unknown_record_is_named() -> None:
    with pytest.raises(ValueError, match="record must be 'steps', 'epochs' or 'final', got 'all'"):
        sweep(jb.loss, *DATA, record="all")


def test_long_histories_come_back_unpacked_and_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above PACK_LIMIT numbers the program returns its arrays as they are: same results."""
    rates = np.array([0.01, 0.03], np.float32)
    packed = train_scan(jb.loss, *DATA), sweep(jb.loss, *DATA, learning_rate=rates)
    monkeypatch.setattr(train, "PACK_LIMIT", 0)
    unpacked = train_scan(jb.loss, *DATA), sweep(jb.loss, *DATA, learning_rate=rates)
    for (w_a, a), (w_b, b) in zip(packed, unpacked):
        np.testing.assert_array_equal(w_a, w_b)
        for field_a, field_b in zip(a, b):
            assert field_a.shape == field_b.shape
            np.testing.assert_array_equal(field_a, field_b)
    with pytest.raises(DivergenceError):
        train_scan(jb.loss, *DATA, learning_rate=1.0)


def test_a_sweep_trains_the_same_on_every_kind_of_input() -> None:
    """The lecture's tuples (kept on the device), new tuples of the same values, NumPy and
    JAX arrays: bitwise the same sweep. New data of the lecture's kind is not mistaken for
    the last call's: it trains as a single run on it does."""
    rates = np.array([0.005, 0.01, 0.02], np.float32)
    w, history = sweep(jb.loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA, learning_rate=rates)
    xs, ys = list(lecture.X_DATA), list(lecture.Y_DATA)
    for w0, data, rate in [(lecture.W0, (tuple(xs), tuple(ys)), rates),
                           (np.float32(lecture.W0), (np.array(xs), np.array(ys)), list(rates)),
                           (jnp.float32(lecture.W0), (jnp.array(xs), jnp.array(ys)),
                            jnp.asarray(rates))]:
        w_again, again = sweep(jb.loss, w0, *data, learning_rate=rate)
        np.testing.assert_array_equal(w_again, w)
        for a, b in zip(again, history):
            np.testing.assert_array_equal(a, b)
    new_xs = (1.0, 2.0, 4.0)
    w_new, _ = sweep(jb.loss, lecture.W0, new_xs, lecture.Y_DATA, learning_rate=rates)
    w_one, _ = train_scan(jb.loss, lecture.W0, new_xs, lecture.Y_DATA, learning_rate=rates[1])
    assert w_new[1] != w[1]
    np.testing.assert_array_max_ulp(w_new[1], w_one, maxulp=4)


def test_sweep_keeps_diverging_runs_as_computed() -> None:
    w, history = sweep(jb.loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
                       learning_rate=np.array([0.01, 1.0]), epochs=12)
    assert np.isfinite(history.losses[0]).all() and not np.isfinite(history.losses[1]).all()


def test_the_docstring_examples_run() -> None:
    import doctest

    result = doctest.testmod(train, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0


# ---------------------------------------------------------------------------------------
# Divergence


@pytest.mark.parametrize("trainer", TRAINERS)
def test_divergence_names_the_step_and_keeps_the_history(trainer: str) -> None:
    seen: list[Step] = []
    with pytest.raises(DivergenceError) as caught:
        TRAINERS[trainer](jb.loss, *DATA, learning_rate=1.0, on_step=seen.append)
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
            trainer(jb.loss, *DATA, learning_rate=1.0)
        errors.append(caught.value)
    assert str(errors[0]) == str(errors[1])
    for a, b in zip(errors[0].history, errors[1].history):
        np.testing.assert_array_max_ulp(a, b, maxulp=4)


@pytest.mark.parametrize("trainer", TRAINERS)
def test_non_finite_data_is_named(trainer: str) -> None:
    with pytest.raises(ValueError, match=r"ys\[1\] must be finite, got nan"):
        TRAINERS[trainer](jb.loss, 1.0, (1.0, 2.0, 3.0), (2.0, float("nan"), 6.0))


# ---------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("trainer", [train_per_sample, train_scan, sweep])
@pytest.mark.parametrize("kwargs, message", [
    (dict(xs=(), ys=()), "xs and ys are empty"),
    (dict(xs=(1.0, 2.0), ys=(1.0, 2.0, 3.0)), r"len\(xs\)=2 and len\(ys\)=3"),
    (dict(xs=1.0, ys=2.0), "xs and ys must be sequences"),
    (dict(epochs=0), "epochs must be a whole number >= 1, got 0"),
    (dict(epochs=2.5), "epochs must be a whole number >= 1, got 2.5"),
    (dict(learning_rate=float("nan")), "learning_rate must be a finite number > 0, got nan"),
    (dict(learning_rate=float("inf")), "learning_rate must be a finite number > 0, got inf"),
    (dict(learning_rate=0.0), "learning_rate must be a finite number > 0, got 0.0"),
    (dict(learning_rate=-0.01), "learning_rate must be a finite number > 0, got -0.01"),
    (dict(w0=float("nan")), "w0 must be finite"),
    (dict(engine="torch"), "engine must be one of 'jax', 'tape', got 'torch'"),
])
def test_bad_input_is_a_value_error_naming_the_argument(trainer: Callable[..., Any],
                                                        kwargs: dict[str, Any], message: str) -> None:
    args = dict(w0=lecture.W0, xs=lecture.X_DATA, ys=lecture.Y_DATA) | kwargs
    w0, xs, ys = args.pop("w0"), args.pop("xs"), args.pop("ys")
    with pytest.raises(ValueError, match=message):
        trainer(jb.loss, w0, xs, ys, **args)


def test_a_sweep_names_its_first_bad_learning_rate() -> None:
    rates = np.concatenate([np.full(500, 0.01), [-2.0, np.nan]])
    with pytest.raises(ValueError, match=r"^learning_rate must be a finite number > 0, got -2.0$"):
        sweep(jb.loss, *DATA, learning_rate=rates)


def test_a_built_optimizer_is_refused_with_the_fix() -> None:
    with pytest.raises(TypeError, match=r"optimizer must be an optax factory .* optax.sgd"):
        train_scan(jb.loss, *DATA, optimizer=optax.sgd(0.01))
    with pytest.raises(ValueError, match="learning_rate must be a scalar"):
        train_scan(jb.loss, *DATA, learning_rate=np.array([0.01, 0.02]))


@pytest.mark.parametrize("argument", ["w0", "learning_rate"])
def test_a_number_that_overflows_float32_is_named(argument) -> None:
    from jaxbackprop import lecture, loss, train_scan

    settings = {"w0": lecture.W0, "learning_rate": lecture.LEARNING_RATE, argument: 1e39}
    with pytest.raises(ValueError, match=f"{argument} must be finite in the training dtype float32"):
        train_scan(loss, settings["w0"], lecture.X_DATA, lecture.Y_DATA,
                   learning_rate=settings["learning_rate"])
