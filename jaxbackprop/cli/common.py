"""What every subcommand shares: argument types, checks made before any work, one-line errors.

Nothing here imports JAX at module level: building the parser and ``--help`` stay instant,
and each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from jaxbackprop.devices import BACKENDS, INSTALL_HINTS

FLOAT32_MAX = 3.4028234663852886e38  # numpy.finfo(numpy.float32).max, without numpy
FLOAT32_SMALLEST = 1.401298464324817e-45  # the smallest positive float32 (a subnormal)


class CommandError(Exception):
    """An error the CLI reports as one line, exiting with ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def finite_float(text: str) -> float:
    """An argparse type: a finite number (rejects ``abc``, ``nan``, ``inf``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def check_float32(x64: bool, **values: float | None) -> None:
    """Refuse, naming the option, a value that float32 cannot hold (unless ``--x64``)."""
    for name, value in values.items():
        if value is not None and not x64 and abs(value) > FLOAT32_MAX:
            raise CommandError(f"--{name} {value:g} overflows float32 (largest "
                               f"{FLOAT32_MAX:.4g}); pass a smaller value, or --x64")


def check_rate_float32(x64: bool, option: str, rate: float | None) -> None:
    """Refuse a positive rate that float32 rounds to 0 (unless ``--x64``): training with it
    would silently change nothing."""
    if rate is not None and not x64 and 0 < rate <= FLOAT32_SMALLEST / 2:
        raise CommandError(f"--{option} {rate:g} becomes 0 in float32 (smallest positive "
                           f"{FLOAT32_SMALLEST:.4g}), so training would change nothing; "
                           "pass a larger value, or --x64")


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """``--backend cpu|gpu|tpu`` (default: JAX's own choice)."""
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="run on this JAX backend (default: JAX's default backend)")


def add_x64_option(parser: argparse.ArgumentParser) -> None:
    """``--x64``: compute in float64 (JAX's x64 mode) instead of float32."""
    parser.add_argument("--x64", action="store_true",
                        help="compute in float64 (jax_enable_x64) instead of float32")


def check_out(option: str, path: Path | None, suffixes: tuple[str, ...]) -> None:
    """Before any work: ``path`` has a known suffix and its folder exists and is writable.

    The folder is never created: a mistyped path is reported, not made.
    """
    if path is None:
        return
    if path.suffix.lower() not in suffixes:
        raise CommandError(f"{option} must end in {' or '.join(suffixes)}, got {str(path)!r}")
    folder = path.parent
    if path.is_dir():
        raise CommandError(f"{option} {str(path)!r} is a folder; expected a file name")
    if not folder.exists():
        raise CommandError(f"{option} {str(path)!r}: the folder {str(folder)!r} does not exist "
                           "(create it first)")
    if not folder.is_dir():
        raise CommandError(f"cannot write {option} {str(path)!r}: {str(folder)!r} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CommandError(f"cannot write {option} {str(path)!r}: the folder {str(folder)!r} "
                           "is not writable")


def check_out_folder(option: str, folder: Path | None) -> None:
    """Before any work: the folder to write into exists and is writable (never created)."""
    if folder is None:
        return
    if not folder.is_dir():
        raise CommandError(f"{option} {str(folder)!r}: "
                           f"{'not a folder' if folder.exists() else 'no such folder'} "
                           "(create it first)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CommandError(f"{option} {str(folder)!r}: the folder is not writable")


@contextlib.contextmanager
def writing(what: str) -> Iterator[None]:
    """Report a failed write of ``what`` as one line: a missing optional package (the
    ``draw`` extra), a missing or failing renderer, or an OS error (a bad path, no space)."""
    try:
        yield
    except ImportError as error:
        raise CommandError(str(error)) from None
    except (RuntimeError, OSError) as error:  # draw.RendererNotFoundError is a RuntimeError
        raise CommandError(f"cannot write {what}: {error}") from None


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then deliver them. Used while JAX and
    the library are imported: a KeyboardInterrupt inside an import is caught and logged
    with its traceback by some importers (JAX's plugin discovery), not passed on."""
    held = {signal.SIGINT, signal.SIGTERM}
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


def start_jax(backend: str | None, x64: bool = False) -> str:
    """Import JAX and the library's core and start JAX's backend (Ctrl-C and SIGTERM
    are held meanwhile, and delivered after); return the default backend's name.

    A bad ``JAX_PLATFORMS`` or a backend that is not installed becomes one line.
    """
    with _signals_held():
        import jax

        import jaxbackprop.lecture
        import jaxbackprop.train  # noqa: F401  (imported here, under the held signals)

        if x64:
            jax.config.update("jax_enable_x64", True)
        try:
            jax.devices()
        except RuntimeError as error:
            platforms = os.environ.get("JAX_PLATFORMS", "")
            raise CommandError(
                f"JAX cannot start (JAX_PLATFORMS={platforms!r}): "
                f"{str(error).splitlines()[0]}; for a GPU: {INSTALL_HINTS['gpu']}",
                code=1) from None
    return jax.default_backend()


@contextlib.contextmanager
def on_backend(backend: str | None, x64: bool = False) -> Iterator[str]:
    """Start JAX (:func:`start_jax`) and run the block on ``backend``'s first device (a
    one-line CommandError if absent); yields the backend's name."""
    default = start_jax(backend, x64)
    if backend is None:
        yield default
        return
    import jax

    from jaxbackprop import devices

    try:
        device = devices.select(backend)
    except devices.BackendUnavailableError as error:
        raise CommandError(str(error)) from None
    with jax.default_device(device):
        yield backend
