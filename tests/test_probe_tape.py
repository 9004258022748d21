"""Inputs a new user tries that nobody listed: each once gave a silently wrong number or
an unhelpful error. Every number is checked against an independent source (``jax.grad``,
a closed form)."""

from __future__ import annotations

from typing import Any

import pytest

from jaxbackprop import tape


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
