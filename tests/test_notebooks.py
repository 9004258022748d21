"""The notebooks: each runs top to bottom in a fresh kernel and shows the lecture's numbers.

Every notebook's text source ``notebooks/NN_*.py`` (jupytext's percent format) is
executed by :mod:`notebooks.build`'s own function (nbclient, kernel ``python3``, this
checkout first on ``PYTHONPATH``), and its outputs are checked against the lecture's
printed numbers (``tests/lecture_trace.py``). The stored ``.ipynb`` files must hold the
same cells as their sources, executed, with the same numbers in their outputs.
"""

from __future__ import annotations

import html
import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("jupytext")
pytest.importorskip("matplotlib")
pytest.importorskip("graphviz")

import jupytext  # noqa: E402
import nbformat  # noqa: E402
from nbclient.exceptions import CellExecutionError  # noqa: E402

from jaxbackprop import lecture  # noqa: E402
from jaxbackprop.graph import format_number  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lecture_trace  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def _load_build() -> Any:
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build()
NAMES = [p.stem for p in build.sources()]


def test_the_four_notebooks_are_there() -> None:
    assert [n[:2] for n in NAMES] == ["01", "02", "03", "04"], NAMES


# ---------------------------------------------------------------------------------------
# Reading outputs


def cell_text(cell: Any) -> str:
    """Everything a code cell printed or showed as text, in order, streams joined."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(out.data.get("text/markdown", out.data.get("text/plain", "")))
    return "".join(parts)


def all_text(nb: Any) -> str:
    return "\n".join(cell_text(c) for c in nb.cells if c.cell_type == "code")


def outputs_of(nb: Any, mime: str) -> list[str]:
    return [out.data[mime] for c in nb.cells if c.cell_type == "code"
            for out in c.get("outputs", []) if "data" in out and mime in out.data]


def lines(nb: Any) -> list[str]:
    return all_text(nb).splitlines()


def has_lines(nb: Any, expected: list[str]) -> None:
    """``expected`` appear in the outputs as whole lines, in this order, one after another."""
    got = lines(nb)
    for start in range(len(got) - len(expected) + 1):
        if got[start:start + len(expected)] == expected:
            return
    raise AssertionError("lines not found in order:\n" + "\n".join(expected[:5]) + "\n...")


def shown_line(nb: Any, pattern: str) -> str:
    """The one output line that matches ``pattern`` (a regular expression)."""
    found = [ln for ln in lines(nb) if re.search(pattern, ln)]
    assert len(found) == 1, (pattern, found)
    return found[0]


# ---------------------------------------------------------------------------------------
# What each notebook must show: the lecture's numbers, from an independent source

LOSS_FIRST_NOTE = 1  # the first note: "tensor(1., grad_fn=<PowBackward0>)"
GRAD_FIRST_NOTE = -2  # "tensor(-2.)"
GRAD_SECOND_NOTE = -8  # the second note: "dloss/dw = -8" at x=2, y=4, w=1
PREDICT_AFTER = "7.8049"  # w after ten epochs times x = 4, at the trace's precision


def check_01(nb: Any) -> None:
    assert shown_line(nb, r"^loss = ") == f"loss = {LOSS_FIRST_NOTE}"
    assert shown_line(nb, r"^dL/dw = ") == f"dL/dw = {GRAD_FIRST_NOTE}"
    for route in ("jax.grad(loss)", "jb.tape.grad(loss)", "2 s x (closed form)"):
        assert shown_line(nb, "^" + re.escape(route)).split("=")[-1].strip() == "-2"
    svgs = outputs_of(nb, "image/svg+xml")
    assert len(svgs) >= 5, "a graph inline at each step (chain rule, node, three steps)"
    assert all("<svg" in s for s in svgs)
    assert any("dL/dw = -2" in html.unescape(s) for s in svgs), "the lecture's graph, backward"
    pages = outputs_of(nb, "text/html")
    assert any("<iframe" in p and "dL/dw" in p for p in pages), "the graph's stepping page"


def check_02(nb: Any) -> None:
    for route in (r"2 s x \(closed form\)", r"jax\.grad\(loss\)", r"tape\.grad\(loss\)"):
        assert shown_line(nb, "^" + route).split("=")[-1].strip() == str(GRAD_SECOND_NOTE)
    has_lines(nb, lecture_trace.lecture_lines())  # the note's trace, every printed line
    for epoch in range(lecture.EPOCHS):  # and the epochs the notes cut off
        assert sum(ln.startswith(f"progress: {epoch} ") for ln in lines(nb)) == 1
    x = format_number(lecture.X_PREDICT)
    assert f"Predict (before training) {x} {lecture_trace.PREDICTION_BEFORE:.4f}" in lines(nb)
    assert f"predict (after training) {x} {PREDICT_AFTER}" in lines(nb)
    assert "the same final weight as the loop above: True" in lines(nb)
    assert outputs_of(nb, "image/png"), "the curves, inline"
    assert shown_line(nb, r"^TrainHistory\(").startswith("TrainHistory(losses=float32[10, 3]")


def check_03(nb: Any) -> None:
    assert shown_line(nb, r"^dL/dw = ") == f"dL/dw = {GRAD_FIRST_NOTE}"
    assert shown_line(nb, r"^tape\.grad\(loss\)").endswith(f"= {GRAD_FIRST_NOTE}")
    tape_line = shown_line(nb, r"^tape: dw")
    assert shown_line(nb, r"^jax : dw")[4:] == tape_line[4:]
    assert shown_line(nb, r"^closed form: dw")[len("closed form"):] == tape_line[4:]
    drawn = [html.unescape(s) for s in outputs_of(nb, "image/svg+xml")]
    assert any("da/dw = 1.1932" in s for s in drawn), "the walkthrough drawn"
    assert shown_line(nb, r"^d2L/dw2").endswith(": 8")
    for line in [ln for ln in lines(nb) if ln.startswith("tape.jvp, tangent")]:
        forward, by_jax = re.findall(r"derivative = (\S+)  \(jax\.jvp: (\S+)\)", line)[0]
        assert forward == by_jax
    assert len([ln for ln in lines(nb) if ln.startswith("tape.jvp, tangent")]) == 2
    assert shown_line(nb, r"^dL/dw forward") == "dL/dw forward: -2   backward: -2"


def check_04(nb: Any) -> None:
    epochs = shown_line(nb, r"^loss after each epoch \(scan\)")
    for loss in lecture_trace.at_printed_precision(lecture_trace.EPOCH_LOSS):
        assert f"'{loss}'" in epochs
    assert "equal to the one-device sweep: True" in lines(nb)
    assert "devices holding the result: 8" in lines(nb)
    scan_line = shown_line(nb, r"^the lecture's rate")
    sweep_loss, scan_loss = re.findall(r"\d+\.\d{4}", scan_line)
    assert sweep_loss == scan_loss
    parallel = shown_line(nb, r"^loss after each epoch \(parallel\)")
    assert parallel.split(":", 1)[1] == epochs.split(":", 1)[1]
    assert "needs plain SGD" in shown_line(nb, r"^with optax\.adam:")
    mlp_line = shown_line(nb, r"^largest difference between the tape's gradient")
    assert float(mlp_line.rsplit(" ", 1)[1]) < 1e-5
    assert shown_line(nb, r"^loss .* accuracy ").endswith("-> 1.00")


CHECKS: dict[str, Callable[[Any], None]] = {
    "01": check_01, "02": check_02, "03": check_03, "04": check_04}


# ---------------------------------------------------------------------------------------
# Running them


WHERE_FROM = "import jaxbackprop, pathlib; print(pathlib.Path(jaxbackprop.__file__).parents[1])"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_in_a_fresh_kernel_and_shows_the_lectures_numbers(
        name: str, tmp_path: Path) -> None:
    """The source as written, run by ``notebooks/build.py``'s own function, plus one cell
    at the end that says which jaxbackprop the kernel imported."""
    nb = jupytext.read(NOTEBOOKS / f"{name}.py")
    nb.cells.append(nbformat.v4.new_code_cell(WHERE_FROM))
    path = tmp_path / f"{name}.py"
    jupytext.write(nb, path, fmt="py:percent")
    ran = build.execute(path)
    assert all(c.execution_count is not None for c in ran.cells if c.cell_type == "code")
    assert Path(cell_text(ran.cells.pop()).strip()) == ROOT  # this checkout, not another
    CHECKS[name[:2]](ran)


@pytest.mark.parametrize("name", NAMES)
def test_stored_notebook_holds_its_source_executed(name: str) -> None:
    """The ``.ipynb`` holds the ``.py``'s cells (regenerate: ``python notebooks/build.py``)
    and their outputs, with the lecture's numbers in them."""
    source = jupytext.read(NOTEBOOKS / f"{name}.py")
    stored = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert [(c.cell_type, c.source) for c in stored.cells] == \
        [(c.cell_type, c.source) for c in source.cells], \
        f"notebooks/{name}.ipynb is out of date: run python notebooks/build.py {name[:2]}"
    assert all(c.execution_count is not None for c in stored.cells if c.cell_type == "code")
    CHECKS[name[:2]](stored)


@pytest.mark.parametrize(("name", "hidden"), [(NAMES[0], "graphviz"), (NAMES[1], "matplotlib")])
def test_without_the_draw_extra_the_first_cell_that_draws_says_what_to_install(
        name: str, hidden: str, tmp_path: Path) -> None:
    """A package of the draw extra hidden from the kernel: the notebook runs up to its
    first cell that draws, which stops in one line naming the extra."""
    nb = jupytext.read(NOTEBOOKS / f"{name}.py")
    nb.cells.insert(0, nbformat.v4.new_code_cell(f"import sys\nsys.modules[{hidden!r}] = None"))
    path = tmp_path / f"without_{hidden}.py"
    jupytext.write(nb, path, fmt="py:percent")
    with pytest.raises(CellExecutionError) as error:
        build.execute(path)
    assert error.value.ename in ("ImportError", "ModuleNotFoundError")
    assert "\n" not in error.value.evalue
    assert "pip install 'jaxbackprop[draw]'" in error.value.evalue
    first_drawing = next(c for c in nb.cells[1:] if c.cell_type == "code" and "draw" in c.source)
    assert first_drawing.source in str(error.value)  # it stopped there, not earlier
