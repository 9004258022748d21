"""The `jaxbackprop` command: the lecture's numbers in its output, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jaxbackprop import __version__
from jaxbackprop.cli.main import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse exits for --help, --version and usage errors
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_lecture_prints_every_worked_number(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "lecture")
    assert code == 0 and err == ""
    rows = [line.split() for line in out.splitlines()]
    # The first note: x=1, y=2, w=1.
    assert ["y_hat", "=", "mul(w,", "x)", "=", "1"] in rows
    assert ["s", "=", "sub(y_hat,", "y)", "=", "-1"] in rows
    assert ["L", "=", "square(s)", "=", "1"] in rows
    assert ["dL/ds", "=", "2s", "=", "-2"] in rows
    assert ["ds/dy_hat", "=", "1", "=", "1"] in rows
    assert ["dy_hat/dw", "=", "x", "=", "1"] in rows
    assert ["dL/dy_hat", "=", "dL/ds", "*", "ds/dy_hat", "=", "-2"] in rows
    assert ["dL/dw", "=", "dL/dy_hat", "*", "dy_hat/dw", "=", "-2"] in rows
    assert "tape.grad(loss)(w, x, y) = -2   (the hand-written tape)" in out
    # The second note: x=2, y=4, w=1 gives 2sx = -8 three ways.
    assert "2sx (closed form)        = -8" in out
    assert "jax.grad(loss)(w, x, y)  = -8" in out
    assert "tape.grad(loss)(w, x, y) = -8" in out
    # Sections come in the lecture's order.
    order = [out.index(h) for h in ("Chain rule", "the node z = x * y", "three steps",
                                    "derivation of the second note")]
    assert order == sorted(order)


def test_lecture_in_float64(capsys: pytest.CaptureFixture[str]) -> None:
    import jax

    previous = jax.config.jax_enable_x64
    try:
        code, out, _ = run_cli(capsys, "lecture", "--x64", "--backend", "cpu")
    finally:
        jax.config.update("jax_enable_x64", previous)
    assert code == 0 and "(float64)" in out and "tape.grad(loss)(w, x, y) = -8" in out


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"jaxbackprop {__version__}"
    code, out, _ = run_cli(capsys, "lecture", "--help")
    assert code == 0 and "--backend" in out


@pytest.mark.parametrize("argv, expected", [
    (["lecture", "--backend", "quantum"], "invalid choice: 'quantum'"),
    (["no-such-command"], "invalid choice: 'no-such-command'"),
])
def test_usage_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str],
                                          expected: str) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and expected in err


def test_missing_backend_is_one_line_without_traceback() -> None:
    import jax

    if any(d.platform == "tpu" for d in jax.devices()):
        pytest.skip("a TPU is present")
    done = subprocess.run([sys.executable, "-m", "jaxbackprop", "lecture", "--backend", "tpu"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith("jaxbackprop lecture: error: JAX has no tpu device here")
    assert 'pip install "jax[tpu]"' in lines[0]


def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    # `jaxbackprop train --epochs 3000 | head -1`: the pipe closes while the command still
    # prints (about 300 kB, more than a pipe holds, so the closed pipe is always hit).
    process = subprocess.Popen([sys.executable, "-m", "jaxbackprop", "train", "--epochs", "3000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 141
    assert first.startswith("jaxbackprop train: ") and "Traceback" not in stderr
