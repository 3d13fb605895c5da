"""One writer per data dir: an exclusive ``flock`` on ``<data_dir>/edgewise.lock``.

Two daemons on one data dir would share the outbox (seqs reused, one's publisher
deleting what the other sent) and the seq high-water mark. The daemon takes the
lock before any sink opens anything under the data dir and holds it for its
lifetime; the kernel releases it when the process dies, even by SIGKILL, so a
stale file never blocks a restart. The holder's PID is written in the file so the
second daemon can say who holds it.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from edge import exit_codes
from edge.errors import EdgeError

LOCK_NAME = "edgewise.lock"


class DataDirBusyError(EdgeError):
    """Another process holds the data dir's lock."""

    exit_code = exit_codes.REFUSED


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise ``DataDirBusyError`` naming the holder (``EdgeError`` if the
        data dir cannot be created or the lock file opened)."""
        if self._fd is not None:
            return
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise EdgeError(
                f"{self.path}: cannot create the data dir's lock file ({exc.strerror}); "
                "check data_dir and its permissions"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                who = f"PID {holder}" if holder else "another process"
                raise DataDirBusyError(
                    f"{self.data_dir}: already in use by {who} (lock {self.path}); "
                    "stop that daemon or give this one another data_dir"
                ) from None
            raise EdgeError(f"{self.path}: cannot lock ({exc.strerror})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock. The file stays (unlinking it would race a daemon about to lock it)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)  # closing the descriptor releases the flock


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None
