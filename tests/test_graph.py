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
