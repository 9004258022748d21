"""Which accelerators JAX sees, and choosing one.

    jb.devices.select("gpu")    # the first GPU, or BackendUnavailableError with the fix
    jb.devices.describe()       # what JAX sees, as a dict

JAX installs from PyPI as a CPU build. GPU and TPU support are extras of JAX, passed
through by this package: ``pip install "jaxbackprop[cuda12]"`` (or ``[cuda13]``,
``[tpu]``), which is ``pip install "jax[cuda12]"`` underneath.
"""

from __future__ import annotations

from typing import Any

import jax

BACKENDS: tuple[str, ...] = ("cpu", "gpu", "tpu")

INSTALL_HINTS: dict[str, str] = {
    "cpu": 'pip install "jax"',
    "gpu": 'pip install "jax[cuda12]" (or "jax[cuda13]"; this package\'s extras jaxbackprop[cuda12]/[cuda13] do the same)',
    "tpu": 'pip install "jax[tpu]" (this package\'s extra jaxbackprop[tpu] does the same)',
}


class BackendUnavailableError(RuntimeError):
    """The requested backend is not installed or has no device; the message says how to get it."""


def select(backend: str) -> jax.Device:
    """The first device of ``backend`` (``"cpu"``, ``"gpu"`` or ``"tpu"``).

    Raises ``ValueError`` for a name that is not a backend, and
    :class:`BackendUnavailableError` (one line, with the install command) when JAX has no
    such device here.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    try:
        return jax.devices(backend)[0]
    except RuntimeError:
        present = ", ".join(sorted({d.platform for d in jax.devices()}))
        raise BackendUnavailableError(
            f"JAX has no {backend} device here (present: {present}); to use one: "
            f"{INSTALL_HINTS[backend]}"
        ) from None


def describe() -> dict[str, Any]:
    """What JAX sees: its version, the default backend, every device, whether x64 is on."""
    return {
        "jax_version": jax.__version__,
        "default_backend": jax.default_backend(),
        "devices": [f"{d.platform}:{d.id} {d.device_kind}" for d in jax.devices()],
        "device_count": jax.device_count(),
        "process_count": jax.process_count(),
        "x64": bool(jax.config.jax_enable_x64),
    }
