"""``jaxbackprop``: parse the command line, dispatch to a subcommand, report errors in one line.

Each subcommand lives in its own module of this package with two functions:
``register(subparsers)`` adds its parser and sets ``func`` to ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from jaxbackprop import __version__
from jaxbackprop.cli.common import CommandError

# The subcommands, in the order `--help` lists them: (module in this package, summary).
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jaxbackprop`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CommandError as error:
        print(f"jaxbackprop {args.command}: error: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        print(f"jaxbackprop {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`jaxbackprop train | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
