"""``jaxbackprop``: parse the command line, dispatch to a subcommand, report errors in one line.

Each subcommand lives in its own module of this package with two functions:
``register(subparsers)`` adds its parser and sets ``func`` to ``run(args) -> int``.
The modules import JAX, NumPy and matplotlib inside ``run`` only, so that building the
parser, ``--help`` and ``--version`` answer at once.

Every way a command can fail ends with one line on stderr and a non-zero exit code:
a usage error (2), a :class:`~jaxbackprop.cli.common.CommandError` (its code), a standard
output that is full or closed (1), Ctrl-C at any moment (130, "interrupted"), SIGTERM
(143, "terminated").
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from jaxbackprop import __version__
from jaxbackprop.cli.common import CommandError

# The subcommands, in the order `--help` lists them (modules of this package).
COMMANDS: tuple[str, ...] = ("lecture", "train", "graph", "bench")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="jaxbackprop",
        description="Backpropagation, the lecture, in JAX: jax.grad beside a hand-written tape.",
    )
    parser.add_argument("--version", action="version", version=f"jaxbackprop {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND",
                                       parser_class=OneLineParser)
    for name in COMMANDS:
        importlib.import_module(f"jaxbackprop.cli.{name}").register(subparsers)
    return parser


class _Signalled:
    """Which signal stopped the command: a handler records it before raising, so that an
    exception a library made of the interruption (NumPy turns a KeyboardInterrupt inside
    array creation into a ValueError) is still reported as the interruption."""

    signum: int | None = None

    @classmethod
    def interrupt(cls, signum: int, frame: FrameType | None) -> None:
        cls.signum = signum
        raise KeyboardInterrupt

    @classmethod
    def terminate(cls, signum: int, frame: FrameType | None) -> None:
        cls.signum = signum
        raise SystemExit(128 + signum)  # unwinds: atomic writes remove their temporary file


def _quiet_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's last flush is silent."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


# What a write to a full, closed or broken standard output raises (files the commands
# write are reported by the commands themselves, with their names).
_STDOUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EBADF, errno.EPIPE}


def _fail(command: str, message: str, code: int) -> int:
    prefix = command if command == "jaxbackprop" else f"jaxbackprop {command}"
    print(f"{prefix}: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jaxbackprop`` console script; returns the exit code."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    _Signalled.signum = None
    signal.signal(signal.SIGINT, _Signalled.interrupt)
    signal.signal(signal.SIGTERM, _Signalled.terminate)
    command = "jaxbackprop"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        command = args.command
        if sys.stdout is None:  # started with standard output closed (`>&-`)
            return _fail(command, "error: standard output is closed", 1)
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except CommandError as error:
        if _Signalled.signum == signal.SIGINT:  # made of the interruption (see _Signalled)
            _quiet_stdout()
            return _fail(command, "interrupted", 130)
        return _fail(command, f"error: {error}", error.code)
    except BrokenPipeError:  # the reader went away (`jaxbackprop train | head`): stop quietly
        _quiet_stdout()
        return 141
    except SystemExit:  # argparse: --help, --version, a usage error
        if _Signalled.signum == signal.SIGTERM:
            return _fail(command, "terminated", 128 + signal.SIGTERM)
        if _Signalled.signum != signal.SIGINT:
            raise
        _quiet_stdout()
        return _fail(command, "interrupted", 130)
    except BaseException as error:
        if _Signalled.signum == signal.SIGINT or isinstance(error, KeyboardInterrupt):
            _quiet_stdout()
            return _fail(command, "interrupted", 130)
        if isinstance(error, MemoryError) or "RESOURCE_EXHAUSTED" in str(error)[:100]:
            message = str(error).splitlines()[0] if str(error) else "out of memory"
            return _fail(command, f"error: {message}", 1)
        if isinstance(error, OSError) and error.filename is None and \
                error.errno in _STDOUT_ERRNOS:  # standard output full (`> /dev/full`), closed
            _quiet_stdout()
            return _fail(command, f"error: cannot write to standard output: "
                                  f"{error.strerror or error}", 1)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
