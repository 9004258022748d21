"""Every experiment script, run with ``--quick`` into a temporary folder: what it printed and
wrote is checked against the lecture's printed numbers and closed forms."""

from __future__ import annotations

import csv
import json
import runpy
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np
import pytest

from jaxbackprop import lecture

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
SCRIPTS = ("chain_rule", "xy_node", "three_steps", "second_note", "training", "engines_agree",
           "sweep", "parallel_sgd")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Scripts import ``_common`` from their folder; engines_agree turns x64 on: restore it."""
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    previous = jax.config.jax_enable_x64
    yield
    jax.config.update("jax_enable_x64", previous)


def run_script(name: str, *args: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", [f"experiments/{name}.py", *args])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(EXPERIMENTS / f"{name}.py"), run_name="__main__")
    return exit_.value.code


def quick(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[Path, str]:
    out = tmp_path / name
    assert run_script(name, "--quick", "--out", str(out), monkeypatch=monkeypatch) == 0
    return out, capsys.readouterr().out


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_every_script_is_tested_and_has_help(monkeypatch, capsys) -> None:
    tested_elsewhere = ("benchmark", "mlp", "modes", "remat")  # test_mlp_experiments.py: the last 3
    found = {p.stem for p in EXPERIMENTS.glob("*.py")
             if not p.stem.startswith("_") and p.stem not in tested_elsewhere}
    assert found == set(SCRIPTS)
    for name in SCRIPTS:
        assert run_script(name, "--help", monkeypatch=monkeypatch) == 0
        usage = capsys.readouterr().out
        assert f"experiments/{name}.py" in usage and "--quick" in usage and "--out DIR" in usage


def test_chain_rule(tmp_path, monkeypatch, capsys) -> None:
    out, printed = quick("chain_rule", tmp_path, monkeypatch, capsys)
    summary = json.loads((out / "summary.json").read_text())
    # the chain rule: dz/dx = b'(a(x)) a'(x)
    assert summary["dz_dx_chain"] == pytest.approx(2 * 1.5 * np.cos(1.5**2), rel=1e-5)
    rows = read_csv(out / "chain_rule.csv")
    assert len(rows) == summary["grid_points"] == 9
    for row in rows:
        x = float(row["x"])
        assert float(row["dz/dy * dy/dx"]) == pytest.approx(2 * x * np.cos(x * x), abs=1e-5)
    assert "dz/dx = -1.8845" in (out / "chain_backward.dot").read_text()
    assert (out / "chain_backward.png").read_bytes()[:8] == PNG
    assert (out / "chain_rule.png").read_bytes()[:8] == PNG
    assert "-1.88452" in printed


def test_xy_node(tmp_path, monkeypatch, capsys) -> None:
    out, _ = quick("xy_node", tmp_path, monkeypatch, capsys)
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["z"], summary["dz_dx"], summary["dz_dy"]) == (6.0, 3.0, 2.0)
    for row in read_csv(out / "xy_node.csv"):  # dz/dx = y, dz/dy = x
        assert float(row["dz/dx (tape)"]) == pytest.approx(float(row["y"]), rel=1e-6)
        assert float(row["dz/dy (jax.grad)"]) == pytest.approx(float(row["x"]), rel=1e-6)
    assert 'label="dz/dx = y = 3"' in (out / "xy_node_local.dot").read_text()


def test_three_steps(tmp_path, monkeypatch, capsys) -> None:
    out, printed = quick("three_steps", tmp_path, monkeypatch, capsys)
    numbers = json.loads((out / "numbers.json").read_text())
    assert numbers["forward"] == {"y_hat": 1.0, "s": -1.0, "L": 1.0}
    assert numbers["local_gradients"]["dL/ds"] == {"formula": "2s", "value": -2.0}
    assert numbers["local_gradients"]["dy_hat/dw"] == {"formula": "x", "value": 1.0}
    assert numbers["adjoints"] == {"dL/dw": -2.0, "dL/dy_hat": -2.0, "dL/ds": -2.0, "dL/dL": 1.0}
    assert numbers["dL_dw"] == {"jax.grad": -2.0, "tape.grad": -2.0}
    side = (out / "jaxpr_beside_tape.txt").read_text()
    assert any(line.startswith("dL/dw += ") and line.endswith("h:f32[] = mul g b")
               for line in side.splitlines())
    for view in ("forward", "local", "backward"):
        assert (out / f"graph_{view}.png").read_bytes()[:8] == PNG
        assert (out / f"graph_{view}.svg").read_text().lstrip().startswith("<?xml")
    assert ["dL/dw", "=", "dL/dy_hat", "*", "dy_hat/dw", "=", "-2"] in [
        line.split() for line in printed.splitlines()]


def test_second_note(tmp_path, monkeypatch, capsys) -> None:
    out, printed = quick("second_note", tmp_path, monkeypatch, capsys)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["closed_form_2sx"] == summary["jax_grad"] == summary["tape_grad"] == -8.0
    for row in read_csv(out / "second_note.csv"):
        w = float(row["w"])
        assert float(row["jax.grad"]) == pytest.approx(2 * (2 * w - 4) * 2, abs=1e-5)
        assert float(row["tape.grad"]) == pytest.approx(2 * (2 * w - 4) * 2, abs=1e-5)
    assert "2sx = -8" in printed


def test_training_prints_the_lectures_trace(tmp_path, monkeypatch, capsys) -> None:
    out, printed = quick("training", tmp_path, monkeypatch, capsys)
    # the lecture's printed trace (float32, printed to four decimals)
    for line in ("grad:  1.0 2.0 -2.0000", "grad:  2.0 4.0 -7.8400", "grad:  3.0 6.0 -16.2288",
                 "progress: 0 7.3159", "grad:  1.0 2.0 -1.4786", "progress: 1 3.9988",
                 "Predict (before training) 4 4.0000"):
        assert line in printed
    history = json.loads((out / "history.json").read_text())
    assert history["epoch_loss"] == pytest.approx([7.3159, 3.9988], abs=1e-4)
    assert history["scan_max_loss_difference"] == 0.0
    assert len(history["w"]) == 3 and history["w"][0] == lecture.W0
    trace = read_csv(out / "trace.csv")
    assert [round(float(r["dL/dw"]), 4) for r in trace[:3]] == [-2.0, -7.84, -16.2288]
    assert (out / "training.png").read_bytes()[:8] == PNG


def test_engines_agree(tmp_path, monkeypatch, capsys) -> None:
    out, printed = quick("engines_agree", tmp_path, monkeypatch, capsys)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["points"] == 10 and summary["disagreements"] == []
    for row in read_csv(out / "engines.csv"):
        w, x, y = (float(row[k]) for k in ("w", "x", "y"))
        closed = 2 * (w * x - y) * x
        assert float(row["jax.grad"]) == pytest.approx(closed, rel=1e-12, abs=1e-12)
        assert float(row["tape.grad"]) == pytest.approx(closed, rel=1e-12, abs=1e-12)
        assert float(row["finite differences"]) == pytest.approx(closed, rel=1e-6, abs=1e-6)
    assert "all engines agree" in printed


def test_sweep_matches_the_closed_form_trajectory(tmp_path, monkeypatch, capsys) -> None:
    out, _ = quick("sweep", tmp_path, monkeypatch, capsys)
    rows = read_csv(out / "sweep.csv")
    assert len(rows) == 5
    for row in rows:
        # one epoch multiplies w - 2 by (1 - 2 lr x^2) for x = 1, 2, 3
        rate, w0 = float(row["learning rate"]), float(row["w0"])
        factor = np.prod([1 - 2 * rate * x * x for x in lecture.X_DATA])
        assert float(row["final w"]) == pytest.approx(2 + (w0 - 2) * factor**lecture.EPOCHS,
                                                      rel=1e-3, abs=1e-5)
    assert (out / "sweep.png").read_bytes()[:8] == PNG


def test_bad_input_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    assert run_script("training", "--quick", "--lr", "-1", "--out", str(tmp_path),
                      monkeypatch=monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --lr: expected a number > 0, got '-1'" in err
    assert run_script("chain_rule", "--x", "nan", monkeypatch=monkeypatch) == 2
    assert "expected a finite number" in capsys.readouterr().err
    # sizes beyond what a machine holds are refused before any work, naming the option
    for option, value, largest in (("--sizes", "9", 8), ("--features", "33", 32)):
        assert run_script("parallel_sgd", option, value, monkeypatch=monkeypatch) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert f"argument {option}: expected a whole number from 1 to {largest}, got {value}" in err


def test_running_out_of_memory_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    import _common

    def too_big(args, results) -> int:
        raise MemoryError("Unable to allocate 7.28 TiB for an array")

    args = SimpleNamespace(out=tmp_path)
    assert _common.run(too_big, args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: out of memory: Unable to allocate 7.28 TiB" in err
