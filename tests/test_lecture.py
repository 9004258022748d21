"""The lecture's worked sections: every number the notes print, derived by JAX."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from jaxbackprop import lecture


def test_chain_rule_product_equals_jax_grad_of_the_composite() -> None:
    c = lecture.chain_rule(1.5)
    # Closed forms: y = x^2, z = sin y, dy/dx = 2x, dz/dy = cos y.
    assert float(c.y) == pytest.approx(2.25)
    assert float(c.dy_dx) == pytest.approx(3.0)
    assert float(c.dz_dy) == pytest.approx(math.cos(2.25), rel=1e-6)
    assert float(c.dz_dx_chain) == pytest.approx(math.cos(2.25) * 3.0, rel=1e-6)
    assert float(c.dz_dx_jax) == pytest.approx(float(c.dz_dx_chain), rel=1e-6)


def test_chain_rule_takes_any_two_functions() -> None:
    c = lecture.chain_rule(0.5, a=lambda x: 3.0 * x + 1.0, b=jnp.exp)
    assert float(c.dz_dx_chain) == pytest.approx(3.0 * math.exp(2.5), rel=1e-6)
    assert float(c.dz_dx_jax) == pytest.approx(float(c.dz_dx_chain), rel=1e-6)


def test_multiply_node_local_gradients_are_the_other_input() -> None:
    g = lecture.multiply_node(2.0, 3.0)
    op = g.operation("z")
    grads = {lg.source: float(lg.value) for lg in op.local_gradients}
    assert grads == {"x": 3.0, "y": 2.0}  # dz/dx = y, dz/dy = x
    assert float(g.value("z").value) == 6.0


def test_linear_regression_three_steps_first_note() -> None:
    g = lecture.linear_regression(*lecture.EXAMPLE_FIRST_NOTE)  # x=1, y=2, w=1
    forward = {v.name: float(v.value) for v in g.values}
    assert forward == {"w": 1.0, "x": 1.0, "y": 2.0, "y_hat": 1.0, "s": -1.0, "L": 1.0}
    local = {(lg.target, lg.source): (lg.formula, float(lg.value))
             for op in g.operations for lg in op.local_gradients}
    assert local[("L", "s")] == ("2s", -2.0)
    assert local[("s", "y_hat")] == ("1", 1.0)
    assert local[("y_hat", "w")] == ("x", 1.0)
    adjoints = {v.name: float(v.adjoint) for v in g.values}
    assert adjoints["L"] == 1.0
    assert adjoints["s"] == -2.0 and adjoints["y_hat"] == -2.0 and adjoints["w"] == -2.0
    assert g.value("x").role == "data" and g.value("w").role == "parameter"


def test_linear_regression_second_note_is_minus_eight() -> None:
    g = lecture.linear_regression(*lecture.EXAMPLE_SECOND_NOTE)  # x=2, y=4, w=1
    assert float(g.value("s").value) == -2.0
    assert float(g.value("w").adjoint) == -8.0  # 2 s x


@pytest.mark.parametrize("x, y, w", [(0.5, -1.0, 2.0), (3.0, 6.0, 1.0), (-2.0, 1.5, 0.25)])
def test_backward_pass_matches_closed_form_anywhere(x: float, y: float, w: float) -> None:
    g = lecture.linear_regression(x, y, w)
    s = w * x - y
    np.testing.assert_allclose(float(g.value("w").adjoint), 2 * s * x, rtol=1e-6)
    np.testing.assert_allclose(float(g.value("x").adjoint), 2 * s * w, rtol=1e-6)
    np.testing.assert_allclose(float(g.value("y").adjoint), -2 * s, rtol=1e-6)


def test_lecture_constants_are_the_notes() -> None:
    assert lecture.X_DATA == (1.0, 2.0, 3.0) and lecture.Y_DATA == (2.0, 4.0, 6.0)
    assert (lecture.W0, lecture.LEARNING_RATE, lecture.EPOCHS) == (1.0, 0.01, 10)


@pytest.mark.parametrize("build, name", [
    (lambda v: lecture.chain_rule(v), "x"),
    (lambda v: lecture.multiply_node(y=v), "y"),
    (lambda v: lecture.linear_regression(w=v), "w"),
])
def test_the_sections_refuse_what_is_not_one_real_number(build, name) -> None:
    # jnp.asarray would parse the string "1" as 1.0; each node's jax.grad takes one number
    for bad, said in (("1", "got '1'"), (None, "got None"), (1 + 2j, r"got \(1\+2j\)")):
        with pytest.raises(TypeError, match=f"{name} must be a real number, {said}"):
            build(bad)
    with pytest.raises(TypeError, match=rf"{name} must be one real number, got an array of "
                                        r"shape \(2,\)"):
        build([1.0, 2.0])
    # integers, bools and NumPy or JAX scalars are numbers: promoted, as jnp does
    for good in (3, True, np.float64(2.0), jnp.float32(2.0)):
        build(good)
