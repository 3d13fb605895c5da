"""Child processes the test helpers start (brokers, daemons, hubs): each is killed at
interpreter exit if it is still running, so a test that fails half way leaves nothing
behind; ``stop`` signals one by its own PID and waits for it."""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
from typing import Any

_RUNNING: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _stop_leftovers() -> None:
    """A test that failed before stopping its child must not leave it running."""
    for proc in list(_RUNNING):
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def spawn(argv: list[str], **popen: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **popen)``, killed at exit unless stopped before."""
    proc: subprocess.Popen[bytes] = subprocess.Popen(argv, **popen)
    _RUNNING.add(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], sig: int, timeout: float) -> int:
    """Send ``sig`` and wait for the exit (SIGKILL after ``timeout``); the exit code."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    _RUNNING.discard(proc)
    return proc.returncode
