"""The graph as text: each step of the lecture, each number beside its formula."""

from __future__ import annotations

import numpy as np
import pytest

from jaxbackprop import lecture
from jaxbackprop.graph import format_number


def test_format_number_prints_like_the_lecture() -> None:
    assert format_number(1.0) == "1"
    assert format_number(-2.0) == "-2"
    assert format_number(-7.84) == "-7.84"
    assert format_number(-0.0) == "0"
    assert format_number(np.float32(0.1951)) == "0.1951"
    assert format_number(None) == "n/a"
    assert format_number(np.array([1.0, 2.5])) == "[1. , 2.5]"


def test_table_views_grow_step_by_step() -> None:
    g = lecture.linear_regression(1.0, 2.0, 1.0)
    forward, local, backward = g.table("forward"), g.table("local"), g.table("backward")
    assert "1. Forward pass" in forward and "2. Local" not in forward
    assert "2. Local gradients" in local and "3. Backward" not in local
    assert backward.startswith(local)
    lines = backward.splitlines()
    assert any(line.split() == ["dL/ds", "=", "2s", "=", "-2"] for line in lines)
    assert any(line.split()[:2] == ["dL/dw", "="] and line.split()[-1] == "-2" for line in lines)
    assert any("dL/dx" in line and "not needed: fixed data" in line for line in lines)


def test_lookup_errors_name_what_exists() -> None:
    g = lecture.linear_regression()
    with pytest.raises(KeyError, match="y_hat"):
        g.value("nope")
    with pytest.raises(ValueError, match="view must be one of"):
        g.table("sideways")  # type: ignore[arg-type]


def test_fan_out_shows_each_share_and_their_sum() -> None:
    from jaxbackprop import tape

    # f(x) = x / (x + 1): x is used twice. df/dx = 1/(x+1)^2 = 1/9 at x = 2.
    rows = [line.split() for line in tape.walkthrough(lambda x: x / (x + 1.0), 2.0)
            .table("backward").splitlines()]
    shares = [float(r[-1]) for r in rows if r[:2] == ["dv2/dx", "+="]]
    assert sorted(shares) == pytest.approx([-2.0 / 9.0, 1.0 / 3.0], abs=1e-4)  # 1/(x+1), -x/(x+1)^2
    total = [r for r in rows if r[:2] == ["dv2/dx", "="] and "sum" in r]
    assert len(total) == 1 and float(total[0][-1]) == pytest.approx(1.0 / 9.0, abs=1e-4)


def test_each_heading_says_what_its_graph_does() -> None:
    from jaxbackprop import tape

    # the node z = x * y has no loss: its forward block is not headed "compute the loss"
    xy = lecture.multiply_node(2.0, 3.0).table("local")
    assert xy.startswith("1. Forward pass: each value from its inputs\n")
    assert "loss" not in xy
    assert tape.walkthrough(lambda x: x * 2.0, 1.0).table("forward").startswith(
        "1. Forward pass: each value from its inputs")


def test_uses_count_the_paths_back() -> None:
    from jaxbackprop import tape

    assert lecture.linear_regression().uses() == {"w": 1, "x": 1, "y": 1, "y_hat": 1, "s": 1,
                                                  "L": 0}
    assert tape.walkthrough(lambda x: x / (x + 1.0), 2.0).uses()["x"] == 2


def test_format_number_shows_nan_inf_and_huge_numbers_as_such() -> None:
    assert format_number(float("nan")) == "nan"
    assert format_number(float("inf")) == "inf"
    assert format_number(-np.inf) == "-inf"
    assert format_number(3.0e20) == "3.0000e+20"
    assert format_number(-999999.0) == "-999999"


def test_chain_product_writes_the_chain_rule_with_numbers() -> None:
    from jaxbackprop.graph import chain_product

    g = lecture.linear_regression(1.0, 2.0, 1.0)
    (edge,) = g.operation("s").local_gradients[:1]
    assert chain_product(g, edge) == ("dL/dy_hat = dL/ds * ds/dy_hat", "= -2 * 1 = -2")
    assert chain_product(g, edge, shared=True)[0].startswith("dL/dy_hat += ")


def test_repr_is_short_and_the_table_is_the_pretty_text() -> None:
    g = lecture.linear_regression()
    assert repr(g) == "Graph(6 values: w, x, y, y_hat, s, L; 3 operations; output 'L')"

    class Printer:
        def __init__(self) -> None:
            self.out = ""

        def text(self, s: str) -> None:
            self.out += s

    printer = Printer()
    g._repr_pretty_(printer, False)
    assert printer.out == repr(g) + "\n" + g.table()


def test_format_value_is_one_line_and_large_arrays_are_their_shape() -> None:
    from jaxbackprop.graph import format_value

    assert format_value(np.arange(4.0).reshape(2, 2)) == "[[0., 1.], [2., 3.]]"
    assert format_value(np.zeros((3, 4))) == "array(3, 4)"
    assert format_value(-2.0) == "-2"
