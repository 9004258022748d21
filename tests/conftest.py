"""Shared test fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import jax
import pytest


@pytest.fixture(params=["float32", "float64"])
def float_mode(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test once in JAX's default float32 and once with x64 on (restored after)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", request.param == "float64")
    try:
        yield request.param
    finally:
        jax.config.update("jax_enable_x64", previous)
