"""Run ``tests.support.publisher_proc`` as a child process and read what it prints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class DeviceProc:
    def __init__(
        self,
        port: int,
        data: Path,
        *,
        emit: int = 0,
        group: int = 10,
        every: float = 0.0,
        delivery: str = "hub",
    ) -> None:
        args = [sys.executable, "-m", "tests.support.publisher_proc", "--port", str(port)]
        args += ["--data", str(data), "--emit", str(emit), "--group", str(group)]
        args += ["--every", str(every), "--delivery", delivery]
        self.proc = subprocess.Popen(
            args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip())

    def wait_line(self, prefix: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if line.startswith(prefix):
                    return line
            if self.proc.poll() is not None and not any(x.startswith(prefix) for x in self.lines):
                break
            time.sleep(0.02)
        raise TimeoutError(f"device never printed {prefix!r}; stderr: {self.stderr[-5:]}")

    def committed(self) -> int:
        """The outbox's next seq after the last commit it reported (= events committed so far)."""
        values = [int(x.split()[1]) for x in self.lines if x.startswith("committed")]
        return max(values, default=0)

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 15.0) -> int:
        os.kill(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout)
