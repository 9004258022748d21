"""Choosing a backend: what JAX sees, and one clear line when a backend is missing."""

from __future__ import annotations

import jax
import pytest

from jaxbackprop import devices


def test_cpu_is_always_there() -> None:
    assert devices.select("cpu").platform == "cpu"
    info = devices.describe()
    assert info["jax_version"] == jax.__version__
    assert info["device_count"] == len(info["devices"]) >= 1


def test_unknown_backend_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="backend must be one of cpu, gpu, tpu"):
        devices.select("quantum")


@pytest.mark.skipif(any(d.platform == "gpu" for d in jax.devices()), reason="a GPU is present")
def test_missing_gpu_says_how_to_install_it() -> None:
    with pytest.raises(devices.BackendUnavailableError) as info:
        devices.select("gpu")
    message = str(info.value)
    assert "\n" not in message and 'pip install "jax[cuda13]"' in message
