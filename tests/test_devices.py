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


def test_the_backend_names_come_without_importing_jax() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom jaxbackprop import devices\n"
                               "print(devices.BACKENDS, 'jax' in sys.modules)"],
        capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "('cpu', 'gpu', 'tpu') False"


def test_the_gpu_hint_leads_with_jaxs_current_cuda() -> None:
    hint = devices.INSTALL_HINTS["gpu"]
    assert hint.index("jax[cuda13]") < hint.index("jax[cuda12]")
    assert "jaxbackprop[cuda13]" in hint
