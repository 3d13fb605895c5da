"""A real small filesystem for fault tests: ``mount -t tmpfs -o size=...`` (root only)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def can_mount() -> str | None:
    """None when tmpfs can be mounted here, else why not (the skip reason)."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (CI runs these as root)"
    if shutil.which("mount") is None:
        return "no mount(8) here"
    return None


@contextmanager
def tmpfs(where: Path, size: str, *, readonly: bool = False) -> Iterator[Path]:
    why = can_mount()
    if why:
        pytest.skip(why)
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if readonly else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                       capture_output=True, text=True)  # fmt: skip
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(where: Path, name: str = "filler") -> Path:
    """Write zeros into ``where/name`` until the filesystem is full (unbuffered writes)."""
    path = where / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (1 << 16, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                continue
    finally:
        os.close(fd)
    return path
