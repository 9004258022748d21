"""The tape at scale: a million-node chain, memory linear in its length, no reference cycles.

Speed is measured by the benchmark, not here; these tests assert only structure.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from typing import Any, Callable, Iterator
from contextlib import contextmanager

import pytest

from jaxbackprop import tape

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
    small, large = (peak_bytes(lambda: tape.grad(chain(n))(1.0)) for n in (25_000, 50_000))
    assert 1.8 < large / small < 2.2, (small, large)
    assert large / 50_000 < 400  # bytes per node: a few small objects, not a graph of closures


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
        assert cycles_left_by(lambda: tape.grad(chain(n))(1.0)) == 0
        assert cycles_left_by(lambda: tape.walkthrough(chain(n // 100), 1.0)) == 0


def test_the_cycle_count_can_see_micrograds_cycles() -> None:
    # The control: micrograd's closures make a cycle per node, and the count finds them.
    engine = pytest.importorskip("micrograd.engine")

    def micrograd_chain(n: int) -> None:
        y = chain(n)(engine.Value(1.0))
        y.backward()

    assert cycles_left_by(lambda: micrograd_chain(100)) >= 100
