"""The demo's MQTT broker: mosquitto when it is on PATH, otherwise amqtt (a Python
broker, MQTT 3.1.1 only), each on a free loopback port, stopped by PID."""

from __future__ import annotations

import importlib.util
import random
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from edge.errors import EdgeError


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A loopback TCP port that nothing listens on, chosen outside the kernel's ephemeral
    range: a port the kernel handed out (``bind(0)``) can be given again, between our
    check and the server's bind, to any outgoing connection on the machine as its local
    port (the server's own MQTT or database client included), and the bind then fails
    with "address already in use". Outside that range only another server can take it."""
    low, high = _ephemeral_range()
    pool = [p for p in range(20000, 32768) if not low <= p <= high] or list(range(1024, low))
    for port in random.sample(pool, min(200, len(pool))):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # nothing free in the pool: let the kernel choose
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), 0.2):
            return True
    except OSError:
        return False


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise EdgeError(
                f"the process meant to listen on 127.0.0.1:{port} exited ({proc.returncode})"
            )
        if listening(port):
            return
        time.sleep(0.05)
    raise EdgeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


@dataclass
class Broker:
    kind: str  # "mosquitto" or "amqtt"
    port: int
    protocol: str  # the MQTT version both sides use: "5" or "3.1.1"
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_broker(
    workdir: Path, log: IO[bytes], prefer: str = "auto", port: int | None = None
) -> Broker:
    """Start a broker on 127.0.0.1:``port`` (a free one when ``None``)."""
    port = free_port() if port is None else port
    mosquitto = shutil.which("mosquitto")
    if prefer in ("auto", "mosquitto") and mosquitto:
        conf = workdir / "mosquitto.conf"
        # The hub keeps a persistent session: queue generously for it while it restarts.
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 100000\n"
        )
        proc = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=log, stderr=log)  # noqa: S603  no shell
        wait_port(port, 10, proc)
        return Broker("mosquitto", port, "5", proc)
    if prefer == "mosquitto":
        raise EdgeError("mosquitto is not on PATH: install it (apt-get install mosquitto)")
    if importlib.util.find_spec("amqtt") is None:
        raise EdgeError(
            "no MQTT broker: mosquitto is not on PATH and amqtt is not installed; "
            "apt-get install mosquitto, or pip install 'edgewise[demo]'"
        )
    conf = workdir / "amqtt.yaml"
    conf.write_text(
        "listeners:\n  default:\n    type: tcp\n"
        f"    bind: 127.0.0.1:{port}\n"
        "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"
    )
    cmd = [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)  # noqa: S603  our argv, no shell
    wait_port(port, 20, proc)
    return Broker("amqtt", port, "3.1.1", proc)
