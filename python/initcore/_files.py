"""Atomic file writes: the one implementation behind checkpoints, weights, ONNX exports, IDX
files, CSV logs, sweep records and reports.

A file is written to a temporary name in the target's directory and renamed over the target
(``os.replace`` is atomic on POSIX), so a reader sees the old file or the new one, never half
of one. Two details make that usable day to day:

- The temporary name carries the target's name and the writer's process id,
  ``.<name>.tmp-<pid>-<random><suffix>``. A writer killed mid-write (SIGKILL, power loss)
  cannot remove its file; the next write of the same target removes every such file whose
  process no longer exists, so killed saves do not pile up. Files of live processes (another
  process saving the same target right now) are left alone.
- ``tempfile.mkstemp`` creates files with mode 0600; the finished file gets the mode a plain
  ``open(path, "w")`` would give it (``0666 & ~umask``, 0644 usually).
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import BinaryIO, Callable

__all__ = ["atomic_write", "write_bytes", "write_text"]


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (``os.umask`` alone can
    only be read by setting it, which races with other threads creating files)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_stale(path: str, suffix: str = "") -> list[str]:
    """Removes the temporary files that killed writers of ``path`` left behind; returns them."""
    directory, name = os.path.split(os.path.abspath(path))
    pattern = re.compile(r"\." + re.escape(name) + r"\.tmp-(\d+)-[^/]*" + re.escape(suffix) + r"\Z")
    removed = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry)
        if m and not _pid_alive(int(m.group(1))):
            try:
                os.unlink(os.path.join(directory, entry))
                removed.append(entry)
            except OSError:
                pass
    return removed


def atomic_write(path: str, write: Callable[[BinaryIO], None], suffix: str = "", fsync: bool = True) -> None:
    """Calls ``write(f)`` on a temporary file next to ``path`` and renames it over ``path``.
    On any error (``KeyboardInterrupt`` included) the temporary file is removed and ``path`` is
    untouched."""
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    clean_stale(path, suffix)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.tmp-{os.getpid()}-", suffix=suffix, dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes, suffix: str = "") -> str:
    """Writes ``data`` to ``path`` atomically (see :func:`atomic_write`); returns ``path``."""
    path = os.fspath(path)
    atomic_write(path, lambda f: f.write(data), suffix=suffix)
    return path


def write_text(path: str | os.PathLike[str], text: str, suffix: str = "") -> str:
    """Writes ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`); returns ``path``."""
    return write_bytes(path, text.encode("utf-8"), suffix=suffix)
