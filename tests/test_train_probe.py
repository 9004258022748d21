"""Inputs a new user might try on the trainers, each checked against an independent source
(``jax.value_and_grad``, a hand-written loop)."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbackprop as jb
from jaxbackprop import lecture
from jaxbackprop.parallel import data_parallel_train, sharded_sweep
from jaxbackprop.train import (
    DivergenceError,
    make_step,
    sweep,
    train_per_sample,
    train_scan,
    trajectory,
)

SGD = optax.sgd(lecture.LEARNING_RATE)
DATA = (lecture.W0, lecture.X_DATA, lecture.Y_DATA)


def nan_gradient_at_x3(w: Any, x: Any, y: Any) -> Any:
    """The lecture's loss, plus ``sqrt(0) - 1`` at ``x = 3`` (``sqrt(1) - 1 = 0`` elsewhere):
    every loss is finite, and the gradient is NaN at ``x = 3`` only (``sqrt'(0) * 0``)."""
    return (w * x - y) ** 2 + jnp.sqrt(jnp.where(x == 3.0, w - w, 1.0)) - 1.0


def hand_loop(loss: Any, optimizer: optax.GradientTransformation) -> tuple[Any, Any, Any]:
    """One epoch of the lecture's data, a step per sample: the losses, the gradients and the
    final weight, from ``jax.value_and_grad`` and the optimizer."""
    w = jnp.float32(lecture.W0)
    state, losses, grads = optimizer.init(w), [], []
    for x, y in zip(lecture.X_DATA, lecture.Y_DATA, strict=True):
        value, grad = jax.value_and_grad(loss)(w, x, y)
        updates, state = optimizer.update(grad, state, w)
        w = optax.apply_updates(w, updates)
        losses.append(float(value))
        grads.append(float(grad))
    return np.array(losses, np.float32), np.array(grads, np.float32), w


def one_sample_batches(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    return data_parallel_train(*args, batch_size=1, **kwargs)


@pytest.mark.parametrize("record", ["steps", "epochs", "final"])
@pytest.mark.parametrize("trainer", [train_per_sample, train_scan, one_sample_batches])
def test_a_gradient_that_becomes_nan_at_the_last_step_is_a_divergence(
        trainer: Callable[..., Any], record: str) -> None:
    """The last sample's gradient is NaN while its loss is finite, so the final weight is
    NaN and no loss shows it: a DivergenceError naming the parameters, not a NaN returned
    as the result, at the same step from every trainer that records the steps."""
    losses, grads, w = hand_loop(nan_gradient_at_x3, SGD)
    assert np.isfinite(losses).all() and np.isnan(w)
    assert np.isnan(grads).tolist() == [False, False, True]
    if trainer is one_sample_batches and record != "steps":
        pytest.skip("data_parallel_train records every step")
    settings = {} if trainer is one_sample_batches else {"record": record}
    with pytest.raises(DivergenceError, match="the parameters became inf or NaN") as caught:
        trainer(nan_gradient_at_x3, lecture.W0, lecture.X_DATA, lecture.Y_DATA, optimizer=SGD,
                epochs=1, **settings)
    error = caught.value
    assert error.quantity == "parameters"
    if record == "steps" or trainer is train_per_sample:  # every step seen
        assert (error.epoch, error.sample, error.loss) == (0, 2, losses[2])
        assert str(error) == ("training diverged: the parameters became inf or NaN at epoch 0, "
                              "sample 2 (x=3, y=6); try a smaller learning rate")
    elif record == "epochs":
        assert (error.epoch, error.sample, error.loss) == (0, None, losses[2])
    if record == "steps":
        np.testing.assert_allclose(np.ravel(error.history.losses), losses, rtol=1e-6)
    assert pickle.loads(pickle.dumps(error)).quantity == "parameters"


def test_an_optimizer_that_skips_a_nan_gradient_is_no_divergence() -> None:
    """optax.apply_if_finite drops the NaN update: the weight stays finite, as in a hand loop."""
    optimizer = optax.apply_if_finite(SGD, max_consecutive_errors=5)
    losses, _, w = hand_loop(nan_gradient_at_x3, optimizer)
    assert np.isfinite(w)
    for trainer in (train_per_sample, train_scan, one_sample_batches):
        final, history = trainer(nan_gradient_at_x3, lecture.W0, lecture.X_DATA,
                                 lecture.Y_DATA, optimizer=optimizer, epochs=1)
        np.testing.assert_allclose(np.asarray(final), w, rtol=1e-6)
        np.testing.assert_allclose(np.ravel(history.losses), losses, rtol=1e-6)
        assert np.isnan(np.asarray(history.grads)[0, 2])


def two_weights(p: dict[str, Any], x: Any, y: Any) -> Any:
    return (p["a"] * x + p["b"] * x - y) ** 2


@pytest.mark.parametrize("trainer", [train_per_sample, train_scan, sweep, one_sample_batches])
def test_mixed_leaf_dtypes_train_in_their_common_dtype(trainer: Callable[..., Any]) -> None:
    """A float16 leaf beside a float32 one: the training runs in float32, the common dtype
    (as the module says), every leaf of it. The two weights start equal and get the same
    gradient, so they stay equal; a hand loop in float32 gives their values."""
    w0 = {"a": np.float16(0.5), "b": np.float32(0.5)}
    reference = {"a": jnp.float32(0.5), "b": jnp.float32(0.5)}
    state = SGD.init(reference)
    for _ in range(3):
        for x, y in zip(lecture.X_DATA, lecture.Y_DATA, strict=True):
            updates, state = SGD.update(jax.grad(two_weights)(reference, x, y), state, reference)
            reference = optax.apply_updates(reference, updates)
    w, history = trainer(two_weights, w0, lecture.X_DATA, lecture.Y_DATA, optimizer=SGD,
                         epochs=3)
    for tree in (w, history.params, history.grads):
        assert {np.dtype(np.asarray(leaf).dtype) for leaf in jax.tree.leaves(tree)} == {
            np.dtype(np.float32)}
    np.testing.assert_array_equal(np.asarray(w["a"]), np.asarray(w["b"]))
    np.testing.assert_allclose(np.asarray(w["a"]), reference["a"], rtol=1e-6)


@pytest.mark.parametrize("settings, message", [
    (dict(record="Steps"), "record must be one of 'steps', 'epochs', 'final', got 'Steps'"),
    (dict(engine="torch"), "engine must be one of 'jax', 'tape', got 'torch'"),
    (dict(epochs=-1), "epochs must be a whole number >= 0, got -1"),
    (dict(epochs=2.0), "epochs must be a whole number >= 0, got 2.0"),
])
def test_trajectory_names_a_bad_setting(settings: dict[str, Any], message: str) -> None:
    """trajectory checks no data, but its static settings it does: a misspelt record was
    silently taken as record='epochs', an unknown engine was a KeyError, epochs=-1 an
    MLIRError from deep in XLA."""
    xs, ys = jnp.asarray(lecture.X_DATA), jnp.asarray(lecture.Y_DATA)
    with pytest.raises(ValueError, match=message):
        trajectory(jb.loss, 1.0, xs, ys, optimizer=SGD, **settings)


def test_make_step_names_an_unknown_engine() -> None:
    with pytest.raises(ValueError, match="engine must be one of 'jax', 'tape', got 'torch'"):
        make_step(jb.loss, SGD, engine="torch")  # pyright: ignore[reportArgumentType]


def test_trajectory_still_composes_with_jit_vmap_and_grad() -> None:
    """The checks are on static settings only: jit, vmap and grad still trace through, and
    grad of the final weight in w0 is the product of the steps' (1 - 2 lr x^2)."""
    xs, ys = jnp.asarray(lecture.X_DATA), jnp.asarray(lecture.Y_DATA)

    def final(w0: Any) -> Any:
        return trajectory(jb.loss, w0, xs, ys, optimizer=SGD, epochs=2, record="final").params[0]

    expected = np.prod([1 - 2 * lecture.LEARNING_RATE * x**2 for x in lecture.X_DATA]) ** 2
    np.testing.assert_allclose(jax.jit(jax.grad(final))(1.0), expected, rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(final)(jnp.array([1.0, 2.0]))[1], 2.0)


def squared(w: Any, x: Any, y: Any) -> Any:
    return (w * x - y) ** 2


@pytest.mark.parametrize("loss, w0, message", [
    (squared, np.ones(3, np.float32), r"got an array of shape \(3,\)"),
    (squared, np.ones(1, np.float32), r"got an array of shape \(1,\)"),
    (lambda w, x, y: (squared(w, x, y), 0.0), 1.0, "got tuple"),
    (lambda w, x, y: None, 1.0, "got None"),
    (lambda w, x, y: jnp.asarray(squared(w, x, y) + 0j), 1.0, "got dtype complex64"),
    (lambda w, x, y: jnp.asarray(squared(w, x, y)).astype(jnp.int32), 1.0, "got dtype int32"),
])
@pytest.mark.parametrize("engine", ["jax", "tape"])
@pytest.mark.parametrize("trainer", [train_per_sample, train_scan])
def test_a_loss_that_does_not_return_a_real_scalar_is_named(
        trainer: Callable[..., Any], engine: str, loss: Any, w0: Any, message: str) -> None:
    """JAX's own errors ('Gradient only defined for scalar-output functions', 'grad requires
    real-valued outputs') did not name the argument; the tape's named ``f``."""
    if engine == "tape" and "dtype" in message:
        pytest.skip("jnp.asarray of a tape value: the tape refuses it itself")
    with pytest.raises(TypeError, match="loss must return a real scalar .*, " + message):
        trainer(loss, w0, lecture.X_DATA, lecture.Y_DATA, optimizer=SGD, epochs=1,
                engine=engine)


def test_a_sweep_names_a_loss_that_is_not_scalar_for_one_run() -> None:
    """A sweep trains one number per leaf and run: a loss of a feature vector, w . x, is
    not a scalar for one run's w, and the error says so (it was JAX's, naming nothing)."""
    xs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
    with pytest.raises(TypeError, match=r"loss must return a real scalar .*, got an array of "
                                        r"shape \(2,\)"):
        sweep(lambda w, x, y: (jnp.dot(w, x) - y) ** 2, np.zeros(2, np.float32), xs,
              np.ones(3, np.float32), optimizer=SGD)


@pytest.mark.parametrize("trainer", [sharded_sweep, one_sample_batches])
@pytest.mark.parametrize("mesh", ["runs", ("data",), jax.devices()])
def test_a_mesh_that_is_not_a_mesh_is_named(trainer: Callable[..., Any], mesh: Any) -> None:
    """mesh='runs' was an AttributeError: 'str' object has no attribute 'axis_names'."""
    with pytest.raises(TypeError, match=r"mesh must be a jax.sharding.Mesh such as "
                                        r"jaxbackprop.parallel.make_mesh\('(runs|data)'\), got "):
        trainer(jb.loss, *DATA, optimizer=SGD, mesh=mesh)


def line(p: dict[str, Any], x: Any, y: Any) -> Any:
    return (p["w"] * x + p["b"] - y) ** 2


@pytest.mark.parametrize("trainer", [sweep, sharded_sweep])
def test_runs_that_do_not_broadcast_are_named(trainer: Callable[..., Any]) -> None:
    """The runs' shape is the broadcast of w0's leaves and the rates: when they do not
    broadcast, the error names them (it was NumPy's 'shape mismatch: ... arg 0 ...')."""
    injected = optax.inject_hyperparams(optax.sgd)(learning_rate=0.01)
    with pytest.raises(ValueError, match=r"w0's leaves and learning_rate must broadcast together "
                                         r"to the runs' shape, got shapes w0=\(2,\) and "
                                         r"learning_rate=\(3,\)"):
        trainer(jb.loss, np.ones(2), lecture.X_DATA, lecture.Y_DATA, optimizer=injected,
                learning_rate=[0.01, 0.02, 0.03])
    with pytest.raises(ValueError, match=r"got shapes w0\['b'\]=\(3,\) and w0\['w'\]=\(2,\)"):
        trainer(line, {"w": np.ones(2), "b": np.zeros(3)}, lecture.X_DATA, lecture.Y_DATA,
                optimizer=SGD)


@pytest.mark.parametrize("engine", ["jax", "tape"])
@pytest.mark.parametrize("trainer", [train_per_sample, train_scan, sweep, sharded_sweep,
                                     one_sample_batches])
def test_a_rate_that_underflows_is_an_error_when_the_first_gradient_is_0(
        trainer: Callable[..., Any], engine: str) -> None:
    """x = 0 first: that sample's gradient is exactly 0, the next ones' are not, and
    optax.sgd(1e-46) is 0 in float32, so the weight never moves. The check asked only the
    first sample, found a gradient of 0, and let the no-op through."""
    xs, ys = (0.0, 2.0, 3.0), (0.0, 4.0, 6.0)
    grads = [float(jax.grad(squared)(1.0, x, y)) for x, y in zip(xs, ys, strict=True)]
    assert grads == [0.0, -8.0, -18.0]
    with pytest.raises(ValueError, match="the optimizer's first update is exactly 0 while the "
                                         "gradient is not"):
        trainer(squared, 1.0, xs, ys, optimizer=optax.sgd(1e-46), epochs=2, engine=engine)


@pytest.mark.parametrize("trainer", [train_per_sample, train_scan])
def test_on_step_sees_the_same_steps_before_the_parameters_diverge(
        trainer: Callable[..., Any]) -> None:
    """on_step is called after each step that did not diverge: not after the last one here,
    whose NaN gradient made the parameters NaN (train_scan's replay called it there)."""
    seen: list[Any] = []
    with pytest.raises(DivergenceError):
        trainer(nan_gradient_at_x3, lecture.W0, lecture.X_DATA, lecture.Y_DATA, optimizer=SGD,
                epochs=1, on_step=seen.append)
    assert [(step.epoch, step.sample) for step in seen] == [(0, 0), (0, 1)]


def test_an_injected_rate_is_shown_as_written() -> None:
    """The rate an inject_hyperparams optimizer keeps is float32: formatted with f"{x}" it
    read 'got -0.009999999776482582' for a rate written -0.01."""
    optimizer = optax.inject_hyperparams(optax.sgd)(learning_rate=-0.01)
    with pytest.raises(ValueError, match=r"learning_rate must be a finite number > 0, "
                                         r"got -0.01$"):
        train_scan(jb.loss, *DATA, optimizer=optimizer)


@pytest.mark.parametrize("trainer", [train_per_sample, train_scan, sweep, sharded_sweep,
                                     one_sample_batches])
def test_an_update_that_is_0_in_the_training_dtype_is_an_error(
        trainer: Callable[..., Any]) -> None:
    """float16 parameters, a float32 rate: optax computes -lr * g in float32 (2e-8, not 0),
    and apply_updates casts it to float16, where it is 0, so the weight never moves. The
    check compared the update in float32 and let the no-op through."""
    optimizer = optax.sgd(np.float32(1e-8))
    grad = jax.grad(squared)(np.float16(1.0), np.float16(1.0), np.float16(2.0))
    updates, _ = optimizer.update(grad, optimizer.init(np.float16(1.0)))
    assert grad == -2 and updates != 0 and np.float16(updates) == 0
    with pytest.raises(ValueError, match="the optimizer's first update is exactly 0 while the "
                                         "gradient is not: .* float16"):
        trainer(squared, np.float16(1.0), lecture.X_DATA, lecture.Y_DATA, optimizer=optimizer,
                epochs=1)


@pytest.mark.parametrize("trainer", [train_per_sample, train_scan, sweep, one_sample_batches])
def test_ragged_samples_are_named(trainer: Callable[..., Any]) -> None:
    """Samples of different shapes were NumPy's 'setting an array element with a sequence.
    The requested array has an inhomogeneous shape', naming neither argument."""
    with pytest.raises(ValueError, match=r"ys must be samples of one shape \(an array\), got "
                                         r"\[\[2.0\], \[4.0, 4.0\]\]"):
        trainer(jb.loss, 1.0, [1.0, 2.0], [[2.0], [4.0, 4.0]], optimizer=SGD)
