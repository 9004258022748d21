"""The tape at scale: a million-node chain, memory linear in its length, no reference cycles.

Speed is measured by the benchmark, not here; these tests assert only structure.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from jaxbackprop import tape
from jaxbackprop.tape.core import backward_pass, recording

RATE = 1.0000001


def chain(length: int) -> Callable[[Any], Any]:
    """``x * RATE * RATE * ...``: ``length`` nodes, derivative ``RATE ** length``."""

    def f(x: Any) -> Any:
        for _ in range(length):
            x = x * RATE
        return x

    return f


@contextmanager
def recursion_limit(extra: int) -> Iterator[None]:
    """Allow only ``extra`` more nested Python calls than the caller already uses."""
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + extra)
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def test_a_million_node_chain_needs_no_recursion() -> None:
    n = 1_000_000
    with recursion_limit(60):  # a recursive backward pass would need a million frames
        value, slope = tape.value_and_grad(chain(n))(1.0)
    assert value == pytest.approx(RATE**n, rel=1e-9)
    assert slope == pytest.approx(RATE**n, rel=1e-9)  # d/dx (x * RATE**n)


def peak_bytes(f: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        f()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_grows_linearly_with_the_chain() -> None:
    small, large = (peak_bytes(lambda n=n: tape.grad(chain(n))(1.0)) for n in (25_000, 50_000))
    assert 1.8 < large / small < 2.2, (small, large)
    # Bytes per node (measured 257): one Equation row (five slots, 80 with the collector's
    # header), its tuples of parents and of inputs (64 each), the output float (32) and its
    # index (32); an equation without params shares one empty dict. (The tape kept flat
    # columns of numbers before, about 112 bytes a node; issue 9 traded them for rows.)
    assert large / 50_000 < 280


def tracked_objects_added_by(f: Callable[[], Any]) -> int:
    """How many more objects the garbage collector tracks while ``f()``'s result lives."""
    gc.collect()
    gc.disable()  # a collection would stop tracking tuples of numbers, hiding them
    try:
        before = len(gc.get_objects())
        kept = f()  # noqa: F841  (alive while we count)
        return len(gc.get_objects()) - before
    finally:
        gc.enable()


def test_a_recorded_tape_holds_a_fixed_number_of_containers_per_equation() -> None:
    # One row per equation and its two tuples (parents, inputs): the count is linear in
    # the tape's length, with nothing else per equation for the collector to scan.
    n = 20_000
    added = tracked_objects_added_by(lambda: tape.vjp(chain(n), 1.0))
    assert 3 * n <= added < 3 * n + 100, added
    # The control: a tuple per element is seen by the same count.
    assert tracked_objects_added_by(lambda: [(i, -1) for i in range(n)]) >= n


def test_backward_drops_each_cotangent_once_passed_on() -> None:
    n = 5
    with recording() as t:
        x = t.new_var(1.0)
        y = chain(n)(x)
    kept = backward_pass(t, y.index, 1.0, keep_intermediate=True)
    # Variable j is x * RATE**j, so d y / d v_j = RATE**(n - j).
    assert kept == pytest.approx([RATE ** (n - j) for j in range(n + 1)], rel=1e-12)
    dropped = backward_pass(t, y.index, 1.0)
    assert dropped[0] == kept[0]  # the input's cotangent, the one a gradient needs
    assert dropped[1:] == [None] * n


def cycles_left_by(f: Callable[[], Any]) -> int:
    """How many objects only the cycle collector can free after ``f()``."""
    gc.collect()
    gc.disable()  # else an automatic collection could free the cycles before we count them
    try:
        f()
        return gc.collect()
    finally:
        gc.enable()


def test_recording_creates_no_reference_cycles() -> None:
    for n in (1_000, 30_000):
        assert cycles_left_by(lambda n=n: tape.grad(chain(n))(1.0)) == 0
        assert cycles_left_by(lambda n=n: tape.walkthrough(chain(n // 100), 1.0)) == 0


def test_the_cycle_count_can_see_micrograds_cycles() -> None:
    # The control: micrograd's closures make a cycle per node, and the count finds them.
    engine = pytest.importorskip("micrograd.engine")

    def micrograd_chain(n: int) -> None:
        y = chain(n)(engine.Value(1.0))
        y.backward()

    assert cycles_left_by(lambda: micrograd_chain(100)) >= 100
