"""Writing results atomically: a temporary file in the same folder, then a rename.

An interrupted run leaves either the old file or the new one, never half of one, and no
temporary file: Ctrl-C (``KeyboardInterrupt``) and, in the main thread, SIGTERM during a
write remove the temporary file before the interruption goes on. Missing folders are created
(the experiments write into ``results/<name>/``); the CLI checks its ``--out`` before any
work and refuses a missing folder, which may be a mistyped path. Used by the CLI, the
pictures and the experiment scripts.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any


class _Terminated(BaseException):
    """SIGTERM arrived during a write; re-delivered once the temporary file is gone."""


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While writing, make SIGTERM raise (so that cleanup runs) when it would otherwise
    kill the process outright; afterwards terminate as SIGTERM would have."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield  # another handler is in charge, or signals cannot be handled here
        return

    def raise_terminated(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    except _Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)  # die of SIGTERM, as without this handler
        raise
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path.

    Args:
      path: the file to write; missing parent folders are created.
      data: the whole content.

    Returns:
      ``path`` as a :class:`~pathlib.Path`.

    Raises:
      OSError: the folder does not exist or cannot be written, the disk is full, ...;
        the old file, if any, is left as it was.

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_bytes_atomic(folder / "a.txt", b"hi").read_bytes()
    b'hi'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _sigterm_unwinds():
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, _new_file_mode())  # mkstemp makes 0600; give the usual open() mode
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def _new_file_mode() -> int:
    """The mode ``open()`` would give a new file: 0666 less the process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`write_bytes_atomic`)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically (:func:`write_bytes_atomic`)."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_csv_atomic(path: str | os.PathLike[str], header: Sequence[str],
                     rows: Iterable[Sequence[Any]]) -> Path:
    """Write a CSV table (a header row, then ``rows``) to ``path`` atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_text_atomic(path, buffer.getvalue())
