"""Inputs a new user tries that nobody listed: each once gave a silently wrong number or
an unhelpful error. Every number is checked against an independent source (``jax.grad``,
a closed form)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbackprop as jb
import jaxbackprop.numpy as jbnp
from jaxbackprop import draw, lecture, tape
from jaxbackprop.graph import adjoint_label, format_number


def test_a_value_kept_from_a_finished_inner_tape_is_refused_not_a_zero_gradient() -> None:
    # y lives on the level-2 tape of the inner grad; that tape is finished when the outer
    # call returns. Used later on a new level-1 tape, it once recorded on its dead tape
    # (the higher level), so z's use vanished from the new tape: d/dz (z*z + y) gave 0,
    # not 2z = 6.
    kept: list[Any] = []

    def inner(y: Any) -> Any:
        kept.append(y)
        return y * y

    assert tape.grad(lambda x: tape.grad(inner)(2.0) * x)(1.0) == 4.0
    with pytest.raises(RuntimeError, match="escaped the function that recorded it"):
        tape.grad(lambda z: z * z + kept[0])(3.0)
    with pytest.raises(RuntimeError, match="escaped the function that recorded it"):
        _ = kept[0] * 2.0  # outside any tape: once a Var of the finished tape, silently


def test_iterating_a_scalar_is_refused_not_an_empty_loop() -> None:
    # Python's old iteration protocol called x[0], got IndexError and stopped: a loop over
    # a 0-d value ran zero times, so sum(v for v in x) was 0 and its gradient silently 0
    # (jax.grad raises "iteration over a 0-d array").
    with pytest.raises(TypeError, match="iteration over a 0-d"):
        tape.grad(lambda x: sum(v * v for v in x))(3.0)
    with pytest.raises(TypeError, match="iteration over a 0-d"):
        tape.grad(lambda x: list(x)[0])(3.0)
    # arrays iterate along their first axis, as JAX's do
    xs = np.array([[1.0, 2.0], [3.0, 4.0]])
    want = jax.grad(lambda x: sum(jnp.sum(row) ** 2 for row in x))(jnp.asarray(xs))
    got = tape.grad(lambda x: sum(jbnp.sum(row) ** 2 for row in x))(xs)
    np.testing.assert_allclose(got, want)


@pytest.mark.filterwarnings("ignore:invalid value encountered in log:RuntimeWarning")  # NumPy's
@pytest.mark.parametrize("a", [-2.0, 0.0, 2.0])
def test_pow_exponent_derivative_matches_jax_for_every_sign_of_the_base(a: float) -> None:
    # d/db a^b = a^b log a: JAX takes it as 0 at a == 0 only; for a < 0 (a^b is not
    # differentiable in b) it is nan. The tape took 0 for every a <= 0: a silent zero.
    f = lambda a, b: a**b  # noqa: E731
    want = jax.grad(f, argnums=1)(a, 3.0)
    for got in (tape.grad(f, argnums=1)(a, 3.0),  # Python floats, NumPy arrays, forward
                tape.grad(lambda a, b: jbnp.sum(a**b) / 2.0, argnums=1)(np.full(2, a), 3.0),
                tape.jvp(lambda b: a**b, (3.0,), (1.0,))[1]):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_cotangent_that_is_not_a_real_number_is_refused() -> None:
    # A complex cotangent had its imaginary part silently dropped (the pullback cast the
    # result to the real primal's dtype): out_bar = 1j gave (2x,) = (6.0,), a real
    # answer to a question about a complex seed. A string failed inside the backward
    # pass with "can't multiply sequence by non-int of type 'float'".
    _, pullback = tape.vjp(lambda x: x * x, np.array([3.0]))
    with pytest.raises(TypeError, match="tape.vjp: cotangent 0 is complex"):
        pullback(np.array([1j]))
    _, pullback = tape.vjp(lambda x: x * x, 3.0)
    with pytest.raises(TypeError, match="tape.vjp: cotangent 0 must be a number or an array"):
        pullback("1")
    assert pullback(2) == (12.0,)  # an integer is promoted, as inputs are


@pytest.mark.parametrize("args, argnums", [((3.0, {"a": 1.0, "b": 2.0}), 1),
                                           (({"a": 1.0, "b": 2.0}, 3.0), 1),
                                           ((3.0, (1.0, 2.0)), 0),
                                           ((3.0, None), 0)])
def test_walkthrough_refuses_a_pytree_argument_it_would_mislabel(args: Any, argnums: int) -> None:
    # The walkthrough names and marks one value per argument, but records one per leaf:
    # with p = {"a": 1, "b": 2} as argument 1 (the parameter), p["b"] was drawn as "v2,
    # fixed data" with its gradient "(not needed)"; a dict first crashed with
    # "AttributeError: 'dict' object has no attribute 'tape'".
    with pytest.raises(TypeError, match=r"walkthrough: argument \d is a \w+; pass"):
        tape.walkthrough(lambda x, p: x, *args, argnums=argnums)


def test_a_gradient_too_small_for_four_decimals_is_not_shown_as_0() -> None:
    # format_number printed 4 decimals, so any |value| < 5e-5 became "0": near the
    # minimum, jaxbackprop graph --w 1.99999 drew "dL/dw = 0" (it is -2e-05) and a
    # walkthrough of w * 1e-20 showed the local gradient "dv1/dw = 0".
    assert format_number(-2.0e-5) == "-2.0000e-05"
    assert format_number(np.float32(1e-20)) == "1.0000e-20"
    assert format_number(0.00005) == "0.0001"  # rounds to a non-zero number: unchanged
    assert format_number(0.0) == "0" and format_number(-0.0) == "0"
    g = tape.walkthrough(lambda w: w * 1e-20, 2.0)
    assert [line.split()[-1] for line in g.table("local").splitlines()[-1:]] == ["1.0000e-20"]
    g = lecture.linear_regression(x=1.0, y=2.0, w=1.99999)
    w = g.value("w")
    np.testing.assert_allclose(w.adjoint, jax.grad(lambda w: (w * 1.0 - 2.0) ** 2)(1.99999))
    assert adjoint_label(g, w) == f"dL/dw = {float(w.adjoint):.4e}"  # about -2.0e-05


@pytest.mark.parametrize("compare, x", [(lambda x: x > 1.0, 2.0),
                                        (lambda x: x > np.float64(1.0), 2.0),
                                        (lambda x: x > jnp.ones(()), 2.0),
                                        (lambda x: np.greater(x, np.ones(2))[0], np.ones(2))])
def test_a_comparison_returned_as_the_output_is_refused_not_a_zero_gradient(
        compare: Any, x: Any) -> None:
    # Comparisons read the primal value and are not differentiated, so a function that
    # returns one (a typo for the loss, `return y_hat == y`) has lost every dependence on
    # its inputs: tape.grad returned 0.0 for a NumPy or JAX bool and, for a Python bool,
    # said "f must return a scalar, got an output of shape ()". jax.grad refuses bool
    # outputs ("grad requires real-valued outputs").
    with pytest.raises(TypeError):
        jax.grad(lambda x: jnp.greater(x, 1.0))(2.0)
    with pytest.raises(TypeError, match="tape.grad: f returned a bool"):
        tape.grad(compare)(x)
    with pytest.raises(TypeError, match="tape.vjp: f returned a bool"):
        tape.vjp(lambda x: (x * x, x > 1.0), 2.0)


@pytest.mark.parametrize("argnums", [np.int64(1), 1.0, None, {0}])
def test_argnums_that_is_not_an_int_or_a_tuple_is_named(argnums: Any) -> None:
    # np.int64(1) failed with "'numpy.int64' object is not iterable", None with
    # "'NoneType' object is not iterable": neither said which argument was wrong.
    with pytest.raises(TypeError, match="tape.grad: argnums must be an int or a non-empty "
                                        "tuple of ints"):
        tape.grad(lambda x, y: x * y, argnums=argnums)(2.0, 3.0)


def test_walkthrough_of_a_nested_grad_takes_no_names_from_the_tapes_own_code() -> None:
    # The naming hook skipped the tape's files but not the __init__ that dataclasses
    # generates for Equation (its code is "<string>"), whose parameter `out` held the
    # inner tape's outputs: x * y became "out = mul(x, x)", as if it were the output.
    g = tape.walkthrough(lambda x: tape.grad(lambda y: x * y * y)(x), 2.0)
    assert not {"out", "inputs", "params"} & {v.name.rstrip("'") for v in g.values}
    assert g.value("x").adjoint == 4 * 2.0  # d/dx (d/dy x y^2 at y = x) = d/dx 2x^2 = 4x


@pytest.mark.parametrize("call", [lambda: jb.loss("1", 1.0, 2.0),
                                  lambda: jb.loss(None, 1.0, 2.0),
                                  lambda: jb.predict(2.0, "3"),
                                  lambda: jb.loss_grad(1.0, 2.0, None),
                                  lambda: jb.loss_and_grad("1", 1.0, 2.0),
                                  lambda: jb.mean_loss(1.0, "12", "24")])
def test_the_model_names_an_argument_that_is_not_a_number_or_an_array(call: Any) -> None:
    # A string went to Python's own operators ("can't multiply sequence by non-int of
    # type 'float'"; "12" * 1.0 for mean_loss), None to "unsupported operand type(s)".
    with pytest.raises(TypeError, match=r"\b(w|x|y|xs|ys) must be a number or an array, got"):
        call()


@pytest.mark.parametrize("names", [[1, 2], ["a", None], ["a", ""], "ab"])
def test_walkthrough_names_must_be_one_non_empty_string_per_argument(names: Any) -> None:
    # names=[1, 2] was accepted and the graph's table then failed inside str.join
    # ("sequence item 0: expected str instance, int found"); "" made an unnamed node, and
    # a string was split into one-letter names.
    with pytest.raises(TypeError, match="walkthrough: names must be non-empty strings, one per"):
        tape.walkthrough(lambda a, b: a * b, 2.0, 3.0, names=names)


def test_training_figure_labels_the_weights_by_what_they_are() -> None:
    # history.params holds w after each epoch, without w0 (the README passes it as is),
    # but the weight panel was labelled "epoch (0 = w0)" for it: its first point, w after
    # epoch 0 (1.2607 in the lecture), was said to be w0 = 1.
    losses = np.array([[4.0, 3.0, 2.0], [1.5, 1.0, 0.5]])
    epoch_loss = losses[:, -1]

    def weight_axis(params: Any) -> str:
        return draw.training_figure(losses, epoch_loss, params).axes[2].get_xlabel()

    assert weight_axis([1.0, 1.5, 1.8]) == "epoch (0 = w0)"        # w0, then one per epoch
    assert weight_axis([1.5, 1.8]) == "epoch (w at its end)"        # history.params as is
    assert weight_axis(np.arange(7.0)) == "update (0 = w0)"         # w0, then one per step
    assert weight_axis(np.arange(6.0)) == "update (w after it)"
    with pytest.raises(ValueError, match="params must have one w per epoch"):
        weight_axis(np.arange(5.0))


def test_training_figure_draws_a_loss_of_exactly_0() -> None:
    # The loss panels are log-scaled, so a step whose loss is exactly 0 (w0 = 2 on the
    # lecture's data, or a run that converges in float32) vanished from the curve, with
    # matplotlib's "Data has no positive values" warnings; sweep_figure already drew such
    # a 0 at ZERO_DRAWN_AT and said so.
    losses = np.array([[1.0, 0.25, 0.0], [0.0, 0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = draw.training_figure(losses, losses[:, -1], [1.0, 1.5, 2.0])
        fig.canvas.draw()
    per_step, per_epoch = fig.axes[0], fig.axes[1]
    np.testing.assert_array_equal(per_step.lines[0].get_ydata(),
                                  [1.0, 0.25] + [draw.ZERO_DRAWN_AT] * 4)
    np.testing.assert_array_equal(per_epoch.lines[0].get_ydata(), [draw.ZERO_DRAWN_AT] * 2)
    assert "0 drawn at 1e-15" in per_step.get_ylabel()
    assert "0 drawn at" not in draw.training_figure(losses + 1, losses[:, -1] + 1,
                                                    [1.0, 1.5, 2.0]).axes[0].get_ylabel()


def test_len_of_a_tape_array_is_its_first_axis_as_in_jax() -> None:
    # len(x) failed with "object of type 'Var' has no len()", so the common
    # `for i in range(len(x))` loop could not run on the tape.
    def f(x: Any) -> Any:
        return sum(x[i] * x[len(x) - 1 - i] for i in range(len(x)))

    xs = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(tape.grad(f)(xs), jax.grad(f)(jnp.asarray(xs)))
    with pytest.raises(TypeError, match="len.. of a 0-d"):
        tape.grad(lambda x: len(x) * x)(3.0)


@pytest.mark.parametrize("argv, label", [
    (["--x", "1e-30", "--y", "0", "--w", "1"], "L = 1e-60"),
    (["--x", "1e-50"], "x = 1e-50"),
    (["--example", "xy", "--x", "1e-30", "--y", "1e-30"], "z = 1e-60"),
])
def test_cli_graph_refuses_a_number_that_float32_flushes_to_0(argv: list[str], label: str) -> None:
    # graph --x 1e-30 --y 0 --w 1 drew "L = 0" and "dL/dw = 0": s = 1e-30 is a float32,
    # but s^2 and 2 s x underflow to exactly 0, a silent zero gradient (inf was refused).
    done = subprocess.run([sys.executable, "-m", "jaxbackprop", "graph", *argv],
                          capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr
    assert label in lines[0] and "underflows float32 to 0" in lines[0] and "--x64" in lines[0]
    ok = subprocess.run([sys.executable, "-m", "jaxbackprop", "graph", *argv, "--x64"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr


def test_a_numpy_buffer_reused_after_recording_does_not_change_the_gradient() -> None:
    # The tape kept a reference to each NumPy constant as the residual its backward pass
    # reads. Refilling one buffer per row, a NumPy habit, made every recorded `w * buf`
    # read the last row: 351 instead of 273 (jax.grad, which gives 45 on this very code,
    # is no reference here: the closed form d/dw sum (w x)^2 = 2 w sum x^2 is).
    data = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])

    def f(w: Any) -> Any:
        buf, mask, total = np.empty(2), np.empty(2, bool), 0.0
        for row in data:
            buf[:], mask[:] = row, row > 2.0
            total = total + jbnp.sum((w * buf) ** 2) + jbnp.sum(jbnp.where(mask, w, 0.0))
        return total

    want = 2 * 1.5 * (data**2).sum() + (data > 2.0).sum()
    assert tape.grad(f)(1.5) == want
    assert tape.jvp(f, (1.5,), (1.0,))[1] == want
    out, pullback = tape.vjp(lambda w, x: w * x, 1.5, data)
    data[:] = 0.0  # written after the forward pass, before the pullback runs
    w_bar, x_bar = pullback(np.ones((3, 2)))
    assert w_bar == 21.0 and np.all(x_bar == 1.5)  # d/dw sum(w x) = sum x, before the write


def test_a_float64_numpy_input_beside_a_jax_constant_gives_its_gradient_without_a_warning() \
        -> None:
    # The cotangent of a NumPy float64 input, computed by JAX in float32 (a jnp constant
    # took part), was cast with .astype(float64): with x64 off JAX warned "Explicitly
    # requested dtype float64 requested in astype is not available" on every call.
    x, a = np.arange(3.0), jnp.ones((2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = tape.grad(lambda x: jbnp.sum(a @ x))(x)
    np.testing.assert_allclose(got, jax.grad(lambda x: jnp.sum(a @ x))(jnp.asarray(x)))
