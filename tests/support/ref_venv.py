"""Isolated, pinned virtual environments for reference implementations (test-only).

A reference (Ultralytics, MediaPipe, ...) never goes into the project's own
environment: ``ref_venv(name, requirements)`` builds
``$EDGEWISE_HOME/venvs/<name>`` once, from PyPI with pinned requirements, under a
file lock (parallel test workers wait for one build), within a time limit, and
returns its Python. A stamp file holds the requirements it was built with; a
change of pins rebuilds it. A failed build raises with the pip error's last line:
a test that needs the reference then fails, it does not silently skip.

Run ``python -m tests.support.ref_venv NAME REQ...`` to build one by hand.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from edge.models.zoo import edgewise_home

_STAMP = ".requirements"


class RefVenvError(RuntimeError):
    """The reference environment could not be built."""


def venv_dir(name: str) -> Path:
    return edgewise_home() / "venvs" / name


def _run(cmd: list[str], timeout: float, what: str) -> None:
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False
        )  # our argv, no shell
    except subprocess.TimeoutExpired:
        raise RefVenvError(f"{what}: timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RefVenvError(f"{what}: failed ({tail}); check the network to PyPI and disk space")


def ref_venv(name: str, requirements: Sequence[str], *, timeout: float = 900.0) -> Path:
    """The Python of the pinned venv ``name``, building it first if needed."""
    root = venv_dir(name)
    python = root / "bin" / "python"
    wanted = "\n".join(requirements) + "\n"
    root.parent.mkdir(parents=True, exist_ok=True)
    with (root.parent / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = root / _STAMP
        if python.is_file() and stamp.is_file() and stamp.read_text() == wanted:
            return python
        if root.exists():
            shutil.rmtree(root)
        _run([sys.executable, "-m", "venv", str(root)], 120, f"creating venv {root}")
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        _run([*pip, *requirements], timeout, f"pip install {' '.join(requirements)} in {root}")
        stamp.write_text(wanted)
    return python


if __name__ == "__main__":
    print(ref_venv(sys.argv[1], sys.argv[2:]))
