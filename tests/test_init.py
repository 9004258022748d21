"""The package's face: what ``import jaxbackprop as jb`` gives, and what it does not import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

import jaxbackprop as jb

ROOT = Path(__file__).resolve().parents[1]


def _fresh(code: str) -> dict[str, object]:
    """Run ``code`` in a new interpreter that imports this checkout; it prints one JSON line."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_devices_select_cpu_right_after_import() -> None:
    found = _fresh("import json, jaxbackprop as jb\n"
                   "d = jb.devices.select('cpu')\n"
                   "print(json.dumps({'platform': d.platform}))")
    assert found == {"platform": "cpu"}


def test_submodules_are_attributes() -> None:
    import jaxbackprop.devices
    import jaxbackprop.draw
    import jaxbackprop.lecture
    import jaxbackprop.parallel
    import jaxbackprop.tape

    assert jb.tape is jaxbackprop.tape
    assert jb.lecture is jaxbackprop.lecture
    assert jb.devices is jaxbackprop.devices
    assert jb.draw is jaxbackprop.draw
    assert jb.parallel is jaxbackprop.parallel
    assert jb.lecture.X_DATA == (1.0, 2.0, 3.0)


def test_names_load_on_first_use() -> None:
    """``import jaxbackprop`` imports neither JAX nor the optional pictures' packages."""
    found = _fresh(
        "import json, sys, jaxbackprop as jb\n"
        "watched = ('jax', 'jaxbackprop.draw', 'jaxbackprop.parallel', 'matplotlib')\n"
        "before = {m: m in sys.modules for m in watched}\n"
        "jb.draw, jb.parallel\n"
        "after = {m: m in sys.modules for m in watched[1:3]}\n"
        "print(json.dumps({'before': before, 'after': after}))")
    assert found["before"] == {"jax": False, "jaxbackprop.draw": False,
                               "jaxbackprop.parallel": False, "matplotlib": False}
    assert found["after"] == {"jaxbackprop.draw": True, "jaxbackprop.parallel": True}


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        jb.nonsense  # noqa: B018
    assert not hasattr(jb, "nonsense")


def test_dir_lists_the_lazy_submodules() -> None:
    assert {"draw", "parallel", "tape", "lecture", "devices", "loss"} <= set(dir(jb))


def test_every_name_in_all_resolves() -> None:
    for name in jb.__all__:
        assert getattr(jb, name) is not None, name


def test_the_reexports_are_the_library_functions() -> None:
    from jaxbackprop import model, train

    assert jb.loss is model.loss and jb.train_scan is train.train_scan
    assert float(jax.grad(jb.loss)(1.0, 1.0, 2.0)) == -2.0
