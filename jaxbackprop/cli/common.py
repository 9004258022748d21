"""What every subcommand shares: argument types, the backend option, one-line errors."""

from __future__ import annotations

import argparse
import contextlib
import math
from typing import Iterator

import jax

from jaxbackprop import devices


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


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """``--backend cpu|gpu|tpu`` (default: JAX's own choice)."""
    parser.add_argument("--backend", choices=devices.BACKENDS, default=None,
                        help="run on this JAX backend (default: JAX's default backend)")


def add_x64_option(parser: argparse.ArgumentParser) -> None:
    """``--x64``: compute in float64 (JAX's x64 mode) instead of float32."""
    parser.add_argument("--x64", action="store_true",
                        help="compute in float64 (jax_enable_x64) instead of float32")


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
def on_backend(backend: str | None) -> Iterator[None]:
    """Run the block on ``backend``'s first device (a one-line CommandError if absent)."""
    if backend is None:
        yield
        return
    try:
        device = devices.select(backend)
    except devices.BackendUnavailableError as error:
        raise CommandError(str(error)) from None
    with jax.default_device(device):
        yield


def enable_x64(flag: bool) -> None:
    """Turn on JAX's float64 mode when ``flag`` is set (before any array is made)."""
    if flag:
        jax.config.update("jax_enable_x64", True)
