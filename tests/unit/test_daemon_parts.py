"""The daemon's small parts on their own: the data dir lock, sd_notify over a real
datagram socket, the supervisor's watchdog gating, the reply route, the sink fanout."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from edge import sdnotify
from edge.control import ReplyRoute
from edge.errors import EdgeError
from edge.events import Event, ModelRef
from edge.lock import DataDirBusyError, DataDirLock
from edge.sinks import SinkFanout, sink_names
from edge.supervise import ComponentHealth
from edge.supervisor import Supervisor


@pytest.fixture
def notify_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    d = Path(tempfile.mkdtemp(prefix="sd-", dir="/tmp"))  # AF_UNIX paths are short
    path = d / "notify"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(1.0)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield s
    s.close()
    path.unlink()
    d.rmdir()


def drain(s: socket.socket) -> list[str]:
    out = []
    s.settimeout(0.05)
    while True:
        try:
            out.append(s.recv(4096).decode())
        except TimeoutError:
            return out


def test_lock_is_exclusive_names_the_holder_and_is_released(tmp_path: Path) -> None:
    a, b = DataDirLock(tmp_path / "d"), DataDirLock(tmp_path / "d")
    a.acquire()  # creates the dir
    with pytest.raises(DataDirBusyError, match=f"PID {os.getpid()}") as exc:
        b.acquire()
    assert exc.value.exit_code == 3 and "edgewise.lock" in str(exc.value)
    a.release()
    b.acquire()
    assert (tmp_path / "d" / "edgewise.lock").read_text().strip() == str(os.getpid())
    b.release()


def test_lock_on_an_uncreatable_dir_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(EdgeError, match="cannot create the data dir's lock file"):
        DataDirLock(tmp_path / "file" / "data").acquire()


def test_sd_notify_sends_one_datagram(notify_socket: socket.socket) -> None:
    assert sdnotify.notify("READY=1")
    assert notify_socket.recv(4096) == b"READY=1"


def test_sd_notify_without_socket_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False


def test_a_dependency_that_is_down_is_red_but_still_feeds_the_watchdog(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker outage (or a camera without frames) makes /healthz red, but the process is
    working: starving the watchdog would restart it every 30 s for nothing."""
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    now = [0.0]
    broker = ComponentHealth("sync-broker", False, "broker unreachable for 90 s", dependency=True)
    comps = [ComponentHealth("a", True), broker]
    sup = Supervisor(lambda: comps, clock=lambda: now[0])
    v = sup.poll()
    assert not v.ok and v.alive and v.to_json()["sync-broker"]["dependency"] is True
    assert drain(notify_socket) == ["WATCHDOG=1"]
    comps[0] = ComponentHealth("a", False, "thread is not running")  # our own part: starve
    now[0] = 2.0
    assert not sup.poll().alive
    assert drain(notify_socket) == []


def test_watchdog_is_fed_only_while_every_component_is_healthy(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")  # every 1 s
    now = [0.0]
    comps = [ComponentHealth("a", True), ComponentHealth("b", True)]
    sup = Supervisor(lambda: comps, clock=lambda: now[0])
    sup.poll()
    now[0] = 0.5
    sup.poll()  # too soon
    assert drain(notify_socket) == ["WATCHDOG=1"]
    comps[1] = ComponentHealth("b", False, "thread is not running", 1)
    for t in (1.0, 2.0, 3.0):
        now[0] = t
        assert sup.poll().ok is False
    assert drain(notify_socket) == []  # starved: systemd will restart us
    comps[1] = ComponentHealth("b", True, None, 1)
    now[0] = 4.0
    sup.poll()
    assert drain(notify_socket) == ["WATCHDOG=1"]


def test_supervisor_reports_fatal_and_a_broken_probe() -> None:
    sup = Supervisor(lambda: [ComponentHealth("x", False, "gone", 5, fatal=True)])
    assert [c.name for c in sup.poll().fatal] == ["x"]

    def broken() -> list[ComponentHealth]:
        raise RuntimeError("probe")

    v = Supervisor(broken).poll()
    assert v.ok is False and "probe" in (v.components[0].reason or "")


def test_reply_route_waits_for_the_live_sender() -> None:
    route = ReplyRoute()
    sent: list[tuple[str, bytes]] = []
    connected = threading.Event()

    def new_sink(name: str, payload: bytes) -> bool:
        if not connected.is_set():
            return False
        sent.append((name, payload))
        return True

    def old_sink(name: str, payload: bytes) -> bool:
        raise AssertionError("the replaced sink must not be used")

    route.attach(old_sink)
    route.attach(new_sink)  # a reload replaced the sink
    route.detach(old_sink)  # the old one closing later detaches nothing
    threading.Timer(0.2, connected.set).start()
    t0 = time.monotonic()
    assert route.send("config", b"{}", timeout_s=5)
    assert sent == [("config", b"{}")] and time.monotonic() - t0 >= 0.15
    route.detach(new_sink)
    assert route.send("config", b"{}", timeout_s=0.1) is False


class _Failing:
    def __init__(self) -> None:
        self.calls = 0

    def emit(self, event: Event) -> None:
        self.emit_many([event])

    def emit_many(self, events: Sequence[Event]) -> int:
        self.calls += 1
        if self.calls <= 3:
            raise OSError(28, "No space left on device")
        return len(events)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def health(self) -> list[ComponentHealth]:
        return []


def _event() -> Event:
    return Event("cam", "vision", "face", 0.9, "start", 1.0, 1.0, ModelRef("m", "1", "ab" * 6))


def test_fanout_counts_failures_and_losses_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    bad = _Failing()
    fan = SinkFanout([("jsonl", bad)])
    for _ in range(3):
        fan.emit_many([_event(), _event()])
    st = fan.stats["jsonl"]
    assert (st.failures, st.lost, st.failing) == (3, 6, True)
    assert fan.health()[0].ok is False and "6 event(s) lost" in (fan.health()[0].reason or "")
    assert sum("write failed" in r.getMessage() for r in caplog.records) == 1
    fan.emit_many([_event()])
    assert fan.health()[0].ok is True and st.failures == 3  # counters keep their totals


def test_sink_names_number_a_second_sink_of_a_type() -> None:
    from edge.config import JsonlSinkConfig, MqttSinkConfig, SinkConfig

    cfgs: list[SinkConfig] = [
        JsonlSinkConfig(type="jsonl", path=Path("a")),
        MqttSinkConfig(type="mqtt"),
        JsonlSinkConfig(type="jsonl", path=Path("b")),
    ]
    assert sink_names(cfgs) == ["jsonl", "mqtt", "jsonl#2"]


def test_guarded_thread_is_unhealthy_while_it_waits_to_restart() -> None:
    """A crashed thread in its restart backoff is alive as a thread but does no work: red."""
    from edge.supervise import GuardedThread

    runs: list[int] = []
    go_on = threading.Event()

    def target() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("lost it")
        go_on.wait(5)

    stop = threading.Event()
    g = GuardedThread("w", target, stop=stop, backoff_s=(0.5, 0.5))
    g.start()
    wait_until = time.monotonic() + 2
    while g.health().ok and time.monotonic() < wait_until:
        time.sleep(0.01)
    h = g.health()  # within the 0.5 s backoff
    assert h.ok is False and "lost it" in (h.reason or "") and h.restarts == 0
    while len(runs) < 2 and time.monotonic() < wait_until:
        time.sleep(0.01)
    h = g.health()
    assert h.ok is True and h.restarts == 1
    stop.set()
    go_on.set()
    assert g.join(2)
