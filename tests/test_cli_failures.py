"""Every way a command fails ends with one line on stderr, a non-zero exit code and no
traceback; nothing half-written is left behind. Each case runs the real command in a
subprocess, with a timeout."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

COMMAND = [sys.executable, "-m", "jaxbackprop"]


def run(*argv: str, env: dict[str, str] | None = None, **kwargs: object
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *argv], capture_output=True, text=True, timeout=120,
                          env=None if env is None else {**os.environ, **env}, **kwargs)


def one_line(done: subprocess.CompletedProcess[str], code: int, *expected: str) -> str:
    """Assert exit ``code`` and one stderr line holding every ``expected``; return it."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code and len(lines) == 1, (done.returncode, done.stderr)
    for text in expected:
        assert text in lines[0]
    return lines[0]


@pytest.mark.parametrize("argv, option", [
    (["train", "--w0", "1e39"], "--w0 1e+39"),
    (["train", "--lr", "1e39"], "--lr 1e+39"),
    (["graph", "--w", "1e39"], "--w 1e+39"),
    (["graph", "--example", "xy", "--x=-1e39"], "--x -1e+39"),
])
def test_a_value_that_overflows_float32_is_refused(argv: list[str], option: str) -> None:
    one_line(run(*argv), 2, option, "overflows float32", "--x64")


def test_a_rate_that_float32_rounds_to_zero_is_refused_before_any_output() -> None:
    done = run("train", "--lr", "1e-46")
    one_line(done, 2, "--lr 1e-46", "becomes 0 in float32", "--x64")
    assert done.stdout == ""


def test_a_graph_whose_values_overflow_is_not_drawn(tmp_path: Path) -> None:
    done = run("graph", "--w", "1e30", "--out", str(tmp_path / "g.dot"))
    one_line(done, 2, "= inf overflows float32", "--x64")
    assert list(tmp_path.iterdir()) == []


def test_x64_takes_values_beyond_float32() -> None:
    done = run("graph", "--w", "1e39", "--x", "1", "--y", "2", "--x64")
    assert done.returncode == 0 and "dL/dw = " in done.stdout and "inf" not in done.stdout


def _limit_memory(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_a_history_too_large_for_memory_is_refused_before_it_starts(tmp_path: Path) -> None:
    # 1 GiB of address space: enough for the check, far from enough for JAX or the history.
    out = tmp_path / "h.json"
    done = subprocess.run([*COMMAND, "train", "--epochs", "100000000", "--out", str(out)],
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: _limit_memory(2**30))
    line = one_line(done, 2, "--epochs 100000000", "300,000,000 steps", "GiB",
                    "use fewer --epochs", "leave out --out")
    assert done.stdout == "" and not out.exists() and "MemoryError" not in line


@pytest.mark.parametrize("argv, expected", [
    (["train", "--out", "{missing}/h.json"], "does not exist (create it first)"),
    (["graph", "--out", "{missing}/g.svg"], "does not exist (create it first)"),
    (["bench", "--out", "{missing}/b.json"], "does not exist (create it first)"),
    (["bench", "--markdown", "{missing}/b.md"], "does not exist (create it first)"),
    (["lecture", "--figures", "{missing}"], "no such folder (create it first)"),
    (["train", "--out", "{file}/h.json"], "is not a folder"),
    (["graph", "--out", "{readonly}/g.dot"], "is not writable"),
    (["train", "--out", "{tmp}/h.txt"], "--out must end in .json or .csv"),
    (["graph", "--out", "{tmp}/g.jpg"], "--out must end in .dot or .svg or .png"),
    (["bench", "--out", "{tmp}/x.txt"], "--out must end in .json"),
    (["bench", "--markdown", "{tmp}/x.json"], "--markdown must end in .md"),
])
def test_out_is_checked_before_any_work(tmp_path: Path, argv: list[str], expected: str) -> None:
    (tmp_path / "file").write_text("not a folder")
    readonly = tmp_path / "readonly"
    readonly.mkdir(mode=0o555)
    if "{readonly}" in argv[2] and os.access(readonly, os.W_OK):
        pytest.skip("running as root: every folder is writable")
    paths = {"missing": tmp_path / "no-such-folder", "file": tmp_path / "file",
             "readonly": readonly, "tmp": tmp_path}
    argv = [arg.format(**paths) for arg in argv]
    start = time.monotonic()
    done = run(*argv)
    one_line(done, 2, expected)
    assert done.stdout == ""  # refused before any output, let alone any training
    assert time.monotonic() - start < 60
    assert not paths["missing"].exists()  # a mistyped folder is never created


@pytest.mark.parametrize("argv", [["train"], ["lecture"], ["graph"]])
def test_a_full_standard_output_is_one_line(argv: list[str]) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        done = subprocess.run([*COMMAND, *argv], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    one_line(done, 1, "cannot write to standard output: No space left on device")


def test_a_closed_standard_output_is_one_line() -> None:
    done = subprocess.run([*COMMAND, "train"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, timeout=120, pass_fds=(), close_fds=True,
                          preexec_fn=lambda: os.close(1))
    one_line(done, 1, "standard output is closed")


@pytest.mark.parametrize("platforms", ["gpu", "no-such-backend"])
def test_a_bad_jax_platforms_is_one_line(platforms: str) -> None:
    done = run("lecture", env={"JAX_PLATFORMS": platforms})
    one_line(done, 1, f"JAX cannot start (JAX_PLATFORMS={platforms!r})",
             'pip install "jax[cuda13]"')


def _start_training(*argv: str) -> subprocess.Popen[str]:
    """``jaxbackprop train`` printing a long trace; returns once it prints its first step."""
    process = subprocess.Popen([*COMMAND, "train", "--epochs", "1000000", *argv],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if "grad:" in line:
            break
    return process


@pytest.mark.parametrize("delay", [0.0, 0.013, 0.05, 0.11, 0.3])
def test_ctrl_c_at_any_moment_is_interrupted_130(delay: float) -> None:
    process = _start_training()
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and stderr == "jaxbackprop train: interrupted\n"


@pytest.mark.parametrize("delay", [0.02, 0.05, 0.1, 0.3, 0.6, 1.0])
def test_ctrl_c_while_starting_is_interrupted_130(delay: float) -> None:
    """From the moment the command's code runs: parsing, importing JAX, compiling. (Before
    that, Python itself is starting up and answers Ctrl-C its own way.)"""
    script = ("import sys\n"
              "from jaxbackprop.cli.main import main\n"
              "print('ready', flush=True)\n"
              "sys.exit(main(['train', '--fused']))\n")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    if process.returncode == 0:
        pytest.skip("finished before the signal")
    assert process.returncode == 130
    assert stderr in ("jaxbackprop train: interrupted\n", "jaxbackprop: interrupted\n")


def test_sigterm_is_terminated_143() -> None:
    process = _start_training()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143 and stderr == "jaxbackprop train: terminated\n"
