"""Every primitive of the hand-written tape against ``jax.vjp``; broadcasting; random programs.

Each function below is written once with operators and ``jaxbackprop.numpy``, so the
same definition runs on the tape (``tape.vjp``) and on JAX (``jax.vjp``): JAX's own rules
are the independent source. Float64 comparisons hold to 1e-12 relative, float32 to 1e-6.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads, check_jvp, check_vjp

import jaxbackprop.numpy as jbnp
from jaxbackprop import tape
from jaxbackprop.tape.core import FUNCTIONS, PRIMITIVES, recording, scatter, unbroadcast


@pytest.fixture
def x64() -> Iterator[None]:
    with jax.enable_x64(True):
        yield


def inputs(seed: int, specs: tuple[tuple[tuple[int, ...], str], ...]) -> list[np.ndarray]:
    """Float64 arrays of the given shapes: ``"any"`` in [-2, 2], ``"positive"`` in [0.5, 2]."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(*((0.5, 2.0) if domain == "positive" else (-2.0, 2.0)), shape)
            for shape, domain in specs]


def recorded_primitives(f: Callable[..., Any], *args: Any) -> set[str]:
    """The names of the primitives that ``f(*args)`` records on a tape."""
    with recording() as t:
        f(*[t.new_var(a) for a in args])
    return {eqn.primitive.name for eqn in t.equations}


def assert_close(actual: Any, expected: Any, rtol: float) -> None:
    """Elementwise close, relative to the largest magnitude of ``expected`` (at least 1)."""
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected,
                               rtol=rtol, atol=rtol * scale)


def compare_vjps(f: Callable[..., Any], args: list[Any], rtol: float, seed: int = 1) -> None:
    """``tape.vjp`` and ``jax.vjp`` of ``f`` agree on the output and, for a random
    cotangent, on every input's cotangent (shape and dtype included)."""
    out_tape, pullback = tape.vjp(f, *args)
    out_jax, jax_pullback = jax.vjp(f, *[jnp.asarray(a) for a in args])
    ct = np.random.default_rng(seed).uniform(-1.0, 1.0, np.shape(out_jax)).astype(out_jax.dtype)
    assert np.shape(out_tape) == np.shape(out_jax)
    assert_close(out_tape, out_jax, rtol)
    for got, want, arg in zip(pullback(ct), jax_pullback(jnp.asarray(ct)), args, strict=True):
        assert np.shape(got) == np.shape(arg) and got.dtype == arg.dtype
        assert_close(got, want, rtol)


# name of the primitive tested, the function, its inputs' shapes and domains
ANY, POS = "any", "positive"
CASES: list[tuple[str, Callable[..., Any], tuple[tuple[tuple[int, ...], str], ...]]] = [
    ("add", lambda a, b: a + b, (((3, 4), ANY), ((4,), ANY))),
    ("sub", lambda a, b: a - b, (((4,), ANY), ((3, 4), ANY))),
    ("mul", lambda a, b: a * b, (((1, 4), ANY), ((3, 4), ANY))),
    ("truediv", lambda a, b: a / b, (((3, 4), ANY), ((4,), POS))),
    ("truediv", lambda a: 2.0 / a, (((3, 4), POS),)),
    ("neg", lambda a: -a, (((3, 4), ANY),)),
    ("integer_pow", lambda a: a**3, (((3, 4), ANY),)),
    ("integer_pow", lambda a: a**-2, (((3, 4), POS),)),
    ("pow", lambda a, b: a**b, (((3, 4), POS), ((4,), ANY))),
    ("pow", lambda a: 2.0**a, (((3, 4), ANY),)),
    ("exp", jbnp.exp, (((3, 4), ANY),)),
    ("log", jbnp.log, (((3, 4), POS),)),
    ("sin", jbnp.sin, (((3, 4), ANY),)),
    ("cos", jbnp.cos, (((3, 4), ANY),)),
    ("tanh", jbnp.tanh, (((3, 4), ANY),)),
    ("sqrt", jbnp.sqrt, (((3, 4), POS),)),
    ("abs", jbnp.abs, (((3, 4), ANY),)),
    ("maximum", jbnp.maximum, (((3, 4), ANY), ((4,), ANY))),
    ("maximum", jbnp.relu, (((3, 4), ANY),)),
    ("where", lambda a, b: jbnp.where(a > 0.0, a, b), (((3, 4), ANY), ((4,), ANY))),
    ("sum", jbnp.sum, (((3, 4), ANY),)),
    ("sum", lambda a: jbnp.sum(a, axis=0), (((3, 4), ANY),)),
    ("sum", lambda a: jbnp.sum(a, axis=(0, 2)), (((2, 3, 4), ANY),)),
    ("sum", lambda a: a.sum(axis=-1), (((3, 4), ANY),)),
    ("mean", jbnp.mean, (((3, 4), ANY),)),
    ("mean", lambda a: jbnp.mean(a, axis=1), (((3, 4), ANY),)),
    ("reshape", lambda a: jbnp.reshape(a, (4, 3)), (((3, 4), ANY),)),
    ("reshape", lambda a: a.reshape(-1), (((3, 4), ANY),)),
    ("transpose", jbnp.transpose, (((3, 4), ANY),)),
    ("transpose", lambda a: jbnp.transpose(a, (1, 2, 0)), (((2, 3, 4), ANY),)),
    ("transpose", lambda a: a.T, (((3, 4), ANY),)),
    ("broadcast_to", lambda a: jbnp.broadcast_to(a, (3, 4)), (((1, 4), ANY),)),
    ("broadcast_to", lambda a: jbnp.broadcast_to(a, (2, 3, 4)), (((4,), ANY),)),
    ("matmul", lambda a, b: a @ b, (((3, 4), ANY), ((4, 2), ANY))),
    ("matmul", jbnp.matmul, (((4,), ANY), ((4, 2), ANY))),
    ("matmul", jbnp.matmul, (((3, 4), ANY), ((4,), ANY))),
    ("matmul", lambda a, b: a @ b, (((4,), ANY), ((4,), ANY))),
    ("getitem", lambda a: a[1], (((3, 4), ANY),)),
    ("getitem", lambda a: a[:, 0], (((3, 4), ANY),)),
    ("getitem", lambda a: a[-1, 1:3], (((3, 4), ANY),)),
    ("getitem", lambda a: a[::2, 1], (((3, 4), ANY),)),
    ("getitem", lambda a: a[1:, :, 2], (((2, 3, 4), ANY),)),
    ("scatter", lambda a: scatter(a, (slice(1, 3),), (5, 4)), (((2, 4), ANY),)),
    ("scatter", lambda a: scatter(a, (1, slice(None)), (3, 4)), (((4,), ANY),)),
]


def test_the_cases_cover_every_primitive() -> None:
    assert {name for name, _, _ in CASES} == set(PRIMITIVES)


@pytest.mark.parametrize("kind", ["numpy", "jax"])
@pytest.mark.parametrize("case", range(len(CASES)),
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_primitive_matches_jax_vjp(case: int, kind: str, x64: None) -> None:
    name, f, specs = CASES[case]
    args = inputs(case, specs)
    assert name in recorded_primitives(f, *args)
    compare_vjps(f, args if kind == "numpy" else [jnp.asarray(a) for a in args], rtol=1e-12)


# Python floats take the math path; the points include ties and kinks, where the tape
# follows jax.grad's conventions (maximum: 1/2 each; abs: 1 at 0; relu via maximum: 1/2).
SCALAR_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "truediv": lambda a, b: a / b, "pow": lambda a, b: (a * a + 0.5) ** b,
    "integer_pow": lambda a, b: a**3 + b**-1, "neg": lambda a, b: -a + b,
    "exp": lambda a, b: jbnp.exp(a) * b, "log": lambda a, b: jbnp.log(a * a + b * b),
    "sin": lambda a, b: jbnp.sin(a * b), "cos": lambda a, b: jbnp.cos(a - b),
    "tanh": lambda a, b: jbnp.tanh(a / b), "sqrt": lambda a, b: jbnp.sqrt(a * a + b * b),
    "abs": lambda a, b: jbnp.abs(a) + jbnp.abs(a - b), "maximum": jbnp.maximum,
    "relu": lambda a, b: jbnp.relu(a) + jbnp.relu(b - 1.0),
    "where": lambda a, b: jbnp.where(a > b, a * a, b - a),
}
SCALAR_POINTS = [(0.7, -1.3), (-2.0, 0.5), (1.0, 1.0), (0.0, 1.0), (1.5, 1.5)]


@pytest.mark.parametrize("name", sorted(SCALAR_FUNCTIONS))
def test_python_floats_match_jax_grad(name: str, x64: None) -> None:
    f = SCALAR_FUNCTIONS[name]
    for a, b in SCALAR_POINTS:
        got = tape.value_and_grad(f, argnums=(0, 1))(a, b)
        assert type(got[0]) is float and all(type(g) is float for g in got[1])  # the math path
        want = jax.value_and_grad(f, argnums=(0, 1))(a, b)
        np.testing.assert_allclose(got[0], float(want[0]), rtol=1e-12)
        np.testing.assert_allclose(got[1], [float(g) for g in want[1]], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("f, x", [
    (jbnp.log, 0.0), (jbnp.sqrt, 0.0), (lambda x: 1.0 / x, 0.0), (lambda x: x**-1, 0.0),
    (jbnp.exp, 1000.0), (lambda x: x**2, 1e200), (jbnp.sin, float("inf")),
    (lambda x: x ** 0.5, -1.0),
], ids=["log0", "sqrt0", "div0", "inverse0", "exp-overflow", "square-overflow", "sin-inf",
        "root-negative"])
def test_python_floats_follow_ieee_like_jax(f: Callable[[Any], Any], x: float, x64: None) -> None:
    # Python's math raises on these; the tape gives NumPy's and JAX's inf and nan.
    value, slope = tape.value_and_grad(f)(x)
    want_value, want_slope = jax.value_and_grad(f)(x)
    np.testing.assert_equal((value, slope), (float(want_value), float(want_slope)))


# ---------------------------------------------------------------------------------------
# Broadcasting

SHAPES = [(), (4,), (3, 4), (1, 4)]
BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "add": jbnp.add, "sub": jbnp.subtract, "mul": jbnp.multiply,
    "truediv": lambda a, b: a / (b * b + 1.0), "maximum": jbnp.maximum,
    "where": lambda a, b: jbnp.where(a > b, a, b),
}


@pytest.mark.parametrize("a_shape, b_shape", list(itertools.product(SHAPES, SHAPES)))
@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_ops_broadcast_like_jax(op: str, a_shape: tuple[int, ...],
                                       b_shape: tuple[int, ...], x64: None) -> None:
    args = inputs(len(a_shape) * 10 + len(b_shape), ((a_shape, ANY), (b_shape, ANY)))
    compare_vjps(BINARY[op], args, rtol=1e-12)


@pytest.mark.parametrize("shape, out_shape", [
    (s, np.broadcast_shapes(s, t)) for s, t in itertools.product(SHAPES, SHAPES)])
def test_unbroadcast_sums_the_copies(shape: tuple[int, ...], out_shape: tuple[int, ...]) -> None:
    # The cotangent of a broadcast input sums its copies: ones sum to the number of copies.
    summed = unbroadcast(np.ones(out_shape), np.zeros(shape))
    copies = int(np.prod(out_shape)) // int(np.prod(shape))
    assert np.shape(summed) == shape
    np.testing.assert_array_equal(summed, np.full(shape, float(copies)))


# ---------------------------------------------------------------------------------------
# Random programs: hypothesis composes primitives over random shapes

UNARY_STEPS: dict[str, Callable[[Any], Any]] = {
    "exp_tanh": lambda x: jbnp.exp(jbnp.tanh(x)), "log": lambda x: jbnp.log(x * x + 1.0),
    "sqrt": lambda x: jbnp.sqrt(x * x + 1.0), "sin": jbnp.sin, "cos": jbnp.cos,
    "tanh": jbnp.tanh, "neg": lambda x: -x, "square": lambda x: x**2,
    "cube": lambda x: jbnp.tanh(x) ** 3, "inverse": lambda x: 1.0 / (x * x + 1.0),
    "root": lambda x: (x * x + 1.0) ** 0.5,
    "sum0": lambda x: jbnp.sum(x, axis=0) if x.ndim else x,
    "mean0": lambda x: jbnp.mean(x, axis=0) if x.ndim else x,
    "reshape": lambda x: {(): lambda: jbnp.reshape(jbnp.reshape(x, (1,)), ()),
                          (4,): lambda: jbnp.reshape(x, (1, 4)),
                          (1, 4): lambda: jbnp.reshape(x, (4,)),
                          (3, 4): lambda: jbnp.transpose(jbnp.reshape(x, (4, 3)))}[x.shape](),
    "broadcast": lambda x: jbnp.broadcast_to(x, (3, 4)) if x.ndim else x,
}
KINKED_STEPS: dict[str, Callable[[Any], Any]] = {"abs": jbnp.abs, "relu": jbnp.relu}
BINARY_STEPS: dict[str, Callable[[Any, Any], Any]] = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1.0), "pow": lambda a, b: (a * a + 1.0) ** jbnp.tanh(b),
}
KINKED_BINARY_STEPS: dict[str, Callable[[Any, Any], Any]] = {
    "maximum": jbnp.maximum, "where": lambda a, b: jbnp.where(a > b, a, 2.0 * b),
}


def matmul_step(x: Any, w: Any) -> Any:
    """``x @ w`` for a (4, 4) matrix ``w``: the shapes (4,), (1, 4), (3, 4) are kept."""
    return x * jbnp.sum(w) if x.ndim == 0 else x @ w


Drawn = tuple[Callable[..., Any], list[np.ndarray]]  # a program and its inputs


@st.composite
def programs(draw: st.DrawFn, smooth: bool = False) -> Drawn:
    """A random program over 1 to 3 inputs of shapes (), (4,), (1, 4), (3, 4) and a
    (4, 4) matrix, and its inputs. Each step applies a unary, binary or matmul step to
    earlier values; the program returns the sum of the last value."""
    unary = dict(UNARY_STEPS, **({} if smooth else KINKED_STEPS))
    binary = dict(BINARY_STEPS, **({} if smooth else KINKED_BINARY_STEPS))
    shapes = draw(st.lists(st.sampled_from(SHAPES), min_size=1, max_size=3))
    steps = draw(st.lists(st.tuples(st.sampled_from(sorted(unary) + sorted(binary) + ["matmul"]),
                                    st.integers(0, 10), st.integers(0, 10)),
                          min_size=1, max_size=6))
    seed = draw(st.integers(0, 2**32 - 1))

    def program(*args: Any) -> Any:
        *values, w = args
        for op, i, j in steps:
            a, b = values[i % len(values)], values[j % len(values)]
            values.append(unary[op](a) if op in unary else binary[op](a, b) if op in binary
                          else matmul_step(a, w))
        return jbnp.sum(values[-1])

    return program, inputs(seed, tuple((s, ANY) for s in [*shapes, (4, 4)]))


def compare_grads(program: Callable[..., Any], args: list[Any], rtol: float) -> None:
    argnums = tuple(range(len(args)))
    got = tape.grad(program, argnums)(*args)
    want = jax.grad(program, argnums)(*[jnp.asarray(a) for a in args])
    for g, w, a in zip(got, want, args, strict=True):
        assert np.shape(g) == np.shape(a) and g.dtype == a.dtype
        assert_close(g, w, rtol)


@settings(max_examples=30, deadline=None)
@given(programs())
def test_random_programs_match_jax_grad_in_float64(drawn: Drawn) -> None:
    program, args = drawn
    with jax.enable_x64(True):
        compare_grads(program, args, rtol=1e-12)


@settings(max_examples=15, deadline=None)
@given(programs())
def test_random_programs_match_jax_grad_in_float32(drawn: Drawn) -> None:
    program, args = drawn
    compare_grads(program, [jnp.asarray(a, dtype=jnp.float32) for a in args], rtol=1e-6)


@settings(max_examples=10, deadline=None)
@given(programs(smooth=True))
def test_random_programs_pass_check_vjp(drawn: Drawn) -> None:
    # JAX's own checker: <J^T ct, v> from the tape against finite differences of f. In
    # float64 a central difference with step 1e-5 (JAX's default is 1e-4) keeps its own
    # truncation error, about eps**2 times f's third derivative, well under the 1e-6 asked
    # of the tape (a program drawn by hypothesis missed by 1.3e-6 at 1e-4), and its
    # rounding error near 1e-11.
    program, args = drawn
    with jax.enable_x64(True):
        check_vjp(program, lambda *xs: tape.vjp(program, *xs), tuple(jnp.asarray(a) for a in args),
                  atol=1e-6, rtol=1e-6, eps=1e-5)


def test_jaxbackprop_numpy_exports_every_function() -> None:
    assert set(jbnp.__all__) == set(FUNCTIONS) | {"name"}
    assert all(getattr(jbnp, n) is f for n, f in FUNCTIONS.items())


# ---------------------------------------------------------------------------------------
# Forward mode: tape.jvp against jax.jvp, from the same derivative table


def compare_jvps(f: Callable[..., Any], args: list[Any], rtol: float, seed: int = 2) -> None:
    """``tape.jvp`` and ``jax.jvp`` of ``f`` agree on the output and, for random tangents,
    on the output's tangent (shape and dtype included)."""
    rng = np.random.default_rng(seed)
    tangents = [rng.uniform(-1.0, 1.0, np.shape(a)).astype(np.asarray(a).dtype) for a in args]
    out, out_dot = tape.jvp(f, args, tangents)
    want, want_dot = jax.jvp(f, [jnp.asarray(a) for a in args],
                             [jnp.asarray(t) for t in tangents])
    assert np.shape(out_dot) == np.shape(want_dot)
    assert np.asarray(out_dot).dtype == want_dot.dtype
    assert_close(out, want, rtol)
    assert_close(out_dot, want_dot, rtol)


@pytest.mark.parametrize("case", range(len(CASES)),
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_primitive_matches_jax_jvp(case: int, x64: None) -> None:
    name, f, specs = CASES[case]
    compare_jvps(f, inputs(case, specs), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(SCALAR_FUNCTIONS))
def test_python_floats_match_jax_jvp(name: str, x64: None) -> None:
    f = SCALAR_FUNCTIONS[name]
    for a, b in SCALAR_POINTS:
        out, out_dot = tape.jvp(f, (a, b), (0.3, -0.7))
        assert type(out) is float and type(out_dot) is float  # the math path
        want, want_dot = jax.jvp(f, (a, b), (0.3, -0.7))
        np.testing.assert_allclose((out, out_dot), (float(want), float(want_dot)),
                                   rtol=1e-12, atol=1e-12)


@settings(max_examples=10, deadline=None)
@given(programs())
def test_random_programs_match_jax_jvp(drawn: Drawn) -> None:
    program, args = drawn
    with jax.enable_x64(True):
        compare_jvps(program, args, rtol=1e-12)


@settings(max_examples=5, deadline=None)
@given(programs(smooth=True))
def test_random_programs_pass_check_jvp(drawn: Drawn) -> None:
    # JAX's own checker: the tape's J v against finite differences of f (a step of 1e-5,
    # as in the check_vjp test above, for the same reason).
    program, args = drawn
    with jax.enable_x64(True):
        check_jvp(program, lambda p, t: tape.jvp(program, p, t),
                  tuple(jnp.asarray(a) for a in args), atol=1e-6, rtol=1e-6, eps=1e-5)


@settings(max_examples=3, deadline=None)
@given(programs(smooth=True))
def test_the_tapes_gradient_passes_check_grads_in_both_modes(drawn: Drawn) -> None:
    # tape.grad is itself a JAX-transformable function: JAX differentiates it, forwards
    # and backwards, and checks both against finite differences (second derivatives).
    program, args = drawn
    argnums = tuple(range(len(args)))
    with jax.enable_x64(True):
        xs = tuple(jnp.asarray(a) for a in args)
        check_grads(lambda *xs: tape.grad(program, argnums)(*xs), xs,
                    order=1, modes=("fwd", "rev"), atol=1e-5, rtol=1e-5, eps=1e-5)
        check_grads(lambda *xs: tape.jvp(program, xs, xs)[1], xs,
                    order=1, modes=("fwd", "rev"), atol=1e-5, rtol=1e-5, eps=1e-5)
