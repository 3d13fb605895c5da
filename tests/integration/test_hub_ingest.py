"""A real mosquitto and `edge-hub serve` processes on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import threading
import time
import urllib.request
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud_sync.schema import topic
from tests.support.prom import value

from .hub_support import (
    HubProc,
    Publisher,
    make_batch,
    mosquitto,
    wait_for,
)

pytestmark = pytest.mark.slow


def all_events(hub: HubProc, device: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    cursor = ""
    while True:
        page = hub.get(f"/api/events?device={device}&order=asc&limit=1000{cursor}")
        out += page["events"]
        if page["next_cursor"] is None:
            return out
        cursor = f"&cursor={page['next_cursor']}"


def test_every_event_once_in_order_and_no_gaps(db_url: str, tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    devices = {f"cam-{i}": str(uuid.uuid4()) for i in range(3)}
    with mosquitto(tmp_path) as port:
        hub = HubProc(db_url, port, prefix, tmp_path / "hub.log")
        pub = Publisher(port)
        try:
            sent: dict[str, list[str]] = {d: [] for d in devices}
            for start in range(0, 300, 50):
                for d, boot in devices.items():
                    b = make_batch(d, boot, range(start, start + 50))
                    sent[d] += [e.id for e in b.events]
                    payload = b.model_dump_json().encode()
                    # QoS 1 redelivery: every third batch arrives twice
                    copies = 2 if start % 150 == 0 else 1
                    pub.publish(topic(prefix, d, "events"), [payload] * copies)
            wait_for(lambda: sum(x["events"] for x in hub.get("/api/devices")["devices"]) >= 900)
            time.sleep(0.3)  # anything extra would land now
            for d in devices:
                got = all_events(hub, d)
                assert [e["id"] for e in got] == sent[d]  # once each, in the order sent
                assert [e["seq"] for e in got] == list(range(300))
            assert hub.get("/api/gaps") == {"gaps": []}
            metrics = urllib.request.urlopen(hub.url("/metrics")).read().decode()
            assert value(metrics, "edge_hub_events_stored_total") == 900
            assert value(metrics, "edge_hub_events_duplicate_total") == 300  # 2 rounds x 3 x 50
        finally:
            pub.close()
            hub.stop()


def test_skipped_seq_numbers_show_as_gaps(db_url: str, tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    boot = str(uuid.uuid4())
    with mosquitto(tmp_path) as port:
        hub = HubProc(db_url, port, prefix, tmp_path / "hub.log")
        pub = Publisher(port)
        try:
            for seqs in ([0, 1, 2], [5, 6], [7, 20]):
                pub.publish(
                    topic(prefix, "cam-g", "events"),
                    [make_batch("cam-g", boot, seqs).model_dump_json().encode()],
                )
            gaps = wait_for(lambda: len(hub.get("/api/gaps")["gaps"]) == 2 and hub.get("/api/gaps"))
            assert [(g["from_seq"], g["to_seq"], g["missing"]) for g in gaps["gaps"]] == [
                (3, 4, 2),
                (8, 19, 12),
            ]
        finally:
            pub.close()
            hub.stop()


HOSTILE: list[tuple[str, bytes]] = [
    ("events", b"not json at all"),
    ("events", b'{"v":1,"device_id":"cam-h","boot_id":'),  # truncated
    ("events", b'{"v":1,"device_id":"cam-h","boot_id":"x","events":"many"}'),  # wrong types
    ("events", b'{"v":1,"device_id":"cam-h"' + b" " * (2 * 1024 * 1024) + b"}"),  # huge
    ("events", b'{"v":3,"device_id":"cam-h"}'),  # unknown schema version
    ("status", b'{"v":1,"device_id":"cam-h","state":"exploded"}'),
    ("telemetry", b"\xff\xfe\x00"),
]


def test_hostile_input_is_refused_counted_and_the_hub_keeps_going(tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    boot = str(uuid.uuid4())
    with mosquitto(tmp_path) as port:
        hub = HubProc(f"sqlite:///{tmp_path}/hub.db", port, prefix, tmp_path / "hub.log")
        pub = Publisher(port)
        try:
            for kind, payload in HOSTILE:
                pub.publish(f"{prefix}/cam-h/{kind}", [payload])
            # the payload names another device than the topic
            pub.publish(topic(prefix, "cam-h", "events"), [
                make_batch("cam-other", boot, [0]).model_dump_json().encode()])  # fmt: skip
            good = make_batch("cam-ok", boot, [0, 1])
            pub.publish(topic(prefix, "cam-ok", "events"), [good.model_dump_json().encode()])
            wait_for(lambda: hub.get("/api/devices")["devices"])
            devs = hub.get("/api/devices")["devices"]
            assert [(d["device_id"], d["events"]) for d in devs] == [("cam-ok", 2)]
            metrics = urllib.request.urlopen(hub.url("/metrics")).read().decode()
            for reason, n in (
                ("not_json", 3), ("bad_schema", 2), ("too_large", 1), ("bad_version", 1),
                ("device_mismatch", 1),
            ):  # fmt: skip
                assert value(metrics, "edge_hub_messages_rejected_total", reason=reason) == n
            assert hub.p.poll() is None
        finally:
            pub.close()
            hub.stop()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_flood_from_one_device_keeps_memory_bounded_and_others_served(tmp_path: Path) -> None:
    """30,000 valid 100-event batches from one device (3 M events, ~120 MB of JSON) while
    another device sends a few batches: those are stored within seconds and the hub's
    memory stays under a bound far below what it was sent."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    boot = str(uuid.uuid4())
    flood_payload = make_batch("flood", boot, range(100)).model_dump_json().encode()
    with mosquitto(tmp_path) as port:
        # A rate below what the database absorbs, so the flood is refused before it queues.
        hub = HubProc(
            f"sqlite:///{tmp_path}/hub.db", port, prefix, tmp_path / "hub.log",
            "--device-rate-mb", "4",
        )  # fmt: skip
        base = rss_mb(hub.p.pid)
        stop = threading.Event()
        peak = [base]

        def flood() -> None:
            c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            c.connect("127.0.0.1", port)
            c.loop_start()
            t = topic(prefix, "flood", "events")
            sent = 0
            while not stop.is_set() and sent < 30_000:
                c.publish(t, flood_payload, qos=0)  # fire-and-forget: as fast as it goes
                sent += 1
                if sent % 500 == 0:
                    time.sleep(0.01)
            c.disconnect()
            c.loop_stop()

        th = threading.Thread(target=flood)
        pub = Publisher(port)
        try:
            th.start()
            time.sleep(1.0)
            ok = [make_batch("quiet", boot, range(i * 5, i * 5 + 5)) for i in range(4)]
            t0 = time.monotonic()
            for b in ok:
                pub.publish(topic(prefix, "quiet", "events"), [b.model_dump_json().encode()])
                peak[0] = max(peak[0], rss_mb(hub.p.pid))
            got = wait_for(
                lambda: hub.get("/api/events?device=quiet&limit=100")["events"], timeout=30
            )
            wait_for(lambda: len(hub.get("/api/events?device=quiet&limit=100")["events"]) == 20, 30)
            served_s = time.monotonic() - t0
            assert got
            while th.is_alive():
                peak[0] = max(peak[0], rss_mb(hub.p.pid))
                time.sleep(0.2)
            assert served_s < 20, served_s
            assert peak[0] - base < 300, (base, peak[0])  # the queue bound is 64 MB of payload
            metrics = urllib.request.urlopen(hub.url("/metrics")).read().decode()
            assert 'reason="rate_limited"' in metrics
            assert hub.p.poll() is None
            assert hub.get("/healthz")["ok"]
        finally:
            stop.set()
            th.join()
            pub.close()
            hub.stop()


def test_events_published_while_the_hub_is_down_arrive_after_restart(tmp_path: Path) -> None:
    """A named worker keeps its broker session: the broker queues events while it is down."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    boot = str(uuid.uuid4())
    db = f"sqlite:///{tmp_path}/hub.db"
    with mosquitto(tmp_path) as port:
        hub = HubProc(db, port, prefix, tmp_path / "hub1.log", "--client-id", "hub-a")
        pub = Publisher(port)
        try:
            pub.publish(
                topic(prefix, "cam-r", "events"),
                [make_batch("cam-r", boot, range(0, 50)).model_dump_json().encode()],
            )
            wait_for(lambda: any(d["events"] == 50 for d in hub.get("/api/devices")["devices"]))
            hub.stop()
            for start in range(50, 250, 50):  # the hub is down: the broker holds these
                batch = make_batch("cam-r", boot, range(start, start + 50))
                pub.publish(topic(prefix, "cam-r", "events"), [batch.model_dump_json().encode()])
            hub = HubProc(db, port, prefix, tmp_path / "hub2.log", "--client-id", "hub-a")
            wait_for(lambda: any(d["events"] == 250 for d in hub.get("/api/devices")["devices"]))
            assert hub.get("/api/gaps") == {"gaps": []}
        finally:
            pub.close()
            hub.stop()
