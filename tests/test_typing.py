"""Typed: the package ships ``py.typed``, so a user's type checker reads its annotations.

A small user script type-checks against the package with pyright (configured in
pyproject.toml), and a script with a wrong argument type is caught, which shows the
annotations are read rather than taken as ``Any``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import jaxbackprop

PACKAGE = Path(jaxbackprop.__file__).parent

GOOD = """\
import jax
import jax.numpy as jnp

import jaxbackprop as jb
from jaxbackprop import devices, lecture, tape

value: jax.Array = jb.loss(1.0, 2.0, 4.0)
grad = jax.grad(jb.loss)(1.0, 2.0, 4.0)
tape_grad = tape.grad(jb.loss)(1.0, 2.0, 4.0)
mean: jax.Array = jb.mean_loss(1.0, jnp.arange(3.0), jnp.arange(3.0))
graph = lecture.linear_regression(x=1.0, y=2.0, w=1.0)
table: str = graph.table("backward")
device = devices.select("cpu")
"""

BAD = """\
from jaxbackprop import lecture

graph = lecture.linear_regression(x="one", y=2.0, w=1.0)
text: int = graph.table("backward")
"""


def pyright(tmp_path: Path, source: str) -> list[dict[str, object]]:
    """pyright's errors on ``source``, a user's script outside the package."""
    if shutil.which("pyright") is None and shutil.which("pyright", path=str(
            Path(sys.executable).parent)) is None:
        pytest.skip("pyright is not installed (it comes with the test extra)")
    script = tmp_path / "user_script.py"
    script.write_text(source)
    # `pip install -e .` installs the package through setuptools' import hook, which static
    # checkers cannot follow (pyright's docs say so); a wheel install puts it on the path.
    # extraPaths stands in for that: the package as a user's checker sees it, installed.
    config = {"typeCheckingMode": "standard", "extraPaths": [str(PACKAGE.parent)]}
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(config))
    done = subprocess.run(
        [sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", sys.executable,
         str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    report = json.loads(done.stdout)
    return [d for d in report["generalDiagnostics"] if d["severity"] == "error"]


def test_the_package_is_marked_typed() -> None:
    assert (PACKAGE / "py.typed").is_file()


def test_a_user_script_type_checks(tmp_path: Path) -> None:
    assert pyright(tmp_path, GOOD) == []


def test_a_wrong_argument_type_is_caught(tmp_path: Path) -> None:
    errors = pyright(tmp_path, BAD)
    assert sorted(e["range"]["start"]["line"] + 1 for e in errors) == [3, 4]  # type: ignore[index]
