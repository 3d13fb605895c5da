"""Pinned, isolated virtualenvs for reference implementations (mediapipe, ultralytics, …).

``ensure_venv(name, requirements)`` returns the venv's python, building
``~/.cache/edgewise/venvs/<name>`` on first use: ``python -m venv`` then one
``pip install`` of exactly ``requirements``, bounded by ``timeout_s``. A stamp file
records the requirement list; a venv whose stamp differs (or is missing: a build that
died half-way) is rebuilt from scratch. Concurrent builders (pytest-xdist workers, other
engineers' runs) are serialised by an ``fcntl`` lock next to the venv, so the second
waits for the first and then reuses its result. Failure raises ``RefVenvError`` with
the last line pip printed: a test should fail on it, not skip.

``run_in_venv(python, script, *args)`` runs a script file with that python and returns
its stdout (errors raise ``RefVenvError`` with the tail of stderr).
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from edge.models.zoo import edgewise_home

STAMP = ".edgewise-requirements"


class RefVenvError(RuntimeError):
    """A reference venv could not be built or a script in it failed."""


def venvs_dir() -> Path:
    return edgewise_home() / "venvs"


def _tail(text: str, lines: int = 1) -> str:
    return " | ".join(text.strip().splitlines()[-lines:]) or "no output"


def ensure_venv(
    name: str,
    requirements: Sequence[str],
    *,
    timeout_s: float = 900.0,
    lock_timeout_s: float | None = None,
) -> Path:
    """The python of venv ``name`` with exactly ``requirements`` (pinned ``pkg==x.y``)."""
    root = venvs_dir() / name
    python = root / "bin" / "python"
    wanted = "\n".join(requirements) + "\n"
    stamp = root / STAMP
    if stamp.is_file() and stamp.read_text() == wanted and python.is_file():
        return python
    venvs_dir().mkdir(parents=True, exist_ok=True)
    wait = timeout_s if lock_timeout_s is None else lock_timeout_s
    with (venvs_dir() / f"{name}.lock").open("w") as lock:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RefVenvError(
                        f"venv {root}: another builder held the lock for over {wait:.0f} s"
                    ) from None
                time.sleep(1.0)
        if stamp.is_file() and stamp.read_text() == wanted and python.is_file():
            return python  # built by whoever held the lock
        shutil.rmtree(root, ignore_errors=True)
        end = time.monotonic() + timeout_s
        steps = [[sys.executable, "-m", "venv", "--without-pip", str(root)]]
        if requirements:
            steps = [
                [sys.executable, "-m", "venv", str(root)],
                [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--no-input", *requirements],
            ]  # fmt: skip
        for cmd in steps:
            left = end - time.monotonic()
            try:
                proc = subprocess.run(
                    cmd, capture_output=True, text=True, check=False, timeout=max(left, 1.0)
                )
            except subprocess.TimeoutExpired:
                raise RefVenvError(
                    f"building venv {root} took over {timeout_s:.0f} s ({cmd[-1]}); "
                    "check the network to PyPI"
                ) from None
            if proc.returncode != 0:
                raise RefVenvError(
                    f"cannot build venv {root} ({_tail(proc.stderr)}); "
                    "check the network to PyPI and free disk space"
                )
        stamp.write_text(wanted)
        return python


def run_in_venv(python: Path, script: Path, *args: str, timeout_s: float = 300.0) -> str:
    """Run ``script`` with the venv's ``python``; its stdout."""
    try:
        proc = subprocess.run(
            [str(python), str(script), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise RefVenvError(f"{script.name} ran over {timeout_s:.0f} s in {python}") from None
    if proc.returncode != 0:
        raise RefVenvError(f"{script.name} failed in {python}: {_tail(proc.stderr, 3)}")
    return proc.stdout
