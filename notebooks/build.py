"""Regenerate the notebooks: each ``NN_*.py`` (jupytext percent format, the source of
truth) becomes ``NN_*.ipynb``, executed top to bottom in a fresh ``python3`` kernel that
imports this checkout, with its outputs stored.

    python notebooks/build.py              # all of them
    python notebooks/build.py 02 03        # those whose names start so

Needs the ``docs`` extra (jupytext, nbclient, ipykernel) and the ``draw`` extra.
``tests/test_notebooks.py`` checks that every ``.ipynb`` holds its ``.py``'s cells.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TIMEOUT_S = 300  # for one cell


def sources() -> list[Path]:
    """The notebooks' text sources, in order."""
    return sorted(p for p in HERE.glob("[0-9][0-9]_*.py"))


def kernel_env() -> dict[str, str]:
    """The environment for the kernel: this checkout first on the import path."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def execute(source: Path) -> nbformat.NotebookNode:
    """``source`` read by jupytext and run in a fresh kernel, its cwd ``notebooks/``."""
    notebook = jupytext.read(source)
    client = NotebookClient(notebook, timeout=TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(HERE)}})
    client.execute(env=kernel_env())
    return notebook


def strip_volatile(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop or fix what changes on every run, so that a rebuild with the same outputs
    leaves the file unchanged: execution times and kernel versions go, cell ids are
    numbered, and a cell's consecutive prints are one stream (the kernel flushes them in
    chunks of its own timing)."""
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index:02d}"
        cell.metadata.pop("execution", None)
        outputs: list[nbformat.NotebookNode] = []
        for out in cell.get("outputs", []):
            previous = outputs[-1] if outputs else None
            if (out.output_type == "stream" and previous is not None
                    and previous.output_type == "stream" and previous.name == out.name):
                previous.text += out.text
            else:
                outputs.append(out)
        if "outputs" in cell:
            cell.outputs = outputs
    notebook.metadata.pop("language_info", None)
    return notebook


def main(prefixes: list[str]) -> int:
    for source in sources():
        if prefixes and not any(source.name.startswith(p) for p in prefixes):
            continue
        start = time.perf_counter()
        notebook = strip_volatile(execute(source))
        target = source.with_suffix(".ipynb")
        nbformat.write(notebook, target)
        print(f"{target.relative_to(ROOT)}: executed in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
