"""What every experiment script shares: its command line, its results folder, its tables.

Each script ``experiments/<name>.py`` takes ``--out DIR`` (default ``results/<name>/``)
and ``--quick`` (a problem small enough for the tests), prints its numbers, and writes
its figures and tables through :class:`Results`, atomically (:mod:`jaxbackprop.io`).
A bad argument or an unwritable folder ends the script with one line and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax

from jaxbackprop import draw
from jaxbackprop.cli.common import positive_int
from jaxbackprop.cli.main import OneLineParser
from jaxbackprop.graph import VIEWS, Graph, View, format_number
from jaxbackprop.io import write_csv_atomic, write_json_atomic, write_text_atomic


def at_most(largest: int) -> Callable[[str], int]:
    """An argparse type: a whole number from 1 to ``largest`` (a size this machine runs)."""
    def whole(text: str) -> int:
        value = positive_int(text)
        if value > largest:
            raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {largest:,}, "
                                             f"got {value}")
        return value
    return whole


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The script's parser with ``--out`` and ``--quick``; add the script's own options."""
    p = OneLineParser(prog=f"experiments/{name}.py", description=description)
    p.add_argument("--out", type=Path, default=Path("results") / name, metavar="DIR",
                   help="write the figures and tables here (default: %(default)s)")
    p.add_argument("--quick", action="store_true",
                   help="a small problem that runs in seconds (used by the tests)")
    return p


class Results:
    """The folder an experiment writes into; every file is written atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written: list[Path] = []

    def _keep(self, path: Path) -> Path:
        self.written.append(path)
        return path

    def text(self, name: str, text: str) -> Path:
        return self._keep(write_text_atomic(self.folder / name, text.rstrip("\n") + "\n"))

    def json(self, name: str, data: Any) -> Path:
        return self._keep(write_json_atomic(self.folder / name, data))

    def csv(self, name: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
        return self._keep(write_csv_atomic(self.folder / name, header, rows))

    def figure(self, name: str, fig: Any) -> Path:
        return self._keep(draw.write_figure(fig, self.folder / name))

    def graph(self, stem: str, graph: Graph, views: Sequence[View] = VIEWS) -> None:
        """``<stem>_<view>.dot`` always; ``.svg`` and ``.png`` when a renderer is installed
        (otherwise one note on stderr naming ``pip install graphviz-pure``)."""
        for view in views:
            self._keep(draw.write_graph(graph, self.folder / f"{stem}_{view}.dot", view))
        try:
            for view in views:
                for suffix in (".svg", ".png"):
                    path = self.folder / f"{stem}_{view}{suffix}"
                    self._keep(draw.write_graph(graph, path, view))
        except draw.RendererNotFoundError as error:
            print(f"note: pictures skipped, the .dot files are written: {error}", file=sys.stderr)


def best_time(fn: Callable[[], Any], repeats: int, warm_up: bool = True) -> float:
    """The fastest of ``repeats`` timed calls, in seconds, after one untimed call
    (compilation, caches) unless ``warm_up`` is False.

    The fastest, not the median: on a shared machine the slower calls time the neighbours.
    """
    if warm_up:
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows as aligned text; numbers printed as the lecture prints them."""
    cells = [list(header)] + [[c if isinstance(c, str) else format_number(c, 6) for c in row]
                              for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths)] + lines[1:])


def run(main: Callable[[argparse.Namespace, Results], int | None], args: argparse.Namespace) -> int:
    """Call ``main(args, results)``; report its written files, or one line on failure."""
    results = Results(args.out)
    try:
        code = main(args, results) or 0
        print(f"\nwrote {len(results.written)} files into {args.out}/")
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ValueError, OSError, FloatingPointError) as error:  # bad input, diverged training
        print(f"{sys.argv[0]}: error: {error}", file=sys.stderr)
        return 2
    except MemoryError as error:  # sizes this machine cannot hold (NumPy's allocation)
        print(f"{sys.argv[0]}: error: out of memory: {error}", file=sys.stderr)
        return 2
    except jax.errors.JaxRuntimeError as error:  # ...or XLA's
        if "RESOURCE_EXHAUSTED" not in str(error):
            raise
        print(f"{sys.argv[0]}: error: out of memory: {str(error).splitlines()[0]}",
              file=sys.stderr)
        return 2
    return code
