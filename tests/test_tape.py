"""The hand-written tape: the lecture's numbers, its API beside JAX's, nesting, JAX
transformations of it, the walkthrough, and its errors."""

from __future__ import annotations

import gc
import operator
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxbackprop as jb
import jaxbackprop.numpy as jbnp
from jaxbackprop import lecture, tape
from jaxbackprop.tape.core import FUNCTIONS, Primitive, Tape, Var, bind


@pytest.fixture
def x64() -> Iterator[None]:
    with jax.enable_x64(True):
        yield


# ---------------------------------------------------------------------------------------
# The lecture's numbers


@pytest.mark.parametrize("example, expected", [
    (lecture.EXAMPLE_FIRST_NOTE, -2.0),  # x=1, y=2, w=1: "tensor(-2.)"
    (lecture.EXAMPLE_SECOND_NOTE, -8.0),  # x=2, y=4, w=1: dloss/dw = 2sx = -8
])
def test_lecture_gradients_exactly(example: tuple[float, float, float], expected: float) -> None:
    x, y, w = example
    assert float(tape.grad(jb.loss)(w, x, y)) == expected
    assert float(jax.grad(jb.loss)(w, x, y)) == expected
    assert float(jb.loss_grad(w, x, y)) == expected
    value, dw = tape.value_and_grad(jb.loss)(w, x, y)
    assert (float(value), float(dw)) == (float(jb.loss(w, x, y)), expected)


@settings(max_examples=30, deadline=None)
@given(st.tuples(*[st.floats(-100.0, 100.0, allow_nan=False)] * 3))
def test_tape_equals_jax_grad_equals_closed_form(wxy: tuple[float, float, float]) -> None:
    w, x, y = wxy
    with jax.enable_x64(True):
        closed_form = 2.0 * (w * x - y) * x  # dL/dw = 2 s x
        for dw in (tape.grad(jb.loss)(w, x, y), jax.grad(jb.loss)(w, x, y), jb.loss_grad(w, x, y)):
            np.testing.assert_allclose(float(dw), closed_form, rtol=1e-12, atol=1e-12)
        # every argument at once, the tape against jax.grad
        got = tape.grad(jb.loss, argnums=(0, 1, 2))(w, x, y)
        want = jax.grad(jb.loss, argnums=(0, 1, 2))(w, x, y)
        np.testing.assert_allclose([float(g) for g in got], [float(g) for g in want],
                                   rtol=1e-12, atol=1e-12)


def test_the_tape_keeps_the_inputs_kind(x64: None) -> None:
    def f(w: Any, x: Any) -> Any:
        return (w * x - 2.0) ** 2

    assert type(tape.grad(f)(1.0, 1.0)) is float and tape.grad(f)(1.0, 1.0) == -2.0
    g = tape.grad(f)(np.float32(1.0), np.float32(1.0))
    assert g.dtype == np.float32 and float(g) == -2.0
    g = tape.grad(f)(jnp.array(1.0, jnp.float32), 1.0)
    assert isinstance(g, jax.Array) and g.dtype == jnp.float32 and float(g) == -2.0
    # a float64 constant promotes the computation, but the gradient keeps the input's
    # dtype, as jax.grad's does
    g = tape.grad(lambda x: jbnp.sum(x * np.full(3, 2.0)))(np.ones(3, np.float32))
    assert g.dtype == np.float32 and g.tolist() == [2.0, 2.0, 2.0]


# ---------------------------------------------------------------------------------------
# The API, beside JAX's


def test_argnums_and_value_and_grad_mirror_jax(x64: None) -> None:
    def f(a: Any, b: Any, c: Any) -> Any:
        return jbnp.sum(jbnp.tanh(a * b) + c**2)

    args = (np.linspace(-1.0, 1.0, 4), 0.3, np.arange(4.0))
    for argnums in (0, 1, 2, (0, 2), (2, 0, 1), -1):
        got = tape.value_and_grad(f, argnums)(*args)
        want = jax.value_and_grad(f, argnums)(*args)
        np.testing.assert_allclose(float(got[0]), float(want[0]), rtol=1e-12)
        pairs = (x if isinstance(argnums, tuple) else (x,) for x in (got[1], want[1]))
        for g, w in zip(*pairs, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    # keyword arguments pass through undifferentiated, as in jax.grad
    assert tape.grad(lambda x, *, k: k * x**2)(3.0, k=2.0) == 12.0


def test_vjp_of_a_vector_function(x64: None) -> None:
    def f(x: Any, y: Any) -> Any:
        return jbnp.sin(x) * y

    x, y, ct = np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, 3.0]), np.array([1.0, -1.0, 0.5])
    out, pullback = tape.vjp(f, x, y)
    np.testing.assert_allclose(out, np.sin(x) * y)
    x_bar, y_bar = pullback(ct)
    np.testing.assert_allclose(x_bar, ct * np.cos(x) * y, rtol=1e-14)  # closed form
    np.testing.assert_allclose(y_bar, ct * np.sin(x), rtol=1e-14)
    # pytrees of inputs keep their structure
    out, pullback = tape.vjp(lambda p: p["w"] * p["b"][0], {"w": 3.0, "b": [2.0]})
    assert out == 6.0 and pullback(1.0) == ({"w": 2.0, "b": [3.0]},)


def test_numpy_functions_record_on_tape_values() -> None:
    def f(x: Any) -> Any:
        return np.sum(np.exp(x) * np.where(x > 0, x, 0.0))  # NumPy's own functions

    x = np.array([-1.0, 1.0, 2.0])
    slope = [0.0, 2 * np.e, 3 * np.e**2]  # e^x (1 + x) where x > 0
    np.testing.assert_allclose(tape.grad(f)(x), slope, rtol=1e-14)
    assert tape.grad(lambda x: np.float32(2.0) * x + np.ones(()) * x)(1.0) == 3.0


def test_fan_out_and_fan_in_accumulate() -> None:
    # fan-out: x is used three times; d/dx (x*x + x) = 2x + 1
    assert tape.grad(lambda x: x * x + x)(3.0) == 7.0
    # fan-in and a diamond: u = x*y feeds two branches that meet again
    def f(x: Any, y: Any) -> Any:
        u = x * y
        return jbnp.sin(u) + u * u

    x, y = 0.4, -1.5
    u = x * y
    du = np.cos(u) + 2 * u
    np.testing.assert_allclose(tape.grad(f, (0, 1))(x, y), (du * y, du * x), rtol=1e-14)


def test_a_constants_rule_is_never_called() -> None:
    def never(*args: Any) -> Any:
        raise AssertionError("the rule of a constant input was called")

    scale_p = Primitive("scale", operator.mul, lambda o, a, b: (b, a),
                        partials=(lambda out, a, b: b, never))

    def scale(a: Any, b: Any) -> Any:
        return bind(scale_p, a, b)

    assert tape.grad(lambda x: scale(x, 3.0) + scale(x, np.float64(2.0)))(1.0) == 5.0
    with pytest.raises(AssertionError, match="constant input was called"):
        tape.grad(lambda x, y: scale(x, y), argnums=(0, 1))(1.0, 2.0)  # y a variable now


def test_an_unused_input_gets_zeros_of_its_shape_and_dtype() -> None:
    def f(x: Any, unused: Any) -> Any:
        return x * 2.0

    for unused in (1.0, np.ones((2, 3), np.float32), jnp.ones(3, jnp.float32),
                   np.ones(2, np.float64)):
        _, zero = tape.grad(f, (0, 1))(1.0, unused)
        assert np.shape(zero) == np.shape(unused) and type(zero) is type(unused)
        assert getattr(zero, "dtype", None) == getattr(unused, "dtype", None)
        assert not np.any(zero)
    # an output that depends on nothing: every gradient is zero
    assert tape.grad(lambda x: 3.0)(1.0) == 0.0


def test_calls_are_idempotent_and_leave_nothing_recorded() -> None:
    def f(w: Any) -> Any:
        return jbnp.sum(jbnp.tanh(w) ** 2)

    w = np.linspace(-1.0, 1.0, 5)
    first = tape.grad(f)(w)
    np.testing.assert_array_equal(tape.grad(f)(w), first)  # no .grad to zero between calls
    out, pullback = tape.vjp(f, w)
    np.testing.assert_array_equal(pullback(1.0)[0], pullback(1.0)[0])  # the pullback too
    del pullback
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, (Tape, Var))]


# ---------------------------------------------------------------------------------------
# Nested tapes: higher order without perturbation confusion


def test_nested_tapes_are_kept_apart() -> None:
    # The inner derivative d(x + y)/dy is 1 whatever x is; x * 1 has derivative 1 in x.
    # A tape that confused the two x's would give 2.
    assert tape.grad(lambda x: x * tape.grad(lambda y: x + y)(1.0))(2.0) == 1.0
    assert tape.grad(lambda x: tape.grad(lambda y: x * y)(3.0))(2.0) == 1.0


def test_second_and_third_derivatives_through_the_tape(x64: None) -> None:
    # d2L/dw2 = 2 x**2 for the lecture's loss
    for x in (1.0, 2.0, -3.0):
        assert float(tape.grad(tape.grad(jb.loss))(1.0, x, 2.0)) == 2 * x**2
    assert tape.grad(tape.grad(lambda x: x**3))(2.0) == 12.0
    assert tape.grad(tape.grad(tape.grad(lambda x: x**4)))(2.0) == 48.0
    for f, jf in ((jbnp.sin, jnp.sin), (jbnp.tanh, jnp.tanh), (jbnp.exp, jnp.exp),
                  (jbnp.sqrt, jnp.sqrt), (lambda x: 1.0 / x, lambda x: 1.0 / x),
                  (lambda x: x**1.5, lambda x: x**1.5)):
        np.testing.assert_allclose(tape.grad(tape.grad(f))(0.7),
                                   float(jax.grad(jax.grad(jf))(0.7)), rtol=1e-12)
    # a Hessian-vector product of an array function, against jax
    m = np.array([[1.0, -0.5, 0.2], [0.3, 0.8, -1.0]])

    def g(x: Any) -> Any:
        return jbnp.sum(jbnp.tanh(m @ x) @ (m * x))

    x, v = np.array([0.3, -0.2, 0.9]), np.array([1.0, 2.0, -1.0])
    hvp = tape.grad(lambda x: jbnp.sum(tape.grad(g)(x) * v))(x)
    want = jax.grad(lambda x: jnp.sum(jax.grad(g)(x) * v))(jnp.asarray(x))
    np.testing.assert_allclose(hvp, want, rtol=1e-12)


# ---------------------------------------------------------------------------------------
# JAX transformations of the tape


def test_jit_of_the_tape() -> None:
    x, y, w = lecture.EXAMPLE_FIRST_NOTE
    traces = []

    def loss(w: Any, x: Any, y: Any) -> Any:
        traces.append(1)
        return jb.loss(w, x, y)

    grad = jax.jit(tape.grad(loss))
    assert float(grad(w, x, y)) == -2.0
    assert float(grad(1.0, 2.0, 4.0)) == -8.0
    assert len(traces) == 1  # traced once, then the compiled program runs


def test_vmap_of_the_tape() -> None:
    xs, ys = jnp.asarray(lecture.X_DATA), jnp.asarray(lecture.Y_DATA)
    ws = jnp.array([0.0, 1.0, 2.0])
    got = jax.vmap(tape.grad(jb.loss))(ws, xs, ys)
    np.testing.assert_allclose(got, jb.loss_grad(ws, xs, ys), rtol=1e-6)  # 2 s x
    np.testing.assert_allclose(jax.vmap(tape.grad(jb.loss), (None, 0, 0))(1.0, xs, ys),
                               jax.vmap(jax.grad(jb.loss), (None, 0, 0))(1.0, xs, ys))


def test_jax_grad_of_the_tape_gives_the_second_derivative() -> None:
    for x in (1.0, 2.0, 3.0):
        assert float(jax.grad(tape.grad(jb.loss))(1.0, x, 2.0)) == 2 * x**2  # d2L/dw2
        assert float(jax.jit(jax.grad(tape.grad(jb.loss)))(0.5, x, 2.0)) == 2 * x**2


# ---------------------------------------------------------------------------------------
# The walkthrough: the lecture's three steps as data


def test_walkthrough_numbers_for_the_lecture() -> None:
    x, y, w = lecture.EXAMPLE_FIRST_NOTE
    g = tape.walkthrough(jb.loss, w, x, y)
    # 1. forward: y_hat = 1, s = -1, L = 1
    assert [(v.name, float(v.value)) for v in g.values] == [
        ("w", 1.0), ("x", 1.0), ("y", 2.0), ("y_hat", 1.0), ("s", -1.0), ("L", 1.0)]
    assert [v.role for v in g.values[:3]] == ["parameter", "data", "data"]
    # 2. local gradients: dL/ds = 2s = -2, ds/dy_hat = 1, dy_hat/dw = x = 1
    local = {(e.target, e.source): (e.formula, float(e.value))
             for op in g.operations for e in op.local_gradients}
    assert local[("L", "s")] == ("2s", -2.0)
    assert local[("s", "y_hat")] == ("1", 1.0)
    assert local[("y_hat", "w")] == ("x", 1.0)
    # 3. backward: dL/ds = dL/dy_hat = dL/dw = -2
    assert [float(g.value(n).adjoint) for n in ("s", "y_hat", "w")] == [-2.0, -2.0, -2.0]
    assert g.output == "L" and float(g.value("L").adjoint) == 1.0
    table = g.table()
    assert "dL/dw" in table and "= -2" in table


@pytest.mark.parametrize("example", [lecture.EXAMPLE_FIRST_NOTE, lecture.EXAMPLE_SECOND_NOTE,
                                     (3.0, 6.0, 0.5)])
def test_walkthrough_agrees_with_the_graph_built_by_jax_grad(example: tuple[float, ...]) -> None:
    x, y, w = example
    ours, theirs = tape.walkthrough(jb.loss, w, x, y), lecture.linear_regression(x, y, w)
    assert [v.name for v in ours.values] == [v.name for v in theirs.values]
    for a, b in zip(ours.values, theirs.values, strict=True):
        assert (a.role, float(a.value), float(a.adjoint)) == \
            (b.role, float(b.value), float(b.adjoint))

    def edges(g: Any) -> dict[tuple[str, str], float]:
        return {(e.target, e.source): float(e.value)
                for op in g.operations for e in op.local_gradients}

    assert edges(ours) == edges(theirs)


def test_walkthrough_of_a_function_with_constants_and_arrays() -> None:
    def f(w: Any, x: Any) -> Any:
        return jbnp.sum(jbnp.tanh(w * x) * 3.0)

    w, x = np.array([0.5, -0.5]), np.array([1.0, 2.0])
    g = tape.walkthrough(f, w, x, argnums=(0,), names=("weights", "inputs"))
    assert [v.name for v in g.values[:2]] == ["weights", "inputs"]
    np.testing.assert_allclose(g.value("weights").adjoint, tape.grad(f)(w, x), rtol=1e-14)
    tanh_edge = g.operations[1].local_gradients[0]
    np.testing.assert_allclose(tanh_edge.value, 1.0 - np.tanh(w * x) ** 2, rtol=1e-14)
    assert g.operations[-1].primitive == "sum" and g.operations[-1].local_gradients[0].value is None


# ---------------------------------------------------------------------------------------
# Errors that teach


def test_an_unsupported_operation_names_itself_and_the_supported_ones() -> None:
    cases = [
        (lambda x: x % 2.0, "The operator %"),  # (indexing is recorded now)
        (lambda x: np.dot(x, x), "numpy.dot"),
        (lambda x: np.arctan(x), "numpy.arctan"),
        (lambda x: jnp.sin(x), "jax.numpy"),
        (lambda x: jnp.asarray(x) * 2.0, "Converting a tape value to an array"),
    ]
    for f, named in cases:
        with pytest.raises(TypeError) as error:
            tape.grad(lambda x, f=f: jbnp.sum(f(x)))(np.ones(3))
        message = str(error.value)
        assert named in message and "The tape records" in message
        assert all(name in message for name in FUNCTIONS)
    with pytest.raises(TypeError, match="jaxbackprop.numpy"):  # and what to use instead
        tape.walkthrough(lambda x: jnp.exp(x), 1.0)


def test_a_non_scalar_output_given_to_grad_says_use_vjp() -> None:
    with pytest.raises(TypeError, match=r"shape \(3,\).*use tape\.vjp"):
        tape.grad(lambda x: x * 2.0)(np.ones(3))


def test_a_shape_mismatch_names_the_primitive_and_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"'add': inputs of shapes \(4,\) and \(3,\)"):
        tape.grad(lambda x: jbnp.sum(x + np.ones(3)))(np.ones(4))
    with pytest.raises(ValueError, match=r"'matmul': inputs of shapes \(2, 3\) and \(2, 3\)"):
        tape.grad(lambda x: jbnp.sum(x @ x))(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"'mul': inputs of shapes \(2,\) and \(3,\)"):
        tape.grad(lambda x: jbnp.sum(x * jnp.ones(3)))(jnp.ones(2))
    with pytest.raises(ValueError, match=r"'matmul': operand a must be 1-D or 2-D, got shape \(\)"):
        tape.grad(lambda x: jbnp.sum(x @ np.ones(2)))(1.0)
    with pytest.raises(ValueError, match=r"the cotangent must have the output's shape \(3,\)"):
        tape.vjp(lambda x: x * 2.0, np.ones(3))[1](np.ones(4))


def test_integer_inputs_are_promoted_like_the_model_functions() -> None:
    assert tape.grad(jb.loss)(1, 1, 2) == -2.0  # like jb.loss(1, 1, 2) == 1.0
    assert tape.grad(lambda x: x * 2)(3) == 2.0 and type(tape.grad(lambda x: x * 2)(3)) is float
    g = tape.grad(lambda x: jbnp.sum(x * x))(np.arange(3))
    assert g.dtype == np.float32 and g.tolist() == [0.0, 2.0, 4.0]
    g = tape.grad(lambda x: jbnp.sum(x * x))(jnp.arange(3))
    assert g.dtype == jnp.float32 and g.tolist() == [0.0, 2.0, 4.0]
    assert tape.walkthrough(jb.loss, 1, 1, 2).value("w").value == 1.0


def test_bad_arguments_are_named() -> None:
    with pytest.raises(TypeError, match="tape.grad: argument 0 must be a number or an array.*str"):
        tape.grad(lambda x: x)("one")
    with pytest.raises(TypeError, match="tape.vjp: primal input 1 must be a number"):
        tape.vjp(lambda x, y: x, 1.0, "two")
    with pytest.raises(ValueError, match="tape.grad: argnums 3 is out of range"):
        tape.grad(lambda x: x, argnums=3)(1.0)
    with pytest.raises(TypeError, match="tape.value_and_grad: argnums must be an int"):
        tape.value_and_grad(lambda x: x, argnums=())(1.0)


def test_a_value_that_escaped_its_tape_is_refused() -> None:
    kept = []

    def keep(x: Any) -> Any:
        kept.append(x)
        return x * 1.0

    tape.grad(keep)(1.0)
    with pytest.raises(RuntimeError, match="escaped the function that recorded it"):
        tape.grad(lambda y: y * kept[0])(2.0)


def test_an_error_inside_f_leaves_the_nesting_level_clean() -> None:
    with pytest.raises(ZeroDivisionError):
        tape.grad(lambda x: x * (1 // 0))(1.0)
    # the next tape is at level 1 again: nested grads still tell their tapes apart
    assert tape.grad(lambda x: x * tape.grad(lambda y: x + y)(1.0))(2.0) == 1.0
    seen = []
    tape.grad(lambda x: seen.append(x.tape.level) or x)(1.0)
    assert seen == [1]
