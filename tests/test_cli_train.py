"""``jaxbackprop train``: the notes' trace on stdout, the history in a file, one-line errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

import jaxbackprop as jb
from jaxbackprop import lecture
from jaxbackprop.cli.main import main
from lecture_trace import lecture_lines


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse exits for usage errors
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def trace_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(("\tgrad:", "progress:"))]


@pytest.mark.parametrize("argv", [[], ["--fused"], ["--engine", "tape"], ["--fused", "--engine", "tape"]])
def test_prints_the_notes_trace(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run_cli(capsys, "train", *argv)
    assert code == 0 and err == ""
    printed = trace_lines(out)
    expected = lecture_lines()
    assert printed[: len(expected)] == expected  # every number the notes print
    assert len(printed) == lecture.EPOCHS * 4
    lines = out.splitlines()
    assert lines[1] == "Predict (before training) 4 4.0000"
    w, _ = jb.train_per_sample(jb.loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
                               optimizer=optax.sgd(lecture.LEARNING_RATE))
    assert lines[-1] == f"predict (after training) 4 {float(jb.predict(w, lecture.X_PREDICT)):.4f}"


def test_lecture_has_the_training_section(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "lecture")
    assert code == 0 and "Training: per-sample SGD with optax" in out
    section = out[out.index("Training: per-sample SGD"):]
    assert trace_lines(section)[: len(lecture_lines())] == lecture_lines()
    assert "Predict (before training) 4 4.0000" in section


def test_out_json_and_csv_hold_the_history(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _, history = jb.train_per_sample(jb.loss, lecture.W0, lecture.X_DATA, lecture.Y_DATA,
                                     optimizer=optax.sgd(0.02), epochs=4)
    for name in ("h.json", "h.csv"):
        code, out, _ = run_cli(capsys, "train", "--lr", "0.02", "--epochs", "4", "--out", str(tmp_path / name))
        assert code == 0 and out.splitlines()[-1] == f"wrote {tmp_path / name}"
    record = json.loads((tmp_path / "h.json").read_text())
    assert record["learning_rate"] == 0.02 and record["epochs"] == 4 and record["diverged"] is None
    for field in ("losses", "grads", "epoch_loss", "params"):
        np.testing.assert_array_equal(np.asarray(record[field], np.float32), getattr(history, field))
    with open(tmp_path / "h.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and rows[1]["x"] == "2.0"
    np.testing.assert_array_equal(np.array([r["grad"] for r in rows], np.float32), history.grads.ravel())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.csv", "h.json"]  # no temporary files


def test_float64(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    previous = jax.config.jax_enable_x64
    try:
        code, out, _ = run_cli(capsys, "train", "--x64", "--fused", "--backend", "cpu",
                               "--out", str(tmp_path / "h.json"))
    finally:
        jax.config.update("jax_enable_x64", previous)
    assert code == 0 and "(float64)" in out.splitlines()[0]
    assert trace_lines(out)[: len(lecture_lines())] == lecture_lines()
    assert json.loads((tmp_path / "h.json").read_text())["dtype"] == "float64"


def test_divergence_is_one_line_and_keeps_the_history(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    code, out, err = run_cli(capsys, "train", "--lr", "1.0", "--out", str(path))
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith("jaxbackprop train: error: training diverged: the loss became inf at "
                          "epoch 9, sample 2") and str(path) in err
    record = json.loads(path.read_text())
    assert record["diverged"]["epoch"] == 9 and record["diverged"]["sample"] == 2
    assert record["losses"][9][2] is None and record["losses"][9][1] > 1e37  # inf -> null
    assert len(trace_lines(out)) == 9 * 4 + 2  # the lines before the failing step


@pytest.mark.parametrize("argv, expected", [
    (["--lr", "0"], "argument --lr: expected a number > 0, got '0'"),
    (["--lr", "nan"], "argument --lr: expected a finite number, got 'nan'"),
    (["--lr", "fast"], "argument --lr: expected a number, got 'fast'"),
    (["--epochs", "0"], "argument --epochs: expected a whole number >= 1, got 0"),
    (["--w0", "inf"], "argument --w0: expected a finite number, got 'inf'"),
    (["--engine", "torch"], "argument --engine: invalid choice: 'torch'"),
    (["--out", "history.txt"], "--out must end in .json or .csv or .html, got 'history.txt'"),
])
def test_bad_arguments_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str],
                                    expected: str) -> None:
    code, out, err = run_cli(capsys, "train", *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and expected in err


def test_the_console_script_prints_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "jaxbackprop", "train", "--lr", "1.0"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_an_unwritable_out_file_is_one_line(tmp_path, capsys) -> None:
    from jaxbackprop.cli.main import main

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = main(["train", "--epochs", "1", "--out", str(blocker / "history.json")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("jaxbackprop train: error: cannot write ") and "Traceback" not in err
