"""The tape's steps beside ``jax.make_jaxpr(jax.grad(f))``: every JAX equation, in JAX's
order, printed as JAX prints it, next to the tape's line for the same step."""

from __future__ import annotations

import jax
import numpy as np

import jaxbackprop.numpy as jbnp
from jaxbackprop import lecture
from jaxbackprop.jaxpr import align, side_by_side
from jaxbackprop.model import loss


def jax_equation_lines(f, *args) -> list[str]:
    """JAX's own printing of the equations of ``jax.make_jaxpr(jax.grad(f))(*args)``."""
    text = str(jax.make_jaxpr(jax.grad(f))(*args))
    body = text.split(" let\n", 1)[1].split("\n  in ", 1)[0]
    return [line.strip() for line in body.splitlines()]


def test_lecture_loss_rows_pair_each_step() -> None:
    x, y, w = lecture.EXAMPLE_FIRST_NOTE
    alignment = align(loss, w, x, y)
    pairs = {(row.step, row.tape): row.jaxpr for row in alignment.rows}
    assert pairs["forward", "y_hat = mul(w, x) = 1"] == "d:f32[] = mul a b"
    assert pairs["forward", "s = sub(y_hat, y) = -1"] == "e:f32[] = sub d c"
    assert pairs["forward", "L = integer_pow[n=2](s) = 1"] == "_:f32[] = integer_pow[y=2] e"
    assert pairs["local", "dL/ds = 2s = -2"] == "f:f32[] = mul 2.0:f32[] e"
    assert pairs["backward", "dL/ds += dL/dL * dL/ds = -2"] == "g:f32[] = mul 1.0:f32[] f"
    assert pairs["backward", "dL/dy_hat += dL/ds * ds/dy_hat = -2"] == ""  # sub: the identity
    assert pairs["backward", "dL/dw += dL/dy_hat * dy_hat/dw = -2"] == "h:f32[] = mul g b"
    assert alignment.names == {"a": "w", "b": "x", "c": "y", "d": "y_hat", "e": "s"}


def test_jaxpr_column_is_jaxs_own_printing_in_order() -> None:
    x, y, w = lecture.EXAMPLE_SECOND_NOTE
    column = [row.jaxpr for row in align(loss, w, x, y).rows if row.jaxpr]
    assert column[:-1] == jax_equation_lines(loss, w, x, y)
    assert column[-1] == "in (h)"


def test_every_equation_appears_once_for_a_bigger_function() -> None:
    def f(w, x):
        return jbnp.sum(jbnp.exp(w * x) / 2.0 - w)

    w, x = np.ones(3), np.arange(3.0)
    alignment = align(f, w, x)
    column = [row.jaxpr for row in alignment.rows if row.jaxpr and not row.jaxpr.startswith("in (")]
    eqns = jax.make_jaxpr(jax.grad(f))(w, x).jaxpr.eqns
    assert [line.split(" = ", 1)[1].split()[0].split("[")[0] for line in column] == \
        [eqn.primitive.name for eqn in eqns]
    pairs = {row.tape.split(" = ")[0]: row.jaxpr for row in alignment.rows}
    assert pairs["v3"] == "d:f32[3] = exp c"
    assert pairs["v4"] == "e:f32[3] = div d 2.0:f32[]"
    # JAX transposes ``v3 / 2`` into a division, ``exp`` into a product with its output
    assert pairs["dv6/dv3 += dv6/dv4 * dv4/dv3"] == "i:f32[3] = div g 2.0:f32[]"
    assert pairs["dv6/dv2 += dv6/dv3 * dv3/dv2"] == "j:f32[3] = mul i d"
    steps = [row.step for row in alignment.rows]
    assert steps == sorted(steps, key=["forward", "local", "backward"].index)


def test_side_by_side_text_lines_up() -> None:
    x, y, w = lecture.EXAMPLE_FIRST_NOTE
    text = side_by_side(loss, w, x, y)
    lines = text.splitlines()
    assert lines[0].split() == ["hand-written", "tape", "jax.make_jaxpr(jax.grad(loss))"]
    assert "jaxpr names: a = w, b = x, c = y, d = y_hat, e = s" in lines[1]
    column = lines[0].index("jax.make_jaxpr")
    row = next(line for line in lines if line.startswith("dL/dw += "))
    assert row[column:] == "h:f32[] = mul g b"
    assert [line.split(" ")[1] for line in lines if line.startswith("-- ")] == ["1.", "2.", "3."]


def test_two_partials_of_one_equation_are_not_paired_by_position() -> None:
    """x ** y: JAX transposes the y-partial first (``m = mul 1.0 l``, l = v2 log x) and
    computes each partial in several lines; beside "dv2/dx += ..." it would sit wrongly."""
    alignment = align(lambda x, y: x ** y, 2.0, 3.0, argnums=(0, 1))
    backward = [row for row in alignment.rows if row.step == "backward"]
    tape_rows = {row.tape: row.jaxpr for row in backward if row.tape}
    assert tape_rows["dv2/dx += dv2/dv2 * dv2/dx = 12"] == ""
    assert tape_rows["dv2/dy += dv2/dv2 * dv2/dy = 5.5452"] == ""
    assert [row.jaxpr for row in backward if row.jaxpr and not row.tape][:2] == [
        "m:f32[] = mul 1.0:f32[] l", "n:f32[] = mul 1.0:f32[] h"]
    assert all(row.jaxpr == "" for row in alignment.rows
               if row.step == "local" and row.tape)  # the two partials, listed first
