"""Durable file replacement, in one place: a temporary file beside the target, fsync,
rename over the target, fsync of the folder. A crash at any point leaves the old file or
the new one, never a mix, and never a stray temporary file once the call returns.

``StagedFile`` splits the two halves for a caller that must do something in between
(the daemon writes a remote config, runs it, and only then puts it in place); one-shot
writers call ``write_atomic``. ``OSError`` propagates: each caller says in its own words
what was and was not changed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StagedFile:
    """``data`` written and fsynced beside ``path``; ``commit`` puts it in place."""

    def __init__(self, path: Path, data: bytes, *, prefix: str | None = None) -> None:
        self.path = path
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix or f".{path.name}.")
        self._tmp: Path | None = Path(tmp)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            self.discard()
            raise

    def commit(self) -> None:
        """Rename over ``path`` and fsync the folder."""
        if self._tmp is None:
            raise RuntimeError(f"{self.path}: staged file already committed or discarded")
        self._tmp.replace(self.path)
        self._tmp = None
        fsync_dir(self.path.parent)

    def discard(self) -> None:
        """Remove the temporary file unless it was committed (safe to call twice)."""
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    staged = StagedFile(path, data)
    try:
        staged.commit()
    finally:
        staged.discard()
