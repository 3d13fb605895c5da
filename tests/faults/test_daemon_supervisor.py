"""issue 10: a supervisor over every long-lived thread. A thread that dies is noticed and
counted, /healthz turns 503 with the reason and the restart count, the thread is
restarted within its budget, and past it `edge run` shuts down and exits 4 so the
service manager restarts the process. Under systemd (`Type=notify`, `WatchdogSec=`) the
daemon says READY=1 once running and feeds WATCHDOG=1 only while every component is
healthy. The health listener itself runs guarded: if it cannot be kept up, that is fatal."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from edge.daemon import Daemon
from edge.demo.broker import free_port
from edge.supervisor import ComponentFailedError
from tests.fixtures.video import DEFAULT_SPANS, face_video
from tests.support import crash_sink
from tests.support.edge_run import EdgeRun, device_toml, get, healthz, metric, wait_for

SINKS = '[[sinks]]\ntype = "stdout"\n\n[[sinks]]\ntype = "jsonl"\npath = "events.jsonl"\n'
PRELUDE = "import tests.support.crash_sink"  # the stdout sink is now the crashy one


class NotifySocket:
    """What systemd would receive: every datagram on $NOTIFY_SOCKET, with its time."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sd-", dir="/tmp"))  # AF_UNIX paths are short
        self.path = self.dir / "notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.2)
        self.got: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.got.append((time.monotonic(), data.decode()))

    def messages(self, since: float = 0.0) -> list[str]:
        return [m for t, m in list(self.got) if t >= since]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        self.path.unlink(missing_ok=True)
        self.dir.rmdir()


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return face_video(tmp_path / "faces.avi", 240, DEFAULT_SPANS)[0]


def test_thread_that_keeps_dying_turns_health_red_then_exits_4(tmp_path: Path, video: Path) -> None:
    port = free_port()
    cfg = tmp_path / "device.toml"
    cfg.write_text(device_toml(tmp_path / "data", video, health_port=port, sinks=SINKS))
    trigger = tmp_path / "crash-now"
    notify = NotifySocket()
    env = {
        "CRASH_SINK_TRIGGER": str(trigger),
        "NOTIFY_SOCKET": str(notify.path),
        "WATCHDOG_USEC": "400000",  # a ping every 0.2 s while healthy
    }
    daemon = EdgeRun(cfg, tmp_path / "daemon.log", prelude=PRELUDE, env=env)
    try:
        wait_for(lambda: get(port, "/healthz")[0] == 200, 40, "healthy")
        body = healthz(port)[1]
        assert body["components"]["crashy.worker"] == {"ok": True, "restarts": 0}
        assert metric(port, "edgewise_component_up", 'component="crashy.worker"') == 1
        wait_for(lambda: notify.messages().count("WATCHDOG=1") >= 3, 10, "watchdog pings")
        assert notify.messages()[0] == "READY=1"

        trigger.touch()  # from now on the worker dies on every run
        red: list[dict[str, Any]] = []

        def red_with_a_restart() -> bool:
            code, body = healthz(port)
            comp = body.get("components", {}).get("crashy.worker", {})
            if code == 503 and comp.get("restarts", 0) >= 1:
                red.append(body)
            return bool(red)

        wait_for(red_with_a_restart, 15, "503 with a restart counted")
        red_at = time.monotonic()
        comp = red[0]["components"]["crashy.worker"]
        assert red[0]["ok"] is False and comp["restarts"] >= 1
        assert comp["ok"] is False or "crashy worker lost its device" in comp["reason"]
        rc = daemon.wait(30)
        assert rc == 4
        log = daemon.log()
        last = log.strip().splitlines()[-1]
        assert last.startswith("edge: error: crashy.worker failed for good")
        assert "crashy worker lost its device" in last
        assert log.count("crashy.worker: thread died") == crash_sink.MAX_RESTARTS + 1
        # systemd was never told all is well once the worker was down, and heard we stop
        after = notify.messages(red_at)
        assert "WATCHDOG=1" not in after, after
        assert after and after[-1] == "STOPPING=1"
    finally:
        daemon.kill()
        notify.close()


def test_dead_health_listener_is_fatal(tmp_path: Path, video: Path) -> None:
    """The listener is restarted a few times, then the daemon gives up: nobody could see
    its health. The fault is injected at the stdlib boundary: serve_forever's per-loop
    hook raises, as a broken selector would."""
    port = free_port()
    cfg = tmp_path / "device.toml"
    cfg.write_text(device_toml(tmp_path / "data", video, health_port=port))
    daemon = Daemon(cfg)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            daemon.run()
        except BaseException as exc:
            failure.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        wait_for(lambda: get(port, "/healthz")[0] == 200, 40, "healthy")
        server = daemon._health
        assert server is not None

        def broken() -> None:
            raise OSError(9, "Bad file descriptor")

        server._server.service_actions = broken  # type: ignore[method-assign]
        t.join(30)
        assert not t.is_alive(), "run() did not end"
        assert len(failure) == 1 and isinstance(failure[0], ComponentFailedError)
        assert failure[0].exit_code == 4
        assert "health failed for good" in str(failure[0])
        assert "Bad file descriptor" in str(failure[0])
        assert get(port, "/healthz")[0] == 0  # and it is closed, not half-alive
    finally:
        daemon.request_stop()
        t.join(10)
