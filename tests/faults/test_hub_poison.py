"""Issue 10 case 13: one message stopped ingest for good. Now every message that cannot be
stored is quarantined and acknowledged, and the messages behind it are stored."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from cloud_sync.hub.db import open_store
from cloud_sync.schema import topic
from tests.integration.hub_support import (
    AckListener,
    HubProc,
    Publisher,
    http,
    make_batch,
    make_telemetry,
    wait_for,
)
from tests.support.mosquitto import start_broker

pytestmark = pytest.mark.slow
TOKEN = {"Authorization": "Bearer t0k"}


def _batch_doc(device: str, boot: str, seqs: range) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(make_batch(device, boot, seqs).model_dump_json())
    return doc


def poison(device: str, boot: str) -> list[tuple[str, bytes]]:
    """(kind, payload): each one stalled the writer on main."""
    out: list[tuple[str, bytes]] = []
    d = _batch_doc(device, boot, range(900, 901))
    d["events"][0]["seq"] = 2**64  # SQLite OverflowError
    out.append(("events", json.dumps(d).encode()))
    d = _batch_doc(device, boot, range(901, 902))
    d["events"][0]["track_id"] = 2**70
    out.append(("events", json.dumps(d).encode()))
    d = _batch_doc(device, boot, range(902, 903))
    d["events"][0]["label"] = "fa\x00ce"  # PostgreSQL refuses a NUL in text
    out.append(("events", json.dumps(d).encode()))
    t = json.loads(make_telemetry(device, boot, 1.0, 1.0).model_dump_json())
    t["outbox"]["depth"] = 2**70
    out.append(("telemetry", json.dumps(t).encode()))
    out.append(("events", b"[" * 100_000 + b"]" * 100_000))  # 200 kB, RecursionError
    return out


def _quarantine(hub: HubProc) -> dict[str, Any]:
    status, body = http(hub.url("/api/quarantine?limit=200"), headers=TOKEN)
    assert status == 200, body
    return dict(body)


def _count(hub: HubProc, device: str) -> int:
    devs = http(hub.url("/api/devices"), headers=TOKEN)[1]["devices"]
    return sum(d["events"] for d in devs if d["device_id"] == device)


def test_poison_messages_are_quarantined_and_the_ones_behind_them_stored(
    db_url: str, tmp_path: Path
) -> None:
    """issue 10 case 13: seq 2**64, track_id 2**70, a NUL in a label, outbox.depth 2**70 and
    JSON 100,000 levels deep are each quarantined and acknowledged; the good batch behind them
    is stored; a restarted worker does not stall on any of them (they were MQTT-acked)."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    boot = str(uuid.uuid4())
    broker = start_broker(tmp_path / "mq", "max_inflight_messages 1000")
    args = ("--token", "t0k", "--client-id", "hub-poison")
    hub = HubProc(db_url, broker.port, prefix, tmp_path / "hub.log", *args)
    pub = Publisher(broker.port)
    acks = AckListener(broker.port, prefix)
    try:
        for kind, payload in poison("cam-1", boot):
            pub.publish(topic(prefix, "cam-1", kind), [payload])  # type: ignore[arg-type]
        good = make_batch("cam-1", boot, range(0, 10))
        pub.publish(topic(prefix, "cam-1", "events"), [good.model_dump_json().encode()])
        wait_for(lambda: _count(hub, "cam-1") == 10, timeout=15)
        body = wait_for(lambda: (q := _quarantine(hub))["total"] >= 5 and q, timeout=10)
        reasons = sorted(q["reason"] for q in body["quarantine"])
        # integers past 64 bits and the NUL label fail the schema on their own event (the
        # rest of such a batch is stored); JSON nested 100,000 deep is refused by the decoder
        assert reasons == ["bad_schema"] * 4 + ["not_json"], body
        assert all(q["device_id"] == "cam-1" for q in body["quarantine"])
        assert max(len(q["payload"]) for q in body["quarantine"]) <= 64 * 1024
        # the good batch and the salvageable bad events are acknowledged to the device
        # (a quarantined event is kept where an operator sees it: acknowledged too)
        wait_for(lambda: set(range(10)) | {901, 902} <= acks.acked("cam-1"), timeout=10)
        # a seq of 2**64 is no seq a device can have assigned, and a message that is not
        # JSON gives no seqs at all: both are kept, and nothing is acknowledged for them
        assert max(acks.acked("cam-1")) < 2**63
        status, health = hub.health()
        assert status == 200, health
        hub.stop()
        # A new worker with the same session: nothing is redelivered, nothing stalls.
        hub = HubProc(db_url, broker.port, prefix, tmp_path / "hub2.log", *args)
        more = make_batch("cam-1", boot, range(10, 20))
        pub.publish(topic(prefix, "cam-1", "events"), [more.model_dump_json().encode()])
        wait_for(lambda: _count(hub, "cam-1") == 20, timeout=15)
        assert _quarantine(hub)["total"] == 5
    finally:
        acks.close()
        pub.close()
        hub.stop()
        broker.stop()


def test_a_retained_poison_status_does_not_stall_new_workers(db_url: str, tmp_path: Path) -> None:
    """issue 10 case 13: a bad message left retained on <device>/status stalled every new worker
    at start; now each worker quarantines it (once: the same payload bumps a count) and goes on."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    boot = str(uuid.uuid4())
    broker = start_broker(tmp_path / "mq")
    pub = Publisher(broker.port)
    bad = b'{"v": 1, "device_id": "cam-2", "state": "online", "epoch": 1180591620717411303424}'
    pub.publish(topic(prefix, "cam-2", "status"), [bad], retain=True)
    try:
        for i in range(2):
            # the same worker restarting (a second client id would leave the first one's
            # persistent $share session in the group, and mosquitto queues to it)
            h = HubProc(db_url, broker.port, prefix, tmp_path / f"hub{i}.log", "--token", "t0k",
                        "--client-id", "hub-retained")  # fmt: skip
            try:
                b = make_batch("cam-2", boot, range(i * 5, i * 5 + 5))
                pub.publish(topic(prefix, "cam-2", "events"), [b.model_dump_json().encode()])
                n = 5 * (i + 1)
                wait_for(lambda h=h, n=n: _count(h, "cam-2") == n, timeout=15)  # type: ignore[misc]
                (q,) = wait_for(lambda h=h: _quarantine(h)["quarantine"], timeout=10)  # type: ignore[misc]
                assert q["topic"].endswith("/cam-2/status")
                wait_for(lambda h=h, n=i + 1: _quarantine(h)["quarantine"][0]["count"] == n)  # type: ignore[misc]
            finally:
                h.stop()
    finally:
        pub.close()
        broker.stop()


def _refuse_label(db_url: str, tmp_path: Path) -> None:
    """A database that refuses one value: a trigger (real engine errors, not a mock)."""
    store = open_store(db_url)
    store.migrate()
    store.close()
    if db_url.startswith("sqlite"):
        con = sqlite3.connect(db_url[len("sqlite:///") :])
        con.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.label = 'refused'"
            " BEGIN SELECT RAISE(ABORT, 'label refused by a trigger'); END"
        )
        con.commit()
        con.close()
        return
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as con:
        con.execute(
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.label = 'refused' THEN"
            " RAISE EXCEPTION 'label refused by a trigger'; END IF; RETURN NEW; END $$"
            " LANGUAGE plpgsql"
        )
        con.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse()"
        )


def test_an_event_the_database_refuses_is_quarantined_and_the_rest_of_its_batch_stored(
    db_url: str, tmp_path: Path
) -> None:
    """issue 10 case 13, the class fix: any store exception for one message quarantines that
    message (per event within a batch), never blocks the messages behind it, and still acks."""
    _refuse_label(db_url, tmp_path)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    boot = str(uuid.uuid4())
    broker = start_broker(tmp_path / "mq")
    hub = HubProc(db_url, broker.port, prefix, tmp_path / "hub.log", "--token", "t0k")
    pub = Publisher(broker.port)
    acks = AckListener(broker.port, prefix)
    try:
        d = _batch_doc("cam-3", boot, range(0, 5))
        d["events"][2]["label"] = "refused"
        pub.publish(topic(prefix, "cam-3", "events"), [json.dumps(d).encode()])
        after = make_batch("cam-3", boot, range(5, 8))
        pub.publish(topic(prefix, "cam-3", "events"), [after.model_dump_json().encode()])
        wait_for(lambda: _count(hub, "cam-3") == 7, timeout=15)
        (q,) = wait_for(lambda: _quarantine(hub)["quarantine"], timeout=10)
        assert q["reason"] == "store_failed" and "refused by a trigger" in q["detail"]
        assert json.loads(q["payload"])["seq"] == 2
        wait_for(lambda: acks.acked("cam-3") == set(range(8)), timeout=10)
        stored = http(hub.url("/api/events?device=cam-3&order=asc"), headers=TOKEN)[1]["events"]
        assert [e["seq"] for e in stored] == [0, 1, 3, 4, 5, 6, 7]
        assert hub.health()[0] == 200
    finally:
        acks.close()
        pub.close()
        hub.stop()
        broker.stop()
