"""Which accelerators JAX sees, and choosing one.

    jb.devices.select("gpu")    # the first GPU, or BackendUnavailableError with the fix
    jb.devices.describe()       # what JAX sees, as a dict

JAX installs from PyPI as a CPU build. GPU and TPU support are JAX's own extras, passed
through by this package as JAX's install guide names them: ``pip install
"jaxbackprop[cuda13]"`` (or ``[cuda12]``, ``[tpu]``) is ``pip install "jax[cuda13]"``
underneath.

JAX is imported when a function here is called, not with the module, so the command
line can list :data:`BACKENDS` in its ``--help`` without starting JAX.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jax

BACKENDS: tuple[str, ...] = ("cpu", "gpu", "tpu")

# The commands of JAX's install guide (https://docs.jax.dev/en/latest/installation.html),
# the current CUDA first, and this package's extras that pass them through.
INSTALL_HINTS: dict[str, str] = {
    "cpu": 'pip install "jax"',
    "gpu": 'pip install "jax[cuda13]" (or "jax[cuda12]"; the extras '
           "jaxbackprop[cuda13] and jaxbackprop[cuda12] do the same)",
    "tpu": 'pip install "jax[tpu]" (the extra jaxbackprop[tpu] does the same)',
}


class BackendUnavailableError(RuntimeError):
    """The requested backend is not installed or has no device; the message says how to get it."""


# jax.Device is JAX's documented device type, exported as a variable (`Device = _xc.Device`),
# which pyright does not accept as a type; the ignore is for that export only.
def select(backend: str) -> jax.Device:  # pyright: ignore[reportInvalidTypeForm]
    """The first device of ``backend`` (``"cpu"``, ``"gpu"`` or ``"tpu"``).

    Args:
      backend: one of :data:`BACKENDS`.

    Returns:
      The backend's first device, for ``jax.default_device`` or ``jax.device_put``.

    Raises:
      ValueError: ``backend`` is not one of :data:`BACKENDS`.
      BackendUnavailableError: JAX has no such device here (one line, with the install
        command).

    >>> select("cpu").platform
    'cpu'
    """
    import jax

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
    """What JAX sees: its version, the default backend, every device, whether x64 is on.

    >>> describe()["default_backend"] in BACKENDS
    True
    """
    import jax

    return {
        "jax_version": jax.__version__,
        "default_backend": jax.default_backend(),
        "devices": [f"{d.platform}:{d.id} {d.device_kind}" for d in jax.devices()],
        "device_count": jax.device_count(),
        "process_count": jax.process_count(),
        "x64": bool(jax.config.read("jax_enable_x64")),
    }
