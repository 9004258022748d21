"""Atomic writes: the file appears whole or not at all, and nothing is left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jaxbackprop import io


def test_writes_text_json_and_csv(tmp_path: Path) -> None:
    io.write_text_atomic(tmp_path / "a" / "b.txt", "hello\n")
    io.write_json_atomic(tmp_path / "r.json", {"loss": [1.0, 0.5]})
    io.write_csv_atomic(tmp_path / "r.csv", ["epoch", "loss"], [(0, 7.3159), (1, 3.9988)])
    assert (tmp_path / "a" / "b.txt").read_text() == "hello\n"
    assert json.loads((tmp_path / "r.json").read_text()) == {"loss": [1.0, 0.5]}
    assert (tmp_path / "r.csv").read_text() == "epoch,loss\n0,7.3159\n1,3.9988\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "r.csv", "r.json"]


def test_an_interrupted_write_keeps_the_old_file(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "r.json"
    io.write_json_atomic(target, {"kept": True})

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt  # as if Ctrl-C arrived after the bytes were written

    monkeypatch.setattr(io.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        io.write_json_atomic(target, {"kept": False, "new": [1, 2, 3]})
    assert json.loads(target.read_text()) == {"kept": True}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what open() gives under this umask
    written = io.write_text_atomic(tmp_path / "atomic.txt", "x")
    assert written.stat().st_mode == plain.stat().st_mode


def test_sigterm_during_a_write_leaves_neither_the_file_nor_the_temporary(
        tmp_path: Path) -> None:
    """A real process, killed by SIGTERM while its write is under way."""
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import sys, time\n"
        "from jaxbackprop import io\n"
        "def slow_fsync(fd):\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
        "io.os.fsync = slow_fsync\n"
        "io.write_bytes_atomic(sys.argv[1], b'x' * 1_000_000)\n")
    target = tmp_path / "out.json"
    process = subprocess.Popen([sys.executable, "-c", script, str(target)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline() == "writing\n"
    assert [p.name for p in tmp_path.iterdir()][0].endswith(".tmp")  # the write is under way
    start = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGTERM and time.monotonic() - start < 30
    assert "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []
