"""``jaxbackprop bench``: measure jaxbackprop beside its peers and print the tables.

    jaxbackprop bench                                   # the full run (minutes)
    jaxbackprop bench --quick --out bench.json          # a smoke run, with the JSON
    jaxbackprop bench --out docs/benchmarks.json --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from jaxbackprop.cli.common import (
    CommandError,
    add_backend_option,
    check_out,
    on_backend,
    positive_int,
)

SECTIONS: tuple[str, ...] = ("chain", "lecture", "sgd", "sweep")  # benchmark.cases (tested)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="measure jaxbackprop against PyTorch, micrograd, autograd and JAX",
        description="Time the tape's cost per node, the lecture's training, per-sample SGD "
                    "and sweeps beside PyTorch eager, micrograd, HIPS autograd, NumPy and "
                    "JAX itself, in one process; print each figure's median with its spread "
                    "as Markdown tables. Missing peers are reported as not installed.")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run with small sizes and few rounds (seconds)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, metavar="SECTION",
                        help=f"run only these sections, of: {', '.join(SECTIONS)} "
                             "(default: all)")
    parser.add_argument("--rounds", type=positive_int, default=None,
                        help="interleaved rounds per case (default: 7, or 3 with --quick)")
    parser.add_argument("--out", metavar="FILE.json", type=Path,
                        help="also write the report as JSON (its folder must exist)")
    parser.add_argument("--markdown", metavar="FILE.md", type=Path,
                        help="also write the tables as Markdown (its folder must exist)")
    add_backend_option(parser)
    parser.set_defaults(func=run)


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run, for the report."""
    words = ["jaxbackprop bench"]
    if args.quick:
        words.append("--quick")
    if args.sections:
        words.append("--sections " + " ".join(args.sections))
    if args.rounds:
        words.append(f"--rounds {args.rounds}")
    if args.backend:
        words.append(f"--backend {args.backend}")
    return " ".join(words)


@contextlib.contextmanager
def _progress_bar() -> Iterator[Callable[[str], None] | None]:
    """A tqdm bar on stderr (shown on a terminal only), advanced before each case;
    nothing if tqdm is not installed (it comes with the ``bench`` extra)."""
    try:
        from tqdm import tqdm  # pyright: ignore[reportMissingModuleSource] (an optional extra)
    except ImportError:
        yield None
        return
    with tqdm(unit=" cases", file=sys.stderr, disable=None) as bar:
        def progress(label: str) -> None:
            bar.set_description(label)
            bar.update()
        yield progress


def run(args: argparse.Namespace) -> int:
    check_out("--out", args.out, (".json",))
    check_out("--markdown", args.markdown, (".md",))
    with on_backend(args.backend):
        from jaxbackprop import benchmark
        from jaxbackprop.io import write_json_atomic, write_text_atomic

        settings = benchmark.QUICK if args.quick else benchmark.FULL
        if args.rounds:
            settings = dataclasses.replace(settings, rounds=args.rounds)
        with _progress_bar() as progress:
            report = benchmark.run(settings, args.sections, _command(args), progress)
    markdown = benchmark.to_markdown(report)
    print(markdown, end="")
    try:
        if args.out:
            write_json_atomic(args.out, report)
        if args.markdown:
            write_text_atomic(args.markdown, markdown)
    except OSError as error:
        raise CommandError(f"cannot write the report: {error}") from None
    return 0
