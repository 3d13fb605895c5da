"""Issue 10 case 14: stored values that break reads. Rows a legacy hub (or a hand) wrote with
Infinity or a timestamp in year 0 / 10000 are skipped and counted by every reader: no 500, no
frozen live feed, resume works, and nothing non-JSON goes out on the feed."""

from __future__ import annotations

import json
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from cloud_sync.hub.db import open_store
from tests.integration.hub_support import HubProc, http, make_batch, wait_for
from tests.support.mosquitto import start_broker

pytestmark = pytest.mark.slow
YEAR_0 = -62167219200.0  # 0000-01-01T00:00:00Z as epoch seconds
YEAR_10000 = 253402300800.0
INF = float("inf")


class Db:
    """Raw SQL on the hub's database, as a legacy row would have been written."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            import sqlite3

            self.con: Any = sqlite3.connect(url[len("sqlite:///") :])
            self.mark = "?"
        else:
            import psycopg

            self.con = psycopg.connect(url, autocommit=True)
            self.mark = "%s"

    def run(self, sql: str, params: tuple[Any, ...]) -> None:
        self.con.execute(sql.replace("?", self.mark), params)
        if self.url.startswith("sqlite"):
            self.con.commit()

    def event(self, device: str, seq: int, ts: float = 1.7e9, latency: float = 1.0) -> None:
        self.run(
            "INSERT INTO events (id, device_id, boot_id, seq, stream, kind, label, score, phase,"
            " started_at, ts, box, track_id, model_name, model_version, model_sha256, latency_ms,"
            " received_at) VALUES (?, ?, ?, ?, 'cam0', 'vision', 'face', 0.5, 'start', ?, ?, NULL,"
            " NULL, 'm', '1', 'abcdef', ?, ?)",
            (str(uuid.uuid4()), device, str(uuid.uuid4()), seq, ts, ts, latency, 1.7e9),
        )

    def close(self) -> None:
        self.con.close()


class Sse:
    """A raw SSE client: what a browser's EventSource reads, line by line."""

    def __init__(self, port: int, last_id: int | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        extra = f"Last-Event-ID: {last_id}\r\n" if last_id is not None else ""
        self.sock.sendall(f"GET /api/stream HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
        self.buf = b""

    def events(self, n: int, timeout: float = 10.0) -> list[tuple[int, Any]]:
        """The next ``n`` events as (id, parsed data); every data line must be JSON."""
        out: list[tuple[int, Any]] = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            while b"\n\n" not in self.buf:
                if time.monotonic() > deadline:
                    raise AssertionError(f"got {len(out)} of {n} events: {self.buf[-500:]!r}")
                self.sock.settimeout(max(deadline - time.monotonic(), 0.1))
                chunk = self.sock.recv(65536)
                assert chunk, "stream closed"
                self.buf += chunk
            block, self.buf = self.buf.split(b"\n\n", 1)
            lines = dict(
                ln.split(": ", 1) for ln in block.decode().splitlines() if ": " in ln
            )  # chunked-encoding sizes and headers have no ": " pair of interest here
            if lines.get("event") == "event":
                out.append((int(lines["id"]), json.loads(lines["data"])))  # strict JSON
        return out

    def close(self) -> None:
        self.sock.close()


def test_rows_that_cannot_be_rendered_are_skipped_and_counted_not_a_500(
    db_url: str, tmp_path: Path
) -> None:
    """issue 10 case 14: latency Infinity and ts in year 0 / 10000 made /api/events answer 500;
    telemetry with Infinity made /api/devices/{id}/telemetry answer 500; the year-0 row froze the
    live feed and resume failed; Infinity went out on the feed as the bare word."""
    store = open_store(db_url)
    store.migrate()
    boot = str(uuid.uuid4())
    store.write([make_batch("cam-1", boot, range(0, 2))])
    store.close()
    db = Db(db_url)
    db.event("cam-1", 2, latency=INF)
    db.event("cam-1", 3, ts=YEAR_0)
    db.event("cam-1", 4, ts=YEAR_10000)
    db.event("cam-1", 20)
    db.run(
        "INSERT INTO telemetry VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("cam-1", time.time() - 10, boot, INF, 1.0, 1.0, 1.0, 0, 0, "{}"),
    )
    db.run(
        "INSERT INTO telemetry VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("cam-1", time.time() - 5, boot, 30.0, 1.0, 1.0, 1.0, 0, 0, "{}"),
    )
    db.run("UPDATE devices SET last_telemetry = ? WHERE device_id = ?",
           ('{"fps": Infinity}', "cam-1"))  # fmt: skip
    broker = start_broker(tmp_path / "mq")
    hub = HubProc(db_url, broker.port, "p", tmp_path / "hub.log")
    live = Sse(hub.port)
    try:
        status, body = http(hub.url("/api/events?device=cam-1&order=asc"))
        assert status == 200, body
        assert [e["seq"] for e in body["events"]] == [0, 1, 20]
        status, body = http(hub.url("/api/devices/cam-1/telemetry?since=0"))
        assert status == 200, body
        assert [t["fps"] for t in body["telemetry"]] == [30.0]
        status, body = http(hub.url("/api/devices"))
        assert status == 200 and body["devices"][0]["telemetry"] is None
        assert http(hub.url("/api/devices/cam-1"))[0] == 200
        assert http(hub.url("/api/stats/labels?since=0"))[0] == 200
        assert http(hub.url("/api/gaps"))[0] == 200
        # resume from before the bad rows: the good ones come, the bad ones are passed over
        resume = Sse(hub.port, last_id=0)
        got = resume.events(3)
        assert [e["seq"] for _, e in got] == [0, 1, 20]
        resume.close()
        # live: bad rows written now do not freeze the feed for the good row behind them
        db.event("cam-1", 5, ts=YEAR_0)
        db.event("cam-1", 6, latency=INF)
        db.event("cam-1", 7)
        ((_, e),) = live.events(1)
        assert e["seq"] == 7
        metrics = wait_for(lambda: _metrics(hub) if "rows_unreadable_total{" in _metrics(hub)
                           else None)  # fmt: skip
        assert 'edge_hub_rows_unreadable_total{table="events"}' in metrics
        assert hub.health()[0] == 200
    finally:
        live.close()
        db.close()
        hub.stop()
        broker.stop()


def _metrics(hub: HubProc) -> str:
    import urllib.request

    with urllib.request.urlopen(hub.url("/metrics"), timeout=5) as r:
        return str(r.read().decode())
