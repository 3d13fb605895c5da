"""Real `edge run` and `edge-hub serve` processes for fault tests: restartable with the same
config, data dir, HTTP port and MQTT client id; stopped by their own PID.

Every process started here is also killed at interpreter exit, so a test that fails half
way leaves nothing running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from edge.demo.broker import free_port
from tests.support import children


class _Proc:
    """One restartable child process; its stderr is appended to ``log``."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _spawn(self, argv: list[str]) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with self.log.open("ab") as f:
            f.write(f"--- start {self.starts} ---\n".encode())
            f.flush()
            self.proc = children.spawn(argv, stdout=subprocess.DEVNULL, stderr=f)
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int, timeout: float = 15.0) -> int | None:
        """Send ``sig`` and wait for the exit (SIGKILL after ``timeout``); the exit code."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        return children.stop(proc, sig, timeout)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)

    def terminate(self, timeout: float = 15.0) -> int | None:
        return self.signal(signal.SIGTERM, timeout)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


class EdgeDaemon(_Proc):
    """``edge run --config CONFIG``; ``start`` again after a kill keeps config and data dir."""

    def __init__(self, config: Path, log: Path) -> None:
        super().__init__(log)
        self.config = config

    def start(self) -> EdgeDaemon:
        self._spawn([sys.executable, "-m", "edge.cli.main", "run", "--config", str(self.config)])
        return self

    def reload(self) -> None:
        """SIGHUP: re-read the config file."""
        assert self.proc is not None and self.proc.poll() is None, "daemon not running"
        os.kill(self.proc.pid, signal.SIGHUP)


class HubServer(_Proc):
    """``edge-hub serve`` with a fixed HTTP port and MQTT client id, so a restart resumes
    the same broker session (the hub names its session after the client id)."""

    def __init__(
        self,
        db: str,
        mqtt_port: int,
        log: Path,
        *,
        prefix: str = "edgewise/v1",
        group: str = "edge-hub",
        name: str = "hub",
    ) -> None:
        super().__init__(log)
        self.db = db
        self.mqtt_port = mqtt_port
        self.prefix = prefix
        self.group = group
        self.http_port = free_port()
        self.client_id = f"{name}-{uuid.uuid4().hex[:8]}"

    def start(self, timeout: float = 30.0) -> HubServer:
        exe = Path(sys.executable).with_name("edge-hub")
        self._spawn(
            [str(exe), "serve", "--db", self.db, "--mqtt-port", str(self.mqtt_port),
             "--prefix", self.prefix, "--group", self.group, "--client-id", self.client_id,
             "--http-port", str(self.http_port)]
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.get("/healthz").get("mqtt_connected"):
                    return self
            except (OSError, ValueError):
                pass
            if not self.alive or time.monotonic() > deadline:
                raise RuntimeError(f"edge-hub did not come up:\n{self.tail()}")
            time.sleep(0.1)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(self.url(path), timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:  # /healthz answers 503 with a JSON body
            return json.loads(e.read())

    def events(self, device: str) -> list[dict[str, Any]]:
        """Every stored event of ``device``, oldest first, paged with the API's cursor."""
        out: list[dict[str, Any]] = []
        cursor = ""
        while True:
            q = urllib.parse.urlencode({"device": device, "order": "asc", "limit": 1000})
            page = self.get(f"/api/events?{q}{cursor}")
            out += page["events"]
            if page["next_cursor"] is None:
                return out
            cursor = f"&cursor={page['next_cursor']}"
