"""Issue 10 case 6: the hub's health tells the truth, its shutdown is bounded, what it refuses
is kept, and a thread that fails for good stops it with a non-zero exit."""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from pathlib import Path

import pytest

from cloud_sync.schema import topic
from tests.integration.hub_support import HubProc, Publisher, http, wait_for
from tests.support.mosquitto import start_broker

pytestmark = pytest.mark.slow


def test_healthz_is_503_with_the_reason_while_the_broker_is_down_and_says_so_in_the_log(
    tmp_path: Path,
) -> None:
    """issue 10 case 6: /healthz said ok with the broker unreachable and nothing was logged."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    broker = start_broker(tmp_path / "mq")
    hub = HubProc(f"sqlite:///{tmp_path}/hub.db", broker.port, prefix, tmp_path / "hub.log")
    try:
        status, body = hub.health()
        assert (status, body["ok"], body["reasons"]) == (200, True, [])
        assert body["components"]["mqtt"]["ok"] and body["components"]["database"]["ok"]
        broker.stop()
        status, body = wait_for(lambda: (h := hub.health())[0] == 503 and h, timeout=10)
        assert body["ok"] is False and body["mqtt_connected"] is False
        assert any(r.startswith("mqtt: broker 127.0.0.1:") for r in body["reasons"]), body
        time.sleep(1.0)
        broker.start()
        wait_for(lambda: hub.health()[0] == 200, timeout=10)
        log = hub.log.read_text()
        assert "lost the broker" in log and "reconnecting in" in log
        assert log.count(f"connected to 127.0.0.1:{broker.port}") >= 2
    finally:
        hub.stop()
        broker.stop()


def test_sigterm_with_a_connected_sse_client_exits_0_within_5_s(tmp_path: Path) -> None:
    """issue 10 case 6: with one dashboard (SSE) client connected, SIGTERM did not stop the hub."""
    broker = start_broker(tmp_path / "mq")
    hub = HubProc(f"sqlite:///{tmp_path}/hub.db", broker.port, "p", tmp_path / "hub.log")
    sock = socket.create_connection(("127.0.0.1", hub.port), timeout=10)
    try:
        sock.sendall(b"GET /api/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        first = sock.recv(4096)
        assert b"200 OK" in first and b"text/event-stream" in first
        wait_for(lambda: "edge_hub_sse_clients 1" in _metrics(hub), timeout=5)
        t0 = time.monotonic()
        hub.p.send_signal(signal.SIGTERM)
        rc = hub.p.wait(8)
        took = time.monotonic() - t0
        assert rc == 0, hub.log.read_text()[-2000:]
        assert took < 5.0, f"took {took:.1f} s"
    finally:
        sock.close()
        if hub.p.poll() is None:
            hub.p.kill()
        broker.stop()


def _metrics(hub: HubProc) -> str:
    import urllib.request

    with urllib.request.urlopen(hub.url("/metrics"), timeout=5) as r:
        return str(r.read().decode())


def test_a_batch_it_refuses_is_kept_in_the_quarantine_with_its_reason(tmp_path: Path) -> None:
    """issue 10 case 6: a batch the hub rejected was dropped; now it is kept and listed."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    broker = start_broker(tmp_path / "mq")
    hub = HubProc(f"sqlite:///{tmp_path}/hub.db", broker.port, prefix, tmp_path / "hub.log",
                  "--token", "s3cret")  # fmt: skip
    pub = Publisher(broker.port)
    auth = {"Authorization": "Bearer s3cret"}
    try:
        pub.publish(topic(prefix, "cam-1", "events"), [b'{"v": 1, "device_id": "cam-1"}'])
        status, body = wait_for(
            lambda: (r := http(hub.url("/api/quarantine"), headers=auth))[1].get("total") and r
        )
        assert status == 200
        (q,) = body["quarantine"]
        assert (q["reason"], q["device_id"], q["topic"]) == (
            "bad_schema", "cam-1", f"{prefix}/cam-1/events"
        )  # fmt: skip
        assert q["payload"] == '{"v": 1, "device_id": "cam-1"}' and q["count"] == 1
        assert http(hub.url("/api/quarantine"))[0] == 401  # behind the token like the rest
        assert "edge_hub_messages_quarantined_total" in _metrics_auth(hub)
    finally:
        pub.close()
        hub.stop()
        broker.stop()


def _metrics_auth(hub: HubProc) -> str:
    import urllib.request

    req = urllib.request.Request(hub.url("/metrics"), headers={"Authorization": "Bearer s3cret"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return str(r.read().decode())


def test_a_writer_that_fails_for_good_makes_the_hub_exit_non_zero(tmp_path: Path) -> None:
    """issue 10 case 6: the writer runs as a GuardedThread; past its restart budget it is fatal,
    /healthz says so, and `edge-hub serve` exits 1 (a service manager restarts it)."""
    inject = tmp_path / "inject"
    inject.mkdir()
    # A fault injected into the real process: the writer's loop raises on every start.
    (inject / "sitecustomize.py").write_text(
        "import cloud_sync.hub.ingest as i\n"
        "def boom(self):\n"
        "    raise RuntimeError('injected writer fault')\n"
        "i.Ingest._write_loop = boom\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{inject}{os.pathsep}{env.get('PYTHONPATH', '')}"
    broker = start_broker(tmp_path / "mq")
    t0 = time.monotonic()
    try:
        hub = HubProc(f"sqlite:///{tmp_path}/hub.db", broker.port, "p", tmp_path / "hub.log",
                      env=env)  # fmt: skip
    except RuntimeError:  # it may already be on its way out: the exit code is what counts
        hub = None
    try:
        log = tmp_path / "hub.log"
        if hub is not None:
            _, body = wait_for(lambda: (h := hub.health())[0] == 503 and h, timeout=10)
            assert "hub-writer" in body["components"]
        deadline = time.monotonic() + 20
        while hub is not None and hub.p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        rc = hub.p.returncode if hub is not None else None
        assert rc == 1, log.read_text()[-3000:]
        text = log.read_text()
        assert "injected writer fault" in text and "exiting 1: hub-writer" in text
        assert time.monotonic() - t0 < 25
    finally:
        if hub is not None and hub.p.poll() is None:
            hub.p.kill()
        broker.stop()
