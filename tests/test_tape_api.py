"""The tape's API beside JAX's (has_aux, pytrees, jvp), indexing, a small network, and
every bad input refused with an error that names it (never a silently wrong number)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbackprop as jb
import jaxbackprop.numpy as jbnp
from jaxbackprop import tape
from jaxbackprop.tape.core import FUNCTIONS


@pytest.fixture
def x64() -> Iterator[None]:
    with jax.enable_x64(True):
        yield


def assert_trees_close(got: Any, want: Any, rtol: float = 1e-12) -> None:
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want), strict=True):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=rtol)


# ---------------------------------------------------------------------------------------
# JAX's API: has_aux, pytrees, jvp


def test_has_aux_like_jax(x64: None) -> None:
    def f(w: Any, x: Any) -> Any:
        y_hat = w * x
        return jbnp.sum((y_hat - 1.0) ** 2), {"y_hat": y_hat, "note": 3.0}

    w, x = np.array([0.5, -1.0]), np.array([2.0, 3.0])
    for ours, theirs in ((tape.grad, jax.grad), (tape.value_and_grad, jax.value_and_grad)):
        assert_trees_close(ours(f, has_aux=True)(w, x), theirs(f, has_aux=True)(w, x))
    out, pullback, aux = tape.vjp(f, w, x, has_aux=True)
    want_out, want_pullback, want_aux = jax.vjp(f, w, x, has_aux=True)
    assert_trees_close((out, pullback(1.0), aux), (want_out, want_pullback(1.0), want_aux))
    assert type(aux["y_hat"]) is np.ndarray  # the aux's values, not tape values
    assert_trees_close(tape.jvp(f, (w, x), (x, w), has_aux=True),
                       jax.jvp(f, (w, x), (x, w), has_aux=True))


def test_pytree_inputs_and_outputs_like_jax(x64: None) -> None:
    def f(params: dict[str, Any], x: Any) -> Any:
        h = jbnp.tanh(params["w"] * x + params["b"][0])
        return {"h": h, "total": jbnp.sum(h)}, [h[0] * 2.0]

    params, x = {"w": np.array([0.3, -0.2]), "b": [0.1]}, np.array([1.0, 2.0])
    out, pullback = tape.vjp(f, params, x)
    want_out, want_pullback = jax.vjp(f, params, x)
    assert_trees_close(out, want_out)
    ct = ({"h": np.array([1.0, -2.0]), "total": 0.5}, [3.0])
    assert_trees_close(pullback(ct), want_pullback(ct))
    tangents = ({"w": np.array([1.0, 0.0]), "b": [2.0]}, np.array([0.5, 0.5]))
    assert_trees_close(tape.jvp(f, (params, x), tangents), jax.jvp(f, (params, x), tangents))
    with pytest.raises(ValueError, match="the cotangent must have the output's structure"):
        pullback(np.ones(2))


def test_jvp_and_vjp_agree_on_the_lectures_loss() -> None:
    # <J t, ct> = <t, J^T ct>: forward and reverse mode give the same directional derivative
    for x, y, w in (jb.lecture.EXAMPLE_FIRST_NOTE, jb.lecture.EXAMPLE_SECOND_NOTE):
        value, slope = tape.jvp(jb.loss, (w, x, y), (1.0, 0.0, 0.0))
        assert (value, slope) == (float(jb.loss(w, x, y)), tape.grad(jb.loss)(w, x, y))
    assert tape.jvp(jb.loss, (1.0, 1.0, 2.0), (1.0, 0.0, 0.0))[1] == -2.0
    assert tape.jvp(jb.loss, (1.0, 2.0, 4.0), (1.0, 0.0, 0.0))[1] == -8.0


def test_jvp_nests_and_composes_with_jax(x64: None) -> None:
    f = jbnp.sin
    # forward-over-reverse and forward-over-forward, against JAX
    assert tape.jvp(tape.grad(f), (0.7,), (1.0,))[1] == pytest.approx(-math.sin(0.7), 1e-12)
    assert tape.jvp(lambda x: tape.jvp(f, (x,), (1.0,))[1], (0.7,), (1.0,))[1] == \
        pytest.approx(-math.sin(0.7), 1e-12)
    got = jax.jit(lambda x: tape.jvp(f, (x,), (jnp.ones_like(x),))[1])(jnp.arange(3.0))
    np.testing.assert_allclose(got, np.cos(np.arange(3.0)), rtol=1e-12)


# ---------------------------------------------------------------------------------------
# Indexing, and a small network


@pytest.mark.parametrize("key", [1, -1, slice(1, 3), (0, 2), (slice(None), 0),
                                 (-1, slice(None, None, 2)), (slice(0, 2), slice(1, None))],
                         ids=str)
def test_indexing_matches_jax_vjp(key: Any, x64: None) -> None:
    x = np.arange(1.0, 13.0).reshape(3, 4) / 7.0
    ct_shape = np.shape(x[key])
    ct = np.linspace(0.5, 1.5, int(np.prod(ct_shape))).reshape(ct_shape)

    def f(x: Any) -> Any:
        return jbnp.sin(x)[key] * 2.0

    out, pullback = tape.vjp(f, x)
    want_out, want_pullback = jax.vjp(f, jnp.asarray(x))
    np.testing.assert_allclose(out, want_out, rtol=1e-12)
    (x_bar,) = pullback(ct)
    np.testing.assert_allclose(x_bar, want_pullback(jnp.asarray(ct))[0], rtol=1e-12)
    assert np.count_nonzero(x_bar) == ct.size  # the transpose scatters into zeros
    # second order through indexing and its transpose
    g = tape.grad(lambda x: jbnp.sum(tape.grad(lambda x: jbnp.sum(f(x) ** 2))(x) * x))(x)
    want = jax.grad(lambda x: jnp.sum(jax.grad(lambda x: jnp.sum(f(x) ** 2))(x) * x))(x)
    np.testing.assert_allclose(g, want, rtol=1e-12)


def mlp(params: dict[str, Any], X: Any) -> Any:  # noqa: N803
    """A two-layer network's scores, one per row of ``X``."""
    hidden = jbnp.tanh(X @ params["W1"] + params["b1"])
    return (hidden @ params["W2"] + params["b2"])[:, 0]


def logistic_loss(params: dict[str, Any], X: Any, y: Any) -> Any:  # noqa: N803
    return jbnp.mean(jbnp.log(1.0 + jbnp.exp(-y * mlp(params, X))))


def hinge_loss(params: dict[str, Any], X: Any, y: Any) -> Any:  # noqa: N803
    return jbnp.mean(jbnp.relu(1.0 - y * mlp(params, X)))


@pytest.mark.parametrize("loss", [logistic_loss, hinge_loss])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_mlps_gradient_equals_jax_grad(loss: Callable[..., Any], dtype: str) -> None:
    with jax.enable_x64(dtype == "float64"):
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(8, 3)).astype(dtype), np.sign(rng.normal(size=8)).astype(dtype)  # noqa: N806
        params = {"W1": rng.normal(size=(3, 5)), "b1": rng.normal(size=5),
                  "W2": rng.normal(size=(5, 2)), "b2": rng.normal(size=2)}
        params = jax.tree_util.tree_map(lambda p: p.astype(dtype), params)
        want = jax.grad(loss)(params, X, y)
        assert_trees_close(tape.grad(loss)(params, X, y), want, rtol=1e-6)
        assert_trees_close(jax.jit(tape.grad(loss))(params, X, y), want, rtol=1e-6)


# ---------------------------------------------------------------------------------------
# Never silently wrong


@pytest.mark.parametrize("f", [
    lambda w: math.sin(w), lambda w: float(w) ** 2, lambda w: int(w) * 1.0,
    lambda w: complex(w).real, lambda w: np.float64(w) * 2.0, lambda w: np.asarray(w) * 2.0,
    lambda w: math.exp(w),
], ids=["math.sin", "float", "int", "complex", "np.float64", "np.asarray", "math.exp"])
def test_converting_a_tape_value_to_a_plain_number_is_refused(f: Callable[[Any], Any]) -> None:
    # jax.grad raises here too; returning 0.0 (the gradient silently dropped) would be wrong
    with pytest.raises(TypeError, match="would lose the gradient.*jaxbackprop.numpy"):
        tape.grad(f)(2.0)


def test_comparisons_and_bool_keep_working_for_control_flow() -> None:
    def f(x: Any) -> Any:
        if x > 0.0 and bool(x != 1.0) and not x <= -5.0:
            return x * x
        return -x

    for x in (-2.0, 3.0):
        assert tape.grad(f)(x) == float(jax.grad(f)(x))
    assert tape.grad(lambda x: jbnp.sum(jbnp.where(x > 0.0, x, 0.0)))(np.array([-1.0, 2.0])) \
        .tolist() == [0.0, 1.0]


@pytest.mark.parametrize("f, operator", [
    (lambda x: x % 2.0, "The operator %"), (lambda x: 2.0 % x, "The operator %"),
    (lambda x: x // 2.0, "The operator //"), (lambda x: 7.0 // x, "The operator //"),
    (lambda x: divmod(x, 2.0)[0], "divmod()"), (lambda x: x & 1, "bit operators"),
    (lambda x: x | 1, "bit operators"), (lambda x: x ^ 1, "bit operators"),
    (lambda x: x << 1, "bit operators"), (lambda x: 1 >> x, "bit operators"),
    (lambda x: ~x, "The bit operator ~"),
])
def test_an_unsupported_operator_names_itself_and_what_the_tape_records(
        f: Callable[[Any], Any], operator: str) -> None:
    with pytest.raises(TypeError) as error:
        tape.grad(f)(3.0)
    message = str(error.value)
    assert operator in message and "The tape records" in message
    assert all(name in message for name in FUNCTIONS)


def test_bad_argnums_are_refused_like_jax() -> None:
    with pytest.raises(ValueError, match=r"argnums \(0, 0\) names an argument twice"):
        tape.grad(jb.loss, argnums=(0, 0))(1.0, 2.0, 4.0)
    with pytest.raises(ValueError, match=r"argnums \(0, -3\) names an argument twice"):
        tape.value_and_grad(jb.loss, argnums=(0, -3))(1.0, 2.0, 4.0)
    with pytest.raises(ValueError, match="argnums -4 is out of range for a call with 3"):
        tape.grad(jb.loss, argnums=-4)(1.0, 2.0, 4.0)
    with pytest.raises(TypeError, match="argnums must be an int or a non-empty tuple of ints"):
        tape.grad(jb.loss, argnums=(0.5,))(1.0, 2.0, 4.0)


@pytest.mark.parametrize("call, error, message", [
    (lambda: tape.grad(lambda w: None)(1.0), TypeError, r"f returned None.*forget a return"),
    (lambda: tape.vjp(lambda w: None, 1.0), TypeError, r"tape.vjp: f returned None"),
    (lambda: tape.grad(lambda w: "w")(1.0), TypeError, "f must return numbers or arrays, got str"),
    (lambda: tape.grad(lambda w: w)("1.0"), TypeError, "argument 0 must be a number.*got str"),
    (lambda: tape.jvp(lambda w: w, ("1.0",), (1.0,)), TypeError, "primal 0 must be a number"),
    (lambda: tape.grad(lambda w: w * np.ones(2))(1.0), TypeError,
     r"f must return a scalar, got an output of shape \(2,\); use tape.vjp"),
    (lambda: tape.grad(lambda w: w, has_aux=True)(1.0), TypeError,
     r"with has_aux=True, f must return a pair \(output, aux\), got Var"),
    (lambda: tape.vjp(lambda w: (w, w, w), 1.0, has_aux=True), TypeError,
     "with has_aux=True, f must return a pair"),
    (lambda: tape.jvp(lambda w: w, (1.0,), (np.ones(2),)), ValueError,
     r"tangent 0 has shape \(2,\), its primal \(\)"),
    (lambda: tape.jvp(lambda w: w, (np.ones(2, np.float32),), (np.ones(2, np.int32),)),
     TypeError, "tangent 0 has dtype int32, its primal float32"),
    (lambda: tape.jvp(lambda w: w, (np.ones(2, np.float32),), (np.ones(2, np.float64),)),
     TypeError, "tangent 0 has dtype float64, its primal float32"),
    (lambda: tape.jvp(lambda w, x: w, (1.0, 2.0), (1.0,)), ValueError,
     "primals and tangents must have the same structure"),
    (lambda: tape.jvp(lambda w: w, 1.0, 1.0), TypeError,
     "primals and tangents must be tuples or lists, got float and float"),
    (lambda: tape.grad(lambda w: w[5])(np.ones(3)), IndexError,
     "index 5 is out of bounds for axis 0 of size 3"),
    (lambda: tape.grad(lambda w: w[0, 0])(np.ones(3)), IndexError, r"2 indices for an array"),
    (lambda: tape.grad(lambda w: jbnp.sum(w[np.array([0, 1])]))(np.ones(3)), TypeError,
     "tape indexing takes integers, slices and tuples of them, got ndarray"),
], ids=["None", "vjp-None", "str-out", "str-in", "str-jvp", "non-scalar", "aux-not-pair",
        "aux-triple", "tangent-shape", "tangent-int", "tangent-dtype", "tangent-structure",
        "jvp-not-tuples", "index-bounds", "index-too-many", "index-array"])
def test_bad_input_is_named(call: Callable[[], Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("call", [
    lambda: tape.grad(lambda z: z * z)(1.0 + 2.0j),
    lambda: tape.grad(lambda z: jbnp.sum(z * z))(np.ones(2, np.complex64)),
    lambda: tape.grad(lambda w: jbnp.sum(w * (1.0 + 1.0j)).real)(1.0),
    lambda: tape.vjp(lambda w: w * np.ones(2, np.complex128), 1.0),
    lambda: tape.jvp(lambda z: z, (jnp.ones(2, jnp.complex64),), (jnp.ones(2, jnp.complex64),)),
], ids=["complex-input", "complex-array", "complex-constant", "complex-output", "jvp"])
def test_complex_numbers_are_refused(call: Callable[[], Any]) -> None:
    # The tape differentiates real functions; it does not give jax.grad's conjugate silently.
    with pytest.raises(TypeError, match="complex"):
        call()
