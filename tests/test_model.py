"""The model and loss: the lecture's numbers, exactly, on every path and dtype."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxbackprop as jb
from jaxbackprop import lecture

finite = st.floats(-10.0, 10.0, allow_nan=False, width=32)


def test_predict_before_training_is_four() -> None:
    # "Predict (before training 4 tensor(4.)"
    assert float(jb.predict(lecture.W0, lecture.X_PREDICT)) == 4.0


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_first_note_numbers(jit: bool, float_mode: str) -> None:
    x, y, w = lecture.EXAMPLE_FIRST_NOTE  # x=1, y=2, w=1
    loss = jax.jit(jb.loss) if jit else jb.loss
    grad = jax.jit(jax.grad(jb.loss)) if jit else jax.grad(jb.loss)
    value, dw = loss(w, x, y), grad(w, x, y)
    assert value.dtype == jnp.dtype(float_mode) and dw.dtype == jnp.dtype(float_mode)
    assert float(value) == 1.0  # tensor(1., grad_fn=<PowBackward0>)
    assert float(dw) == -2.0  # tensor(-2.)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_second_note_gradient_is_minus_eight(jit: bool, float_mode: str) -> None:
    x, y, w = lecture.EXAMPLE_SECOND_NOTE  # x=2, y=4, w=1
    grad = jax.jit(jax.grad(jb.loss)) if jit else jax.grad(jb.loss)
    assert float(grad(w, x, y)) == -8.0
    assert float(jb.loss_grad(w, x, y)) == -8.0  # 2 s x


def test_inputs_of_every_kind_give_the_same_number() -> None:
    for w, x, y in [(1.0, 2.0, 4.0), (np.float32(1), np.array(2.0), np.array(4.0)),
                    (jnp.array(1.0), jnp.array(2.0), jnp.array(4.0))]:
        assert float(jb.loss(w, x, y)) == 4.0
        assert float(jax.grad(jb.loss)(w, x, y)) == -8.0


def test_integer_inputs_are_promoted_to_float() -> None:
    value = jb.loss(1, 1, 2)
    assert value.dtype == jnp.float32 and float(value) == 1.0
    loss, dw = jb.loss_and_grad(1, 1, 2)
    assert (float(loss), float(dw)) == (1.0, -2.0)
    assert float(jb.loss_grad(1, 2, 4)) == -8.0
    # jax.grad itself checks its inputs before calling loss: documented, not hidden.
    with pytest.raises(TypeError, match="grad requires real"):
        jax.grad(jb.loss)(1, 1, 2)


@settings(max_examples=50, deadline=None)
@given(w=finite, x=finite, y=finite)
def test_jax_grad_matches_closed_form(w: float, x: float, y: float) -> None:
    np.testing.assert_allclose(jax.grad(jb.loss)(w, x, y), jb.loss_grad(w, x, y),
                               rtol=1e-5, atol=1e-4)


def test_mean_loss_is_the_mean_of_per_sample_losses() -> None:
    xs, ys = jnp.array(lecture.X_DATA), jnp.array(lecture.Y_DATA)
    # w=1: residuals -1, -2, -3, so the mean of squares is 14/3.
    np.testing.assert_allclose(jb.mean_loss(1.0, xs, ys), 14.0 / 3.0, rtol=1e-6)
    # d/dw mean (w x - y)^2 = mean 2 (w x - y) x = (2*(-1) + 2*(-2)*2 + 2*(-3)*3) / 3 = -28/3
    np.testing.assert_allclose(jax.grad(jb.mean_loss)(1.0, xs, ys), -28.0 / 3.0, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.grad(jb.mean_loss))(1.0, xs, ys), -28.0 / 3.0, rtol=1e-6)


def test_mean_loss_rejects_mismatched_shapes_naming_both() -> None:
    with pytest.raises(ValueError, match=r"xs.shape=\(3,\).*ys.shape=\(2,\)"):
        jb.mean_loss(1.0, jnp.ones(3), jnp.ones(2))
    with pytest.raises(ValueError, match="at least one axis"):
        jb.mean_loss(1.0, 1.0, 2.0)


def test_functions_compose_with_vmap_and_second_derivatives() -> None:
    xs = jnp.array(lecture.X_DATA)
    ys = jnp.array(lecture.Y_DATA)
    per_sample = jax.vmap(jax.grad(jb.loss), in_axes=(None, 0, 0))(1.0, xs, ys)
    np.testing.assert_allclose(per_sample, jb.loss_grad(1.0, xs, ys))  # -2, -8, -18
    np.testing.assert_allclose(per_sample, [-2.0, -8.0, -18.0])
    # d2L/dw2 = 2 x^2
    np.testing.assert_allclose(jax.grad(jax.grad(jb.loss))(1.0, 3.0, 6.0), 18.0)
