"""An instant CLI: the parser, --help and --version import no JAX, NumPy or matplotlib;
the choices and defaults the help shows are the library's own."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("jax", "jaxlib", "numpy", "matplotlib", "optax", "graphviz")
COMMANDS = ("lecture", "train", "graph", "bench")


def _modules_after(*argv: str) -> tuple[int, str, set[str]]:
    """Run ``main(argv)`` in a fresh interpreter; its exit code, stdout and the heavy
    modules imported by then."""
    script = (
        "import sys\n"
        "from jaxbackprop.cli.main import main\n"
        "try:\n"
        f"    code = main({list(argv)!r})\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy))\n"
        "print('CODE=' + str(code))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    lines = done.stdout.splitlines()
    heavy = {m for m in lines[-2].removeprefix("HEAVY=").split(",") if m}
    return int(lines[-1].removeprefix("CODE=")), "\n".join(lines[:-2]), heavy


@pytest.mark.parametrize("argv", [["--help"], ["--version"],
                                  *([command, "--help"] for command in COMMANDS)])
def test_help_and_version_import_no_heavy_module(argv: list[str]) -> None:
    code, out, heavy = _modules_after(*argv)
    assert code == 0 and out.strip()
    assert heavy == set(), f"{' '.join(argv)} imported {heavy}"


def test_import_jaxbackprop_imports_no_jax_until_used() -> None:
    script = ("import sys, jaxbackprop as jb\n"
              "before = 'jax' in sys.modules\n"
              "value = float(jb.loss(1.0, 1.0, 2.0))\n"
              "print(before, 'jax' in sys.modules, value, "
              "'jaxbackprop.benchmark' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.split() == ["False", "True", "1.0", "False"]


def test_the_help_shows_the_librarys_choices() -> None:
    from jaxbackprop import draw, graph, train
    from jaxbackprop.benchmark import cases
    from jaxbackprop.cli import bench as cli_bench
    from jaxbackprop.cli import graph as cli_graph
    from jaxbackprop.cli import train as cli_train

    assert cli_train.ENGINES == tuple(train.ENGINES)
    assert cli_graph.VIEWS == graph.VIEWS
    assert cli_graph.GRAPH_SUFFIXES == draw.GRAPH_SUFFIXES
    assert cli_bench.SECTIONS == tuple(cases.SECTIONS)


def test_the_help_shows_the_lectures_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    from jaxbackprop import lecture
    from jaxbackprop.cli import train as cli_train
    from jaxbackprop.cli.main import main

    assert cli_train.SAMPLES == len(lecture.X_DATA)
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in (f"the lecture's, {lecture.LEARNING_RATE:g})",
                    f"the lecture's, {lecture.EPOCHS})", f"the lecture's, {lecture.W0:g})"):
        assert default in text
